/**
 * FHIR routes: type history (GET /fhir/{Type}/_history, for the types that have the interaction
 * history-type), system history (GET /fhir/_history) and $validate (POST /fhir/{Type}/$validate,
 * POST /fhir/{Type}/{id}/$validate, every type). docs/history.md, docs/validate-operation.md
 */
import type { FastifyInstance } from 'fastify';
import { allResourceDefinitions } from '../../fhir/registry.js';
import type { Query } from '../../fhir/search/params.js';
import { systemHistory, typeHistory } from '../../fhir/history.js';
import { validateOperation } from '../../fhir/validate-operation.js';
import { FHIR_JSON } from '../plugins/fhir-json.js';
import { fhirContext, selfUrl } from './fhir-context.js';

const anyResource = { type: 'object', additionalProperties: true, description: 'The resource, or a Parameters with resource and mode' } as const;
const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const historyQuery = {
  type: 'object', additionalProperties: true,
  properties: { _count: { type: 'string' }, _since: { type: 'string' }, _at: { type: 'string' }, _cursor: { type: 'string' } },
} as const;

const modeOf = (query: Query): string | undefined => { const v = query.mode; return Array.isArray(v) ? v[0] : v; };

export function historyRoutes(app: FastifyInstance): void {
  app.get('/fhir/_history', { schema: { tags: ['history'], summary: 'Versions of every resource the caller may read the history of, newest first', querystring: historyQuery } }, async (request, reply) => {
    const query = request.query as Query;
    const bundle = await systemHistory(fhirContext(request), query, selfUrl(request, '_history', query));
    return reply.type(FHIR_JSON).send(bundle);
  });
  for (const def of allResourceDefinitions()) {
    const type = def.type;
    const tags = [type];
    if (def.interactions.includes('history-type')) {
      app.get(`/fhir/${type}/_history`, { schema: { tags, summary: `Versions of every ${type}, newest first`, querystring: historyQuery } }, async (request, reply) => {
        const query = request.query as Query;
        const bundle = await typeHistory(fhirContext(request), type, query, selfUrl(request, `${type}/_history`, query));
        return reply.type(FHIR_JSON).send(bundle);
      });
    }
    app.post(`/fhir/${type}/$validate`, { schema: { tags, summary: `Validate a ${type} as a create (or ?mode=): nothing is written`, body: anyResource } }, async (request, reply) => {
      const outcome = await validateOperation(fhirContext(request), type, undefined, request.body, modeOf(request.query as Query));
      return reply.code(200).type(FHIR_JSON).send(outcome);
    });
    app.post(`/fhir/${type}/:id/$validate`, { schema: { tags, summary: `Validate an update (or ?mode=delete) of a ${type}: nothing is written`, params: idParams, body: anyResource } }, async (request, reply) => {
      const { id } = request.params as { id: string };
      const outcome = await validateOperation(fhirContext(request), type, id, request.body, modeOf(request.query as Query));
      return reply.code(200).type(FHIR_JSON).send(outcome);
    });
  }
}
