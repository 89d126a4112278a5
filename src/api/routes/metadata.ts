/** GET /fhir/metadata: the CapabilityStatement (public, as the spec expects). */
import type { FastifyInstance } from 'fastify';
import { capabilityStatement } from '../../fhir/capability.js';
import { FHIR_JSON, negotiate } from '../plugins/fhir-json.js';
import { baseUrl } from './fhir-context.js';
import { packageVersion } from '../../version.js';
import { ownSearchParameter, ownSearchParameterBundle } from '../../fhir/search-parameters.js';
import { notFound } from '../../fhir/outcome.js';
import { capabilitySurface } from '../plugins/http-surface.js';

const started = new Date().toISOString();

export default async function metadataRoutes(app: FastifyInstance): Promise<void> {
  app.get('/fhir/metadata', { schema: { tags: ['system'], summary: 'CapabilityStatement of this server (no authentication)' } }, async (request, reply) => {
    negotiate(request);
    return reply.type(FHIR_JSON).send(capabilityStatement(baseUrl(request), packageVersion, started, capabilitySurface(app.config)));
  });
  // the SearchParameters HMS defines (definitions only: no patient data, so public like metadata)
  app.get('/fhir/SearchParameter', { schema: { tags: ['system'], summary: 'The search parameters HMS defines itself' } }, async (request, reply) => {
    negotiate(request);
    return reply.type(FHIR_JSON).send(ownSearchParameterBundle(baseUrl(request)));
  });
  app.get('/fhir/SearchParameter/:id', { schema: { tags: ['system'], summary: 'One search parameter HMS defines', params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } } }, async (request, reply) => {
    negotiate(request);
    const { id } = request.params as { id: string };
    const resource = ownSearchParameter(id);
    if (!resource) throw notFound(`SearchParameter/${id} is not defined by this server`);
    return reply.type(FHIR_JSON).send(resource);
  });
}
