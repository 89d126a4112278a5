/** FHIR routes: insurers' eligibility checks (CoverageEligibilityRequest/$submit). docs/eligibility.md */
import type { FastifyInstance } from 'fastify';
import { submitEligibility } from '../../fhir/operations/eligibility.js';
import { fhirContext, sendResource } from './fhir-context.js';

export function eligibilityRoutes(app: FastifyInstance): void {
  app.post('/fhir/CoverageEligibilityRequest/$submit', {
    schema: {
      tags: ['CoverageEligibilityRequest'],
      summary: 'Check eligibility: stores the request and the CoverageEligibilityResponse computed from the patient\'s coverages, answers the response (Location: the stored response)',
      body: { type: 'object', additionalProperties: true, description: 'A CoverageEligibilityRequest, or Parameters with it as parameter resource' },
    },
  }, async (request, reply) => {
    const response = await submitEligibility(fhirContext(request), request.body);
    return sendResource(request, reply, 200, response, true);
  });
}
