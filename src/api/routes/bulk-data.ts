/** FHIR routes: Bulk Data $export: kick-off, status, files. */
import type { FastifyInstance } from 'fastify';

export function bulkDataRoutes(_app: FastifyInstance): void {
  // filled in by the record-exchange work
}
