/** FHIR routes: type and system history, $validate. */
import type { FastifyInstance } from 'fastify';

export function historyRoutes(_app: FastifyInstance): void {
  // filled in by the record-exchange work
}
