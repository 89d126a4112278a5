/** FHIR routes: batch and transaction Bundles at POST /fhir. */
import type { FastifyInstance } from 'fastify';

export function bundleRoutes(_app: FastifyInstance): void {
  // filled in by the record-exchange work
}
