/**
 * The embedded mode's in-process runner: the API enqueues into it, it processes lab messages by
 * itself, retries a failing run with backoff, and its sweeper takes up recorded work that no
 * runner held (a crash of the process that stored it) and gives up on work that never finishes.
 */
import t, { type Test } from 'tap';
import { buildApp } from '../../src/api/app.js';
import { createAdmin } from '../../src/auth/admin.js';
import { startSession } from '../../src/auth/sessions.js';
import { AuditLog } from '../../src/db/audit-log.js';
import { acceptLabMessage } from '../../src/ingest/intake.js';
import { startLocalRunner, nextDelay } from '../../src/workers/local-runner.js';
import { outboxSweep } from '../../src/workers/processors/outbox-sweep.js';
import { QUEUES } from '../../src/workers/queues.js';
import { testConfig, testDb } from '../helpers/app.js';
import { silentLog } from '../helpers/jobs.js';
import { unique } from '../helpers/world.js';
import { until } from '../helpers/processes.js';

const LOINC = 'http://loinc.org';

async function setup(t: Test, overrides = {}) {
  const config = testConfig(t, { HMS_OUTBOX_STALE_SECONDS: 1, HMS_OUTBOX_SWEEP_SECONDS: 1, HMS_JOB_ATTEMPTS: 3, ...overrides });
  const db = await testDb(t, config);
  const auditLog = new AuditLog(db);
  const deps = { db, config, log: silentLog, auditLog, now: () => new Date() };
  const runner = startLocalRunner(deps);
  t.teardown(() => runner.close());
  const app = await buildApp({ config, db, logger: false, jobs: runner });
  t.teardown(() => app.close());
  const adminId = await createAdmin(db, { email: `a-${unique()}@test.example.org`, password: 'correct horse battery', name: 'A', cost: 12 });
  const token = await startSession(db, adminId, { ttlSeconds: 3600 });
  const inject = (method: 'GET' | 'POST', url: string, payload?: unknown) => app.inject({ method, url, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, ...(payload ? { payload: JSON.stringify(payload) } : {}) });
  const doctor = (await inject('POST', '/fhir/Practitioner', { resourceType: 'Practitioner', name: [{ family: 'Who' }], telecom: [{ system: 'email', value: `d-${unique()}@test.example.org` }], extension: [{ url: 'http://hms.example.org/fhir/StructureDefinition/practitioner-role', valueCode: 'doctor' }] })).json().id;
  const patient = (await inject('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Local', given: ['Run'] }], gender: 'male', birthDate: '1950-02-02', generalPractitioner: [{ reference: `Practitioner/${doctor}` }] })).json().id;
  return { config, db, deps, runner, app, inject, patient, adminId };
}

const obs = (patient: string, value: number) => ({
  resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '2345-7' }] }, subject: { reference: `Patient/${patient}` },
  effectiveDateTime: '2026-11-30T08:00:00Z', valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
});


t.test('the API enqueues into the in-process runner, which processes the message by itself', async (t) => {
  const s = await setup(t);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await s.inject('POST', '/ingest/lab-results', obs(s.patient, 100 + i));
    t.equal(res.statusCode, 202, res.body);
    ids.push(res.json().id);
  }
  await s.runner.idle();
  for (const id of ids) t.equal((await s.inject('GET', `/ingest/messages/${id}`)).json().status, 'done');
  // at least ours: on a shared database the runner's sweeper also takes up what other test files left recorded
  t.ok((s.runner.metrics.snapshot()['lab-ingest']?.processed ?? 0) >= 5, 'counted');
});

t.test('a run that throws is retried with backoff, then fails alone with an outcome', async (t) => {
  const s = await setup(t);
  t.teardown(() => { delete process.env.HMS_TEST_FAULTS; });
  const bundle = { resourceType: 'Bundle', type: 'collection', identifier: { system: 'urn:t', value: 'POISON-THROW' }, entry: [{ resource: obs(s.patient, 1) }] };
  process.env.HMS_TEST_FAULTS = 'throw:POISON-THROW';
  const poison = (await s.inject('POST', '/ingest/lab-results', bundle)).json().id;
  const fine = (await s.inject('POST', '/ingest/lab-results', obs(s.patient, 2))).json().id;
  const status = await until(() => s.inject('GET', `/ingest/messages/${poison}`).then((r) => r.json()), (m) => m.status === 'failed', 15_000);
  t.equal(status.status, 'failed');
  t.equal(status.attempts, 3, 'HMS_JOB_ATTEMPTS runs');
  t.match(status.outcome.issue[0].diagnostics, /injected fault/);
  t.equal((await s.inject('GET', `/ingest/messages/${fine}`)).json().status, 'done', 'the other message is not held up');
  const figures = s.runner.metrics.snapshot()['lab-ingest']!;
  t.ok(figures.retried >= 2, 'the retries counted');
  t.ok(figures.failed >= 1, 'the failure counted');
});

t.test('recorded work that no runner held is taken up by the sweeper', async (t) => {
  const s = await setup(t);
  // stored by a process that died before enqueueing: no transport at all
  const principal = { kind: 'user' as const, userId: s.adminId, role: 'admin' as const, sessionId: 'x', grants: [] };
  const { message } = await acceptLabMessage({ db: s.db, log: silentLog }, { format: 'fhir', body: obs(s.patient, 3), contentType: 'application/fhir+json', principal, channel: 'http' });
  t.equal(message.status, 'queued');
  const done = await until(() => s.inject('GET', `/ingest/messages/${message.id}`).then((r) => r.json()), (m) => m.status === 'done', 15_000);
  t.equal(done.status, 'done', 'swept and processed within seconds');
  t.equal((await s.db('job_outbox').where({ id: message.id }).first()).enqueued, 1);
});

t.test('work started again and again without finishing is abandoned, and the message says so', async (t) => {
  const s = await setup(t);
  await s.runner.close();
  const principal = { kind: 'user' as const, userId: s.adminId, role: 'admin' as const, sessionId: 'x', grants: [] };
  const { message } = await acceptLabMessage({ db: s.db, log: silentLog }, { format: 'fhir', body: obs(s.patient, 4), contentType: 'application/fhir+json', principal, channel: 'http' });
  // as a worker killed in the middle leaves it, three times over
  await s.db('job_outbox').where({ id: message.id }).update({ status: 'active', attempts: 3, updated_at: '2026-01-01 00:00:00' });
  const idle = startLocalRunner(s.deps, { schedules: false });
  t.teardown(() => idle.close());
  const result = await outboxSweep({}, { ...s.deps, queues: idle }, QUEUES);
  t.ok(Number(result.abandoned) >= 1, 'abandoned');
  const m = (await s.inject('GET', `/ingest/messages/${message.id}`)).json();
  t.equal(m.status, 'failed');
  t.match(m.outcome.issue[0].diagnostics, /abandoned/);
  t.equal((await s.db('job_outbox').where({ id: message.id }).first()).status, 'failed');
});

t.test('the sweeper removes done outbox rows after a week, and keeps the rest', async (t) => {
  const s = await setup(t);
  await s.runner.close();
  const principal = { kind: 'user' as const, userId: s.adminId, role: 'admin' as const, sessionId: 'x', grants: [] };
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await acceptLabMessage({ db: s.db, log: silentLog }, { format: 'fhir', body: obs(s.patient, 10 + i), contentType: 'application/fhir+json', principal, channel: 'http' })).message.id);
  await s.db('job_outbox').where({ id: ids[0] }).update({ status: 'done', finished_at: new Date(Date.now() - 8 * 86_400_000).toISOString().slice(0, 19).replace('T', ' ') });
  await s.db('job_outbox').where({ id: ids[1] }).update({ status: 'done', finished_at: new Date(Date.now() - 86_400_000).toISOString().slice(0, 19).replace('T', ' ') });
  const idle = startLocalRunner(s.deps, { schedules: false });
  t.teardown(() => idle.close());
  const result = await outboxSweep({}, { ...s.deps, queues: idle }, QUEUES);
  t.ok(Number(result.purged) >= 1, 'purged');
  t.same((await s.db('job_outbox').whereIn('id', ids).pluck('id')).sort(), [ids[1], ids[2]].sort());
  t.equal(Number((await s.db('ingest_messages').whereIn('id', ids).count({ n: '*' }))[0]!.n), 3, 'the messages themselves stay');
});

t.test('schedules: cron patterns and intervals', async (t) => {
  const from = new Date('2026-12-01T10:15:30Z');
  t.equal(nextDelay({ everyMs: 30_000 }, from), 30_000);
  t.equal(nextDelay({ pattern: '* * * * *' }, from), 30_000);
  t.ok(nextDelay({ pattern: '0 2 * * *' }, from) > 0);
  t.throws(() => nextDelay({ pattern: 'not a cron' }, from));
});
