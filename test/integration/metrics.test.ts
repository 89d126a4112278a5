/**
 * Seeing it run: /metrics (prom-client) for admins or on a port of its own, labels without ids or
 * values, login failures and audit latency counted; /health/live and /health/ready (database,
 * migrations, draining); overload answered 503 with Retry-After (@fastify/under-pressure); one
 * JSON log line per request with its interaction and caller and no PHI.
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { buildApp } from '../../src/api/app.js';
import { startSession } from '../../src/auth/sessions.js';
import { createDb, migrateLatest } from '../../src/db/knex.js';
import { startLocalRunner } from '../../src/workers/local-runner.js';
import { startWorker } from '../../src/workers/worker.js';
import { BullQueues } from '../../src/workers/bullmq.js';
import { testApp, testConfig, testDb, privateDatabase } from '../helpers/app.js';
import { makePractitioner } from '../helpers/access-world.js';
import { freshIp } from '../helpers/smart.js';
import { freePort, sleep, until } from '../helpers/processes.js';
import { silentLog, testPrefix } from '../helpers/jobs.js';

const FAMILY = 'Metricsfamilyname';

/** The value of one sample of a metrics text (labels in the order prom-client writes them). */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('GET /metrics: admins only; requests per interaction and type, login failures, audit latency, pool and outbox; no ids or values', async (t) => {
  const h = await testApp(t);
  t.equal((await h.fhir({ method: 'GET', url: '/metrics', token: null })).statusCode, 401, 'no token: 401');
  const doctor = await startSession(h.db, await makePractitioner(h), { ttlSeconds: 600 });
  t.equal((await h.fhir({ method: 'GET', url: '/metrics', token: doctor })).statusCode, 403, 'a doctor: 403');

  const created = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', name: [{ family: FAMILY, given: ['Ann'] }], birthDate: '1970-01-01' } });
  t.equal(created.statusCode, 201);
  const id = String(created.json().id);
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${id}` })).statusCode, 200);
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${id}` })).statusCode, 200);
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient?family=${FAMILY}` })).statusCode, 200);
  t.equal((await h.fhir({ method: 'GET', url: '/fhir/Patient/00000000-0000-0000-0000-000000000000' })).statusCode, 404);
  // an email and an address of this run's own: the throttle counts failures per account and per
  // IP across runs on a shared database
  const login = await h.app.inject({ method: 'POST', url: '/auth/login', payload: { email: `nobody-${randomUUID()}@test.example.org`, password: 'wrong password here' }, remoteAddress: freshIp() });
  t.equal(login.statusCode, 401);

  const res = await h.fhir({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  t.equal(sample(text, 'hms_http_requests_total', 'interaction="create",type="Patient",status="201"'), 1, 'one create');
  t.equal(sample(text, 'hms_http_requests_total', 'interaction="read",type="Patient",status="200"'), 2, 'two reads');
  t.equal(sample(text, 'hms_http_requests_total', 'interaction="read",type="Patient",status="404"'), 1, 'one read of a missing patient');
  t.equal(sample(text, 'hms_http_requests_total', 'interaction="search-type",type="Patient",status="200"'), 1, 'one search');
  t.equal(sample(text, 'hms_http_requests_total', 'interaction="/auth/login",type="",status="401"'), 1, 'a route outside /fhir is labelled by its template');
  t.equal(sample(text, 'hms_http_request_duration_seconds_count', 'interaction="read",type="Patient"'), 3);
  t.equal(sample(text, 'hms_login_failures_total', 'action="login"'), 1, 'the failed login');
  t.ok((sample(text, 'hms_audit_write_seconds_count', '') ?? 0) >= 5, 'audit writes timed');
  t.ok((sample(text, 'hms_audit_rows_total', 'result="ok"') ?? 0) >= 5);
  t.ok(sample(text, 'hms_db_pool_connections', 'state="used"') !== undefined, 'pool use');
  t.match(text, /# TYPE hms_job_outbox gauge/);
  t.ok(sample(text, 'hms_process_resident_memory_bytes', '') !== undefined, "Node's own figures, prefixed hms_");
  t.notOk(text.includes(id), 'no resource id in the metrics');
  t.notOk(text.includes(FAMILY), 'no search value in the metrics');
});

t.test('HMS_METRICS_PORT: /metrics on a port of its own over TCP, not on the API port; HMS_METRICS=off: none', async (t) => {
  const h = await testApp(t, { HMS_METRICS_PORT: 0 });
  t.equal((await h.fhir({ method: 'GET', url: '/metrics' })).statusCode, 404, 'not on the API port');
  await h.fhir({ method: 'GET', url: '/fhir/metadata' });
  const port = h.app.metricsPort;
  t.ok(port, 'listening');
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.equal(res.status, 200);
  t.match(await res.text(), /hms_http_requests_total\{interaction="capabilities",type="",status="200"\} 1/);
  t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  await h.app.close();
  await t.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'closed with the app');

  const off = await testApp(t, { HMS_METRICS: 'off' });
  t.equal((await off.fhir({ method: 'GET', url: '/metrics' })).statusCode, 404);
});

t.test('/health/live and /health/ready: database, migrations current, draining', async (t) => {
  const h = await testApp(t);
  const live = await h.app.inject({ method: 'GET', url: '/health/live' });
  t.equal(live.statusCode, 200);
  const ready = await h.app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200);
  t.match(ready.json(), { status: 'ok', database: 'up', migrations: 'current' });
  h.app.draining = true;
  const draining = await h.app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(draining.statusCode, 503, 'not ready while shutting down');
  t.equal(draining.headers['retry-after'], '5');
  t.equal(draining.json().resourceType, 'OperationOutcome');
  t.equal((await h.app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'still alive');
});

t.test('/health/ready answers 503 while a migration is pending', async (t) => {
  const url = await privateDatabase(t, 'hms_ready');
  const config = testConfig(t, url ? { DATABASE_URL: url } : {});
  const db = createDb(config);
  t.teardown(() => db.destroy());
  await migrateLatest(db);
  await db.migrate.down();
  const app = await buildApp({ config, db, logger: false });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(res.statusCode, 503);
  t.match(res.json().issue[0].diagnostics, /migrations are pending/);
  await migrateLatest(db);
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'ready once migrated');
});

t.test('overload: a lagging event loop gets 503 + Retry-After as an OperationOutcome, liveness still answers, then it recovers', async (t) => {
  const h = await testApp(t, { HMS_MAX_EVENT_LOOP_DELAY: 20 });
  await h.app.ready();
  const refusals = async () => Number((await h.db('security_logs').where({ action: 'refused' }).count({ n: '*' }).first())?.n);
  const before = await refusals();
  const end = Date.now() + 3000;
  while (Date.now() < end) { /* the event loop blocked, as by a burst of CPU-bound work */ }
  await sleep(20); // the sampler, overdue, runs first
  const refused = await h.fhir({ method: 'GET', url: `/fhir/Patient?family=${FAMILY}` });
  t.equal(refused.statusCode, 503);
  t.equal(refused.headers['retry-after'], '5');
  t.equal(refused.json().resourceType, 'OperationOutcome');
  t.equal(refused.json().issue[0].code, 'transient');
  t.equal((await h.app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'liveness is exempt');
  t.equal(await refusals(), before, 'an overload refusal writes no security-log row');
  await sleep(1200);
  t.equal((await h.fhir({ method: 'GET', url: '/fhir/metadata' })).statusCode, 200, 'served again once the loop keeps up');
});

t.test('one JSON log line per request: request id, interaction, type, status, timing, caller; no query values or ids', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); done(); } });
  const h = await testApp(t);
  const config = h.config;
  const app = await buildApp({ config, db: h.db, logger: { level: 'info', stream } });
  t.teardown(() => app.close());
  const created = await app.inject({ method: 'POST', url: '/fhir/Patient', headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/fhir+json' }, payload: { resourceType: 'Patient', name: [{ family: FAMILY }] } });
  const id = String(created.json().id);
  await app.inject({ method: 'GET', url: `/fhir/Patient?family=${FAMILY}`, headers: { authorization: `Bearer ${h.token}` } });
  const requests = lines.filter((l) => l.msg === 'request');
  t.equal(requests.length, 2, 'one line per request (Fastify\'s own two are off)');
  t.match(requests[0], { reqId: String, method: 'POST', route: '/fhir/Patient', interaction: 'create', type: 'Patient', status: 201, ms: Number, userId: h.userId, role: 'admin' });
  t.match(requests[1], { interaction: 'search-type', status: 200 });
  const all = JSON.stringify(lines);
  t.notOk(all.includes(FAMILY), 'no search value or name in the log');
  t.notOk(all.includes(id), 'no resource id in the request lines');
});

t.test('jobs: the in-process runner\'s runs and durations on the app\'s /metrics', async (t) => {
  const base = await testApp(t);
  const runner = startLocalRunner({ db: base.db, config: base.config, log: silentLog, auditLog: base.app.auditLog, now: () => new Date() }, { schedules: false });
  t.teardown(() => runner.close());
  const app = await buildApp({ config: base.config, db: base.db, logger: false, jobs: runner });
  t.teardown(() => app.close());
  await runner.enqueue('outbox-sweep', `sweep-${Date.now()}`, {});
  await runner.idle();
  const text = (await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${base.token}` } })).body;
  t.equal(sample(text, 'hms_job_runs_total', 'queue="outbox-sweep",outcome="completed"'), 1);
  t.equal(sample(text, 'hms_job_duration_seconds_count', 'queue="outbox-sweep",outcome="completed"'), 1);
});

t.test('hms worker: its job metrics on HMS_METRICS_PORT', { skip: process.env.REDIS_URL ? false : 'needs REDIS_URL (BullMQ)' }, async (t) => {
  const config = testConfig(t, { HMS_METRICS_PORT: 0, HMS_QUEUE_PREFIX: testPrefix(), HMS_OUTBOX_SWEEP_SECONDS: 1 });
  await testDb(t, config);
  const worker = await startWorker(config, { queues: ['outbox-sweep'], log: silentLog });
  t.teardown(async () => {
    await worker.close();
    const queues = new BullQueues(config, silentLog);
    for (const q of queues.all()) await q.obliterate({ force: true }).catch(() => undefined);
    await queues.close();
  });
  t.ok(worker.metricsPort, 'listening');
  const text = await until(async () => (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text(), (s) => s.includes('hms_job_runs_total{queue="outbox-sweep",outcome="completed"}'), 10_000);
  t.ok((sample(text, 'hms_job_runs_total', 'queue="outbox-sweep",outcome="completed"') ?? 0) >= 1, 'the sweeps it ran');
  t.match(text, /# TYPE hms_job_outbox gauge/);
  t.ok(sample(text, 'hms_process_resident_memory_bytes', '') !== undefined);
});

t.test('/health/ready with Redis away: 200 "degraded" (the API needs only the database); /health: 503', async (t) => {
  const h = await testApp(t, { REDIS_URL: `redis://127.0.0.1:${await freePort()}/0` });
  const ready = await h.app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200, 'still ready: a Sentinel failover must not empty the balancer');
  t.match(ready.json(), { status: 'degraded', redis: 'down', database: 'up' });
  t.equal((await h.app.inject({ method: 'GET', url: '/health' })).statusCode, 503, '/health keeps its meaning');
});
