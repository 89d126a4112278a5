/** FHIR operations ($everything ...), authenticated like the rest of /fhir. */
import type { FastifyInstance } from 'fastify';
import { patientEverything } from '../../fhir/operations/everything.js';
import type { Query } from '../../fhir/search/params.js';
import { FHIR_JSON } from '../plugins/fhir-json.js';
import { fhirContext, selfUrl } from './fhir-context.js';

export function operationRoutes(app: FastifyInstance): void {
  app.get('/fhir/Patient/:id/$everything', {
    schema: { tags: ['Patient'], summary: 'The patient and everything in its compartment (_since, _type, _count paging)', params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const query = request.query as Query;
    const bundle = await patientEverything(fhirContext(request), id, query, selfUrl(request, `Patient/${id}/$everything`, query));
    return reply.type(FHIR_JSON).send(bundle);
  });
}
