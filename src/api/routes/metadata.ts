/** GET /fhir/metadata: the CapabilityStatement (public, as the spec expects). */
import type { FastifyInstance } from 'fastify';
import { capabilityStatement } from '../../fhir/capability.js';
import { FHIR_JSON, negotiate } from '../plugins/fhir-json.js';
import { baseUrl } from './fhir-context.js';
import { packageVersion } from '../../version.js';

const started = new Date().toISOString();

export default async function metadataRoutes(app: FastifyInstance): Promise<void> {
  app.get('/fhir/metadata', { schema: { tags: ['system'], summary: 'CapabilityStatement of this server (no authentication)' } }, async (request, reply) => {
    negotiate(request);
    return reply.type(FHIR_JSON).send(capabilityStatement(baseUrl(request), packageVersion, started));
  });
}
