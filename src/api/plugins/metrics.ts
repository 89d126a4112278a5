/**
 * Prometheus metrics (prom-client), one registry per app: requests by FHIR interaction, type and
 * status with their latency, login failures, audit write latency, database pool use, job outbox
 * depth, the in-process jobs' runs and durations, and Node's own figures (prefix hms_). Labels
 * come from route templates and fixed lists (src/metrics/request-labels.ts): no id, no search
 * value, nothing of a patient.
 *
 * Served as GET /metrics to admins on the API port, or on HMS_METRICS_PORT without
 * authentication (bind it to an internal address); HMS_METRICS=off serves none.
 */
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Knex } from 'knex';
import { requestLabels } from '../../metrics/request-labels.js';
import { serveRegistry, type MetricsServer } from '../../metrics/serve.js';
import { outboxGauge, processRegistry } from '../../metrics/collectors.js';
import type { JobMetrics } from '../../workers/metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's metrics registry (absent with HMS_METRICS=off). */
    metrics?: Registry;
    /** The port /metrics is served on when HMS_METRICS_PORT is set (0 picks a free one). */
    metricsPort?: number;
  }
}

/** Audit actions of a refused login or credential: the label values of hms_login_failures_total. */
const LOGIN_FAILURES = new Set(['login', 'login-throttled', 'token-refused', 'unauthenticated']);

interface PoolLike { numUsed(): number; numFree(): number; numPendingAcquires(): number }

function poolOf(db: Knex): PoolLike | undefined {
  const pool = (db.client as { pool?: PoolLike }).pool;
  return pool && typeof pool.numUsed === 'function' ? pool : undefined;
}

export default fp(async (app) => {
  if (app.config.HMS_METRICS === 'off') return;
  const registry = processRegistry();
  app.decorate('metrics', registry);

  const requests = new Counter({ name: 'hms_http_requests_total', help: 'HTTP requests by FHIR interaction, resource type and status', labelNames: ['interaction', 'type', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'hms_http_request_duration_seconds', help: 'HTTP request latency by FHIR interaction and resource type', labelNames: ['interaction', 'type'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const { interaction, type } = requestLabels(request.method, request.routeOptions.url);
    requests.inc({ interaction, type, status: String(reply.statusCode) });
    latency.observe({ interaction, type }, reply.elapsedTime / 1000);
  });

  const loginFailures = new Counter({ name: 'hms_login_failures_total', help: 'Refused logins and credentials by audit action (login, login-throttled, token-refused, unauthenticated)', labelNames: ['action'], registers: [registry] });
  const auditWrite = new Histogram({
    name: 'hms_audit_write_seconds', help: 'Time a caller waited for its security-log rows to be committed',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1], registers: [registry],
  });
  const auditRows = new Counter({ name: 'hms_audit_rows_total', help: 'Security-log rows stored (ok) or refused', labelNames: ['result'], registers: [registry] });
  app.auditLog.onRecorded = (rows, seconds, ok) => {
    auditWrite.observe(seconds);
    auditRows.inc({ result: ok ? 'ok' : 'refused' }, rows.length);
    for (const r of rows) if (r.success === false && LOGIN_FAILURES.has(String(r.action))) loginFailures.inc({ action: String(r.action) });
  };

  const pool = poolOf(app.db);
  new Gauge({
    name: 'hms_db_pool_connections', help: 'Database pool connections: used, free, and callers waiting for one', labelNames: ['state'], registers: [registry],
    collect() {
      if (!pool) return;
      this.set({ state: 'used' }, pool.numUsed());
      this.set({ state: 'free' }, pool.numFree());
      this.set({ state: 'waiting' }, pool.numPendingAcquires());
    },
  });
  outboxGauge(registry, app.db);
  // the embedded mode's in-process runner counts its jobs here
  const local = (app.jobs as { metrics?: JobMetrics } | undefined)?.metrics;
  local?.attach(registry);

  const port = app.config.HMS_METRICS_PORT;
  if (port !== undefined) {
    let server: MetricsServer | undefined;
    app.addHook('onReady', async () => {
      server = await serveRegistry(registry, port, app.config.HMS_METRICS_HOST);
      app.metricsPort = server.port;
      app.log.info({ port: server.port, host: app.config.HMS_METRICS_HOST }, 'metrics served');
    });
    app.addHook('onClose', async () => server?.close());
    return;
  }
  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics (admins; or on HMS_METRICS_PORT)', hide: false }, onRequest: [app.requireAuth, app.requireAdmin] }, async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}, { name: 'hms-metrics', dependencies: ['hms-database', 'hms-jobs'] });
