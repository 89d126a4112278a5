/** FHIR operations ($everything, $break-glass), authenticated like the rest of /fhir. */
import type { FastifyInstance } from 'fastify';
import { patientEverything } from '../../fhir/operations/everything.js';
import { breakGlass } from '../../fhir/operations/break-glass.js';
import type { Query } from '../../fhir/search/params.js';
import { FHIR_JSON } from '../plugins/fhir-json.js';
import { fhirContext, selfUrl } from './fhir-context.js';
import { userSubject } from '../../auth/revocation.js';

const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;

export function operationRoutes(app: FastifyInstance): void {
  app.get('/fhir/Patient/:id/$everything', {
    schema: { tags: ['Patient'], summary: 'The patient and everything in its compartment (_since, _type, _count paging)', params: idParams },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const query = request.query as Query;
    const bundle = await patientEverything(fhirContext(request), id, query, selfUrl(request, `Patient/${id}/$everything`, query));
    return reply.type(FHIR_JSON).send(bundle);
  });

  app.post('/fhir/Patient/:id/$break-glass', {
    schema: {
      tags: ['Patient'], params: idParams,
      summary: 'Emergency access to an unassigned patient for HMS_BREAK_GLASS_MINUTES (doctors and nurses; a Parameters body with a reason)',
      body: { type: 'object', additionalProperties: true, description: 'Parameters with one parameter reason (valueString)' },
    },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const { grant, resource } = await breakGlass(fhirContext(request), id, request.body, { minutes: app.config.HMS_BREAK_GLASS_MINUTES, ip: request.ip });
    // every process must see the grant on the caller's next request: drop its cached sessions
    await app.revocations.publish(userSubject(grant.userId));
    return reply.code(201).type(FHIR_JSON).send(resource);
  });
}
