/** GET /health: 200 when the database answers, 503 otherwise (for load balancers and orchestrators). */
import type { FastifyInstance } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';

export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/health', { schema: { tags: ['system'], summary: 'Liveness and database readiness' } }, async () => {
    try {
      await app.db.raw('SELECT 1');
    } catch (err) {
      app.log.warn({ err }, 'health check: database unreachable');
      throw new FhirError(503, 'Database unavailable', 'transient');
    }
    return { status: 'ok', database: 'up' };
  });
}
