/** FHIR routes: PATCH with JSON Patch and FHIRPath Patch. */
import type { FastifyInstance } from 'fastify';

export function patchRoutes(_app: FastifyInstance): void {
  // filled in by the record-exchange work
}
