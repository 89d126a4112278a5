/**
 * Health for load balancers and orchestrators:
 * - GET /health/live: the process answers (no I/O): restart it when this fails;
 * - GET /health/ready: the database answers, the schema is at this release's latest migration,
 *   and the process is not shutting down: send it traffic only when this is 200 (503 with
 *   Retry-After otherwise). Redis (when REDIS_URL is set) is reported, status "degraded" while it
 *   does not answer, but does not make the process unready;
 * - GET /health: the database / Redis part of ready, kept for existing probes.
 */
import type { FastifyInstance } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';
import { redisAnswers } from '../../workers/redis.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Set on SIGTERM: /health/ready answers 503 so balancers stop sending requests (decorated in app.ts, at the root). */
    draining: boolean;
  }
}

const RETRY_AFTER = { 'Retry-After': '5' };

export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  const database = async (): Promise<'up' | 'down'> => {
    try {
      await app.db.raw('SELECT 1');
      return 'up';
    } catch (err) {
      app.log.warn({ err }, 'health check: database unreachable');
      return 'down';
    }
  };
  const redis = async (): Promise<string> => (app.redis ? ((await redisAnswers(app.redis)) ? 'up' : 'down') : 'not configured');
  // once current, the schema stays current for this process (a later release brings its own)
  let schemaCurrent = false;
  const migrations = async (): Promise<'current' | 'pending'> => {
    if (!schemaCurrent) {
      const [, pending] = (await app.db.migrate.list()) as [unknown[], unknown[]];
      schemaCurrent = pending.length === 0;
    }
    return schemaCurrent ? 'current' : 'pending';
  };

  // exempt from the overload refusal (plugins/overload.ts): a busy process is alive
  app.get('/health/live', { schema: { tags: ['system'], summary: 'Liveness: the process answers' }, config: { pressureHandler: () => undefined } }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { schema: { tags: ['system'], summary: 'Readiness: database, Redis when configured, migrations current, not shutting down' } }, async () => {
    if (app.draining) throw new FhirError(503, 'Shutting down', 'transient', RETRY_AFTER);
    const [db, red] = await Promise.all([database(), redis()]);
    if (db === 'down') throw new FhirError(503, 'Database unavailable', 'transient', RETRY_AFTER);
    const schema = await migrations();
    if (schema === 'pending') throw new FhirError(503, 'Database migrations are pending: run `hms migrate`', 'transient', RETRY_AFTER);
    // Redis down is reported, not refused: every API process would leave the balancer at once
    // for a Sentinel failover, while reads, searches and writes need only the database and
    // recorded work waits in the outbox (docs/operations.md)
    return { status: red === 'down' ? 'degraded' : 'ok', database: db, redis: red, migrations: schema, jobs: app.redis ? 'bullmq' : 'in-process' };
  });

  app.get('/health', { schema: { tags: ['system'], summary: 'Database / Redis readiness (see /health/ready)' } }, async () => {
    const [db, red] = await Promise.all([database(), redis()]);
    if (db === 'down') throw new FhirError(503, 'Database unavailable', 'transient', RETRY_AFTER);
    if (red === 'down') throw new FhirError(503, 'Redis unavailable', 'transient', RETRY_AFTER);
    return { status: 'ok', database: db, redis: red, jobs: app.redis ? 'bullmq' : 'in-process' };
  });
}
