/** FHIR routes: insurers' eligibility checks (CoverageEligibilityRequest). */
import type { FastifyInstance } from 'fastify';

export function eligibilityRoutes(_app: FastifyInstance): void {
  // filled in by the record-exchange work
}
