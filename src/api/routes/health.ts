/**
 * GET /health: 200 when the database (and Redis, when REDIS_URL is set) answers, 503 otherwise,
 * for load balancers and orchestrators.
 */
import type { FastifyInstance } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';
import { redisAnswers } from '../../workers/redis.js';

export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/health', { schema: { tags: ['system'], summary: 'Liveness and database / Redis readiness' } }, async () => {
    let database = 'up';
    try {
      await app.db.raw('SELECT 1');
    } catch (err) {
      app.log.warn({ err }, 'health check: database unreachable');
      database = 'down';
    }
    const redis = app.redis ? ((await redisAnswers(app.redis)) ? 'up' : 'down') : 'not configured';
    if (database === 'down') throw new FhirError(503, 'Database unavailable', 'transient');
    if (redis === 'down') throw new FhirError(503, 'Redis unavailable', 'transient');
    return { status: 'ok', database, redis, jobs: app.redis ? 'bullmq' : 'in-process' };
  });
}
