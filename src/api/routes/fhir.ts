/** FHIR REST routes for every type in the registry. https://hl7.org/fhir/R4/http.html */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allResourceDefinitions, type ResourceDefinition } from '../../fhir/registry.js';
import {
  createResource, deleteResource, instanceHistory, readResource, searchResources, updateResource, vreadResource,
} from '../../fhir/interactions.js';
import type { Query } from '../../fhir/search/params.js';
import { conditionalDelete, conditionalUpdate } from '../../fhir/conditional.js';
import { FHIR_JSON, negotiate, requireFormBody, requireJsonBody } from '../plugins/fhir-json.js';
import { fhirContext, selfUrl, sendResource } from './fhir-context.js';
import { operationRoutes } from './operations.js';
import { bundleRoutes } from './bundle.js';
import { patchRoutes } from './patch.js';
import { historyRoutes } from './history.js';
import { bulkDataRoutes } from './bulk-data.js';
import { eligibilityRoutes } from './eligibility.js';

const anyResource = { type: 'object', additionalProperties: true, description: 'A FHIR R4 resource (application/fhir+json)' } as const;
const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const versionParams = { type: 'object', properties: { id: { type: 'string' }, vid: { type: 'string' } }, required: ['id', 'vid'] } as const;

/** The query string as sent (repeated parameters and their order kept): the criteria of a conditional interaction. */
function rawQuery(request: FastifyRequest): string {
  const i = request.url.indexOf('?');
  return i < 0 ? '' : request.url.slice(i + 1);
}

function routesFor(app: FastifyInstance, def: ResourceDefinition): void {
  const type = def.type;
  const has = (i: string): boolean => def.interactions.includes(i as never);
  const tags = [type];

  if (has('search-type')) {
    app.get(`/fhir/${type}`, { schema: { tags, summary: `Search ${type}`, querystring: { type: 'object', additionalProperties: true } } }, async (request, reply) => {
      const query = request.query as Query;
      const bundle = await searchResources(fhirContext(request), type, query, selfUrl(request, type, query));
      return reply.type(FHIR_JSON).send(bundle);
    });
    app.post(`/fhir/${type}/_search`, { schema: { tags, summary: `Search ${type} (form-encoded parameters)` } }, async (request, reply) => {
      requireFormBody(request);
      const body = (request.body ?? {}) as Query;
      if (body._format !== undefined) negotiate(request, body._format);
      const query = { ...(request.query as Query), ...body };
      const bundle = await searchResources(fhirContext(request), type, query, selfUrl(request, type, query));
      return reply.type(FHIR_JSON).send(bundle);
    });
  }
  if (has('create')) {
    app.post(`/fhir/${type}`, { schema: { tags, summary: `Create a ${type} (If-None-Exist for conditional create)`, body: anyResource } }, async (request, reply) => {
      const ifNoneExist = request.headers['if-none-exist'];
      const result = await createResource(fhirContext(request), type, request.body, typeof ifNoneExist === 'string' ? ifNoneExist : undefined);
      return sendResource(request, reply, result.status, result.resource, true);
    });
  }
  if (has('read')) {
    app.get(`/fhir/${type}/:id`, { schema: { tags, summary: `Read a ${type}`, params: idParams } }, async (request, reply) => {
      const resource = await readResource(fhirContext(request), type, (request.params as { id: string }).id);
      return sendResource(request, reply, 200, resource);
    });
  }
  if (has('update')) {
    app.put(`/fhir/${type}/:id`, { schema: { tags, summary: `Update (or create with this id) a ${type}; If-Match for optimistic locking`, params: idParams, body: anyResource } }, async (request, reply) => {
      const ifMatch = request.headers['if-match'];
      const result = await updateResource(fhirContext(request), type, (request.params as { id: string }).id, request.body, typeof ifMatch === 'string' ? ifMatch : undefined);
      return sendResource(request, reply, result.status, result.resource, true);
    });
  }
  if (has('update')) {
    app.put(`/fhir/${type}`, { schema: { tags, summary: `Conditional update of a ${type}: the one resource the query matches (none: create; several: 412)`, body: anyResource } }, async (request, reply) => {
      const ifMatch = request.headers['if-match'];
      const result = await conditionalUpdate(fhirContext(request), type, rawQuery(request), request.body, typeof ifMatch === 'string' ? ifMatch : undefined);
      return sendResource(request, reply, result.status, result.resource, true);
    });
  }
  if (has('delete')) {
    app.delete(`/fhir/${type}`, { schema: { tags, summary: `Conditional delete of the one ${type} the query matches (none: nothing to do; several: 412)` } }, async (request, reply) => {
      await conditionalDelete(fhirContext(request), type, rawQuery(request));
      return reply.code(204).send();
    });
  }
  if (has('delete')) {
    app.delete(`/fhir/${type}/:id`, { schema: { tags, summary: `Delete a ${type} (soft: it then reads as 410 Gone)`, params: idParams } }, async (request, reply) => {
      await deleteResource(fhirContext(request), type, (request.params as { id: string }).id);
      return reply.code(204).send();
    });
  }
  if (has('history-instance')) {
    app.get(`/fhir/${type}/:id/_history`, { schema: { tags, summary: `Versions of a ${type}, newest first`, params: idParams } }, async (request, reply) => {
      const { id } = request.params as { id: string };
      const query = request.query as Query;
      const bundle = await instanceHistory(fhirContext(request), type, id, query, selfUrl(request, `${type}/${id}/_history`, query));
      return reply.type(FHIR_JSON).send(bundle);
    });
  }
  if (has('vread')) {
    app.get(`/fhir/${type}/:id/_history/:vid`, { schema: { tags, summary: `Read one version of a ${type}`, params: versionParams } }, async (request, reply) => {
      const { id, vid } = request.params as { id: string; vid: string };
      const resource = await vreadResource(fhirContext(request), type, id, vid);
      return sendResource(request, reply, 200, resource);
    });
  }
}

/** Registers the authenticated FHIR routes (everything under /fhir but metadata). */
export default async function fhirRoutes(app: FastifyInstance): Promise<void> {
  // The routes' schemas are documentation (OpenAPI): what they could check (an id is a string, a
  // body an object) the interactions check themselves (checkId, validateResource), with FHIR's
  // answers. Compiling a validator per route for ~1,100 routes (every R4 type) cost about a
  // second at every start.
  app.setValidatorCompiler(() => () => true);
  app.addHook('onRequest', app.requireAuth);
  app.addHook('onRequest', async (request) => negotiate(request));
  app.addHook('preValidation', async (request) => {
    if ((request.method === 'POST' && !request.url.includes('/_search')) || request.method === 'PUT') requireJsonBody(request);
  });
  for (const def of allResourceDefinitions()) routesFor(app, def);
  operationRoutes(app);
  bundleRoutes(app);
  patchRoutes(app);
  historyRoutes(app);
  bulkDataRoutes(app);
  eligibilityRoutes(app);
}
