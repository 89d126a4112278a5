/**
 * The faults HMS's background work must survive (issue 9, docs/jobs.md), against real Redis, real
 * MariaDB and real `hms worker` processes (node bin/hms.mjs worker) with short timings: two
 * workers at once, a worker SIGKILLed mid-batch, poison messages (one that kills its worker every
 * time, one that throws, one naming no patient), Redis stopped and restarted empty, the database
 * cut off from a worker, two overdue sweeps at once, and `hms jobs status`.
 *
 * The API runs in this process (fastify.inject) on the test's queue prefix; messages are FHIR
 * Bundles and HL7 v2 ORU^R01 posted as a lab client. Every wait is a bounded poll of the database.
 * Needs REDIS_URL and DATABASE_URL (MariaDB); skipped otherwise. Diagnostics: the workers' output
 * is printed when a test fails; HMS_TEST_WORKER_LOG_LEVEL=info logs every job, and
 * HMS_TEST_LOG_DIR=<dir> keeps each pool's output in a file there.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { testApp, type TestApp } from '../helpers/app.js';
import { clientToken, makePractitioner, SCOPES } from '../helpers/access-world.js';
import { makePatient, unique } from '../helpers/world.js';
import { silentLog, testPrefix } from '../helpers/jobs.js';
import { childEnv, CuttableProxy, freePort, hms, RedisServer, sleep, stop, until, within, WorkerPool } from '../helpers/processes.js';
import { BullQueues } from '../../src/workers/bullmq.js';
import { QUEUE_NAMES } from '../../src/workers/queues.js';
import { overdueBilling } from '../../src/workers/processors/overdue-billing.js';
import type { Config } from '../../src/config.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REDIS_URL = process.env.REDIS_URL;
const DATABASE_URL = process.env.DATABASE_URL;
const LOINC = 'http://loinc.org';
const MRN = 'http://hospital.example.org/mrn';

const json = (v: unknown): J | undefined => (v === null || v === undefined ? undefined : (typeof v === 'string' ? JSON.parse(v) : v) as J);
const elapsed = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/** Removes a prefix's queues from a Redis (their keys: jobs, schedulers, events). */
async function obliterate(config: Config): Promise<void> {
  const bull = new BullQueues(config, silentLog);
  try {
    for (const q of bull.all()) await within(q.obliterate({ force: true }), 10_000, 'obliterate').catch(() => undefined);
  } finally {
    await bull.close();
  }
}

interface Lab {
  h: TestApp;
  patient: string;
  mrn: string;
  token: string;
  clientId: string;
}

/** A patient with an MRN and a lab client's token on a test app. */
async function lab(h: TestApp): Promise<Lab> {
  const mrn = `MRN-${unique()}`;
  // a primary doctor: an unsolicited result is for them (Observation.performer)
  const doctor = await makePractitioner(h);
  const patient = await makePatient(h, `Fault${unique()}`, { identifier: [{ system: MRN, value: mrn }], generalPractitioner: [{ reference: `Practitioner/${doctor}` }] });
  const c = await clientToken(h, SCOPES['lab client']);
  return { h, patient, mrn, token: c.token, clientId: c.clientId };
}

/** A glucose Observation of the patient (by identifier, as a lab names it). */
const observation = (l: Lab, value: number, mrn = l.mrn): J => ({
  resourceType: 'Observation', status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  code: { coding: [{ system: LOINC, code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' }] },
  subject: { identifier: { system: MRN, value: mrn } }, effectiveDateTime: '2026-11-30T08:00:00Z',
  valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
});

/** A Bundle of `n` Observations, identified by `value` (its control id is bundle:urn:fault-test|value). */
const bundle = (l: Lab, value: string, n = 1, mrn = l.mrn): J => ({
  resourceType: 'Bundle', type: 'collection', identifier: { system: 'urn:fault-test', value },
  entry: Array.from({ length: n }, (_, i) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource: observation(l, 70 + i, mrn) })),
});

/**
 * An HL7 v2.5.1 ORU^R01 of the patient (PID-3 its MRN) with MSH-10 `controlId`: one OBR (a
 * DiagnosticReport) of `n` OBX results (Observations).
 */
const oru = (l: Lab, controlId: string, n = 1): string => [
  `MSH|^~\\&|FAULTLAB|FAULTFAC|HMS|HOSP|20261130080000||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
  `PID|1||${l.mrn}^^^HOSP^MR||Fault^Test||19700101|F`,
  'OBR|1|ORD-1|FIL-1|24323-8^Comprehensive metabolic panel^LN|||20261130073000|||||||||||||||20261130080000||CH|F',
  ...Array.from({ length: n }, (_, i) => `OBX|${i + 1}|NM|2345-7^Glucose^LN||${90 + i}|mg/dL^mg/dL^UCUM|70-99|N|||F|||20261130073000`),
].join('\r');

async function post(l: Lab, body: J | string, h = l.h): Promise<{ status: number; id?: string; body: string }> {
  const hl7 = typeof body === 'string';
  const res = await h.fhir({
    method: 'POST', url: '/ingest/lab-results', token: l.token,
    headers: { 'content-type': hl7 ? 'x-application/hl7-v2+er7' : 'application/fhir+json' }, payload: hl7 ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, id: res.statusCode === 202 || res.statusCode === 200 ? String(res.json().id) : undefined, body: res.body };
}

/**
 * Posts `n` messages of `entries` Observations each (with `hl7`, every other one an HL7 v2
 * ORU^R01, whose OBR is a DiagnosticReport too); every one must be accepted (202).
 */
async function postMany(t: Test, l: Lab, n: number, entries = 1, tag = unique(), hl7 = false): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await post(l, hl7 && i % 2 === 1 ? oru(l, `${tag}-${i}`, entries) : bundle(l, `${tag}-${i}`, entries));
    if (r.status !== 202) t.fail(`message ${i} answered ${r.status}: ${r.body}`);
    else ids.push(r.id!);
  }
  return ids;
}

interface MessageRow { id: string; status: string; attempts: number; result?: J; outcome?: J }

async function messages(h: TestApp, ids: string[]): Promise<MessageRow[]> {
  const rows = (await h.db('ingest_messages').whereIn('id', ids).select('id', 'status', 'attempts', 'result', 'outcome')) as J[];
  return rows.map((r) => ({ id: String(r.id), status: String(r.status), attempts: Number(r.attempts), result: json(r.result), outcome: json(r.outcome) }));
}

const finished = (rows: MessageRow[], n: number): boolean => rows.length === n && rows.every((r) => r.status === 'done' || r.status === 'failed');

/** Polls until every message is done or failed (bounded); returns the rows as they are then. */
async function settle(h: TestApp, ids: string[], ms: number): Promise<MessageRow[]> {
  return until(() => messages(h, ids), (rows) => finished(rows, ids.length), ms, 100);
}

const countOf = async (q: Promise<J[]>): Promise<number> => Number((await q)[0]!.n);

/**
 * Every message done once: status done, its outbox row done, as many Observations for the
 * patient as the messages carried, the ids the messages name all distinct and all there.
 */
async function exactlyOnce(t: Test, l: Lab, ids: string[], perMessage: number, pool?: WorkerPool): Promise<void> {
  const rows = await messages(l.h, ids);
  const notDone = rows.filter((r) => r.status !== 'done');
  t.same(notDone.map((r) => `${r.id} ${r.status} ${JSON.stringify(r.outcome ?? {}).slice(0, 300)}`), [], `all ${ids.length} messages done`);
  const named = rows.flatMap((r) => (r.result?.Observation as string[] | undefined) ?? []);
  t.equal(named.length, ids.length * perMessage, 'each message names its Observations');
  t.equal(new Set(named).size, named.length, 'the Observation ids are distinct');
  const observations = await countOf(l.h.db('observations').where({ patient_id: l.patient }).count({ n: '*' }));
  const labResults = await countOf(l.h.db('lab_results').where({ patient_id: l.patient }).count({ n: '*' }));
  t.equal(observations, ids.length * perMessage, `one Observation per result: ${observations} observations rows for the patient`);
  t.equal(labResults, ids.length * perMessage, `and as many lab_results rows (${labResults})`);
  const existing = await countOf(l.h.db('observations').whereIn('id', named.length ? named : ['-']).count({ n: '*' }));
  t.equal(existing, named.length, 'every id a message names exists');
  const reports = rows.flatMap((r) => (r.result?.DiagnosticReport as string[] | undefined) ?? []);
  const reportRows = await countOf(l.h.db('diagnostic_reports').where({ patient_id: l.patient }).count({ n: '*' }));
  t.equal(reportRows, reports.length, `one DiagnosticReport per HL7 OBR (${reports.length}), none twice`);
  const outbox = (await l.h.db('job_outbox').whereIn('id', ids).select('status')) as J[];
  t.same([...new Set(outbox.map((r) => r.status))], ['done'], 'every outbox row done');
  t.equal((await messages(l.h, ids)).filter((r) => r.status === 'processing').length, 0, 'nothing stuck in processing');
  if (!t.passing() && pool) t.comment(pool.logs().slice(-20_000));
}

if (!REDIS_URL || !DATABASE_URL) {
  t.plan(0, 'the fault tests need real Redis and MariaDB: set REDIS_URL and DATABASE_URL');
} else {
  const prefix = testPrefix();
  const dataDir = mkdtempSync(join(tmpdir(), 'hms-faults-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const h = await testApp(t, { HMS_QUEUE_PREFIX: prefix, HMS_JOB_ATTEMPTS: 3 });
  t.teardown(() => obliterate(h.config));

  /** The environment of a worker: short lock, sweep and stale times, 3 attempts. */
  const workerEnv = (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => childEnv({
    DATABASE_URL, REDIS_URL, HMS_QUEUE_PREFIX: prefix, HMS_DATA_DIR: dataDir,
    HMS_JOB_LOCK_SECONDS: '2', HMS_OUTBOX_SWEEP_SECONDS: '1', HMS_OUTBOX_STALE_SECONDS: '2', HMS_JOB_ATTEMPTS: '3', LOG_LEVEL: process.env.HMS_TEST_WORKER_LOG_LEVEL ?? 'warn',
    ...extra,
  });

  t.test('two workers at once: 40 messages, each done exactly once', async (t) => {
    const l = await lab(h);
    const pool = new WorkerPool(t, workerEnv());
    await Promise.all([pool.start(), pool.start()]);
    const t0 = Date.now();
    const ids = await postMany(t, l, 40, 2, unique(), true);
    const rows = await settle(h, ids, 40_000);
    t.ok(finished(rows, ids.length), `settled in ${elapsed(t0)}`);
    await exactlyOnce(t, l, ids, 2, pool);
    t.same(pool.exits, [], 'no worker exited');
    t.comment(`two workers: 40 messages (20 FHIR, 20 HL7 v2; 80 Observations, 20 DiagnosticReports) posted and done in ${elapsed(t0)}`);
  });

  t.test('a worker SIGKILLed mid-batch: every message done exactly once, none left processing', async (t) => {
    const l = await lab(h);
    const pool = new WorkerPool(t, workerEnv());
    pool.restart = false;
    // the batch is waiting when the worker starts: it is killed with most of it to do
    const ids = await postMany(t, l, 40, 4, unique(), true);
    await pool.start();
    const doneCount = async () => (await messages(h, ids)).filter((r) => r.status === 'done').length;
    const before = await until(doneCount, (n) => n >= 3, 30_000, 20);
    await pool.killAll();
    const killedAt = Date.now();
    const atKill = await messages(h, ids);
    const doneAtKill = atKill.filter((r) => r.status === 'done').length;
    t.ok(before >= 3 && doneAtKill < ids.length, `killed mid-batch: ${doneAtKill} of ${ids.length} done, ${atKill.filter((r) => r.status === 'processing').length} processing`);
    await pool.start();
    const rows = await settle(h, ids, 40_000);
    t.ok(finished(rows, ids.length), `the new worker finished the rest in ${elapsed(killedAt)} after the kill`);
    await exactlyOnce(t, l, ids, 4, pool);
    t.ok(rows.some((r) => r.attempts > 1) || doneAtKill === ids.length, `messages cut off were run again (${rows.filter((r) => r.attempts > 1).length} with attempts > 1)`);
    t.comment(`SIGKILL: ${doneAtKill}/40 done at the kill; the rest done ${elapsed(killedAt)} after it`);
  });

  t.test('poison messages fail alone: one that kills its worker, one that throws, one naming no patient, an invalid one', async (t) => {
    const l = await lab(h);
    const tag = unique();
    const exitValue = `POISON-EXIT-${tag}`;
    const throwValue = `POISON-THROW-${tag}`;
    const pool = new WorkerPool(t, workerEnv({ HMS_TEST_FAULTS: `exit:${exitValue},throw:${throwValue}` }));
    await Promise.all([pool.start(), pool.start()]);
    const t0 = Date.now();
    const good: string[] = [];
    const send = async (body: J): Promise<string> => {
      const r = await post(l, body);
      if (r.status !== 202) t.fail(`answered ${r.status}: ${r.body}`);
      return r.id!;
    };
    // those that cannot succeed first, settled before a worker dies (one killed with them in
    // flight would have them run again: attempts 2)
    const unmatched = await send(bundle(l, `NOBODY-${tag}`, 1, `NOBODY-${tag}`));
    // a result the write path refuses: its effective period ends before it starts
    const invalidBundle = bundle(l, `INVALID-${tag}`, 2);
    invalidBundle.entry[1].resource = { ...invalidBundle.entry[1].resource, effectiveDateTime: undefined, effectivePeriod: { start: '2026-11-30T10:00:00Z', end: '2026-11-30T09:00:00Z' } };
    const invalid = await send(invalidBundle);
    t.ok(finished(await settle(h, [unmatched, invalid], 20_000), 2), 'the unmatched and the invalid message settle');
    // the poison messages among good ones, so that good ones are in flight when a worker dies
    good.push(...await postMany(t, l, 4, 2, `${tag}-a`));
    const exit = await send(bundle(l, exitValue, 2));
    good.push(...await postMany(t, l, 4, 2, `${tag}-b`));
    const thrown = await send(bundle(l, throwValue, 2));
    good.push(...await postMany(t, l, 8, 2, `${tag}-c`, true));
    const all = [exit, thrown, unmatched, invalid, ...good];
    const rows = await settle(h, all, 80_000);
    t.ok(finished(rows, all.length), `all settled in ${elapsed(t0)}`);
    const byId = new Map(rows.map((r) => [r.id, r]));

    const e = byId.get(exit)!;
    t.equal(e.status, 'failed', 'the message that kills its worker ends failed');
    t.match(e.outcome?.issue?.[0]?.diagnostics, /abandoned/i, `its outcome says it was abandoned: ${e.outcome?.issue?.[0]?.diagnostics}`);
    const exitOutbox = await h.db('job_outbox').where({ id: exit }).first();
    t.equal(Number(exitOutbox.attempts), 3, 'started HMS_JOB_ATTEMPTS (3) times');
    t.equal(exitOutbox.status, 'failed', 'its outbox row failed');
    t.equal(e.attempts, 3, 'the message counts 3 attempts');
    const kills = pool.exits.filter((x) => x.signal === 'SIGKILL').length;
    t.equal(kills, 3, `it killed a worker each time it ran (${kills} kills)`);

    const th = byId.get(thrown)!;
    t.equal(th.status, 'failed', 'the message that throws ends failed');
    t.equal(th.attempts, 3, 'after HMS_JOB_ATTEMPTS attempts');
    t.match(th.outcome?.issue?.[0]?.diagnostics, /injected fault/, 'with the error as its outcome');

    const u = byId.get(unmatched)!;
    t.equal(u.status, 'failed', 'the message naming no patient ends failed');
    t.equal(u.attempts, 1, 'at once: no retries');
    t.match(u.outcome?.issue?.[0]?.diagnostics, /No patient matches/, 'saying so');

    const inv = byId.get(invalid)!;
    t.equal(inv.status, 'failed', 'the invalid message ends failed');
    t.equal(inv.attempts, 1, 'at once: no retries');
    t.match(JSON.stringify(inv.outcome), /effectivePeriod/, 'its outcome names the element');

    for (const id of [exit, thrown, unmatched, invalid]) {
      // its writes (and their audit rows, written in the same transaction) were rolled back
      const created = await countOf(h.db('security_logs').where({ action: 'create', client_id: l.clientId }).andWhere('additional_data', 'like', `%${id}%`).count({ n: '*' }));
      t.equal(created, 0, `failed message ${byId.get(id)!.status === 'failed' ? '' : '(not failed!) '}${id} created nothing`);
    }
    const goodCreated = await countOf(h.db('security_logs').where({ action: 'create', client_id: l.clientId }).andWhere('additional_data', 'like', `%${good[0]}%`).count({ n: '*' }));
    t.equal(goodCreated, 2, 'where a good message has the audit rows of its two Observations');
    const goodRows = good.map((id) => byId.get(id)!);
    t.same(goodRows.filter((r) => r.status !== 'done').map((r) => `${r.status} attempts ${r.attempts}: ${JSON.stringify(r.outcome)}`), [], `all ${good.length} other messages done`);
    const observations = await countOf(h.db('observations').where({ patient_id: l.patient }).count({ n: '*' }));
    t.equal(observations, good.length * 2, 'only the good messages wrote, each once');
    t.comment(`poison: settled in ${elapsed(t0)}; ${kills} worker kills; good messages with attempts > 1: ${goodRows.filter((r) => r.attempts > 1).length}`);
    if (!t.passing()) t.comment(pool.logs().slice(-30_000));
  });

  t.test('Redis stopped while messages arrive, then restarted empty: 202 or 503, never 500; every accepted message done', async (t) => {
    const redis = new RedisServer(t, await freePort());
    await redis.start();
    t.teardown(() => redis.kill());
    const rprefix = testPrefix();
    const h2 = await testApp(t, { HMS_QUEUE_PREFIX: rprefix, REDIS_URL: redis.url, HMS_JOB_ATTEMPTS: 3 });
    const l = await lab(h2);
    const pool = new WorkerPool(t, workerEnv({ REDIS_URL: redis.url, HMS_QUEUE_PREFIX: rprefix }));
    const [first] = await Promise.all([pool.start(), pool.start()]);
    const warm = await postMany(t, l, 3, 1, `warm-${unique()}`);
    t.ok(finished(await settle(h2, warm, 20_000), warm.length), 'processed while Redis is up');

    await redis.kill();
    // a worker stopped during the outage (a deploy) shuts down all the same; its replacement,
    // started by the supervisor, waits for Redis
    const stopAt = Date.now();
    const stopped = stop(first!).then((exit) => ({ ...exit, ms: Date.now() - stopAt }));
    const answers: Record<number, number> = {};
    const accepted: string[] = [];
    const latencies: number[] = [];
    const tag = unique();
    for (let i = 0; i < 20; i++) {
      const t1 = Date.now();
      const r = await within(post(l, bundle(l, `down-${tag}-${i}`)), 15_000, `POST ${i} while Redis is down`);
      latencies.push(Date.now() - t1);
      answers[r.status] = (answers[r.status] ?? 0) + 1;
      if (r.status === 202) accepted.push(r.id!);
      else if (r.status !== 503) t.fail(`answered ${r.status} while Redis is down: ${r.body}`);
    }
    // an API process started while Redis is down (a restarted or added `hms serve`) answers too
    const fresh = await testApp(t, { HMS_QUEUE_PREFIX: rprefix, REDIS_URL: redis.url, HMS_JOB_ATTEMPTS: 3 });
    for (let i = 0; i < 5; i++) {
      const t1 = Date.now();
      const r = await within(post(l, bundle(l, `down-fresh-${tag}-${i}`), fresh), 15_000, `POST ${i} to an API started while Redis is down`);
      latencies.push(Date.now() - t1);
      answers[r.status] = (answers[r.status] ?? 0) + 1;
      if (r.status === 202) accepted.push(r.id!);
      else if (r.status !== 503) t.fail(`answered ${r.status} while Redis is down: ${r.body}`);
    }
    t.same(Object.keys(answers).filter((s) => s !== '202' && s !== '503'), [], `answers while Redis was down: ${JSON.stringify(answers)}`);
    t.ok(Math.max(...latencies) < 5000, `each answered at once (slowest ${Math.max(...latencies)} ms)`);
    const stoppedExit = await stopped;
    t.same({ code: stoppedExit.code, signal: stoppedExit.signal }, { code: 0, signal: null }, `a worker stopped during the outage exits by itself (in ${stoppedExit.ms} ms)`);
    // by now (the stop took seconds) the workers and their sweepers have met a Redis that is not there
    const stillQueued = (await messages(h2, accepted)).filter((r) => r.status === 'queued').length;
    t.equal(stillQueued, accepted.length, 'nothing processed while Redis is down (the messages wait in the database)');

    const restarted = Date.now();
    await redis.start();
    const rows = await settle(h2, accepted, 40_000);
    const recovery = elapsed(restarted);
    t.ok(finished(rows, accepted.length), `after Redis came back (empty), all ${accepted.length} accepted messages settled in ${recovery}`);
    await exactlyOnce(t, l, [...warm, ...accepted], 1, pool);
    const later = await post(l, bundle(l, `after-${tag}`));
    t.equal(later.status, 202, 'the API enqueues again');
    t.ok(finished(await settle(h2, [later.id!], 20_000), 1), 'and a new message is processed');
    t.equal(pool.live().length, 2, 'the replacement worker came up once Redis was back');
    t.comment(`Redis down: ${JSON.stringify(answers)} (slowest answer ${Math.max(...latencies)} ms); a worker stopped in ${stoppedExit.ms} ms; all accepted done ${recovery} after Redis restarted empty`);
    if (!t.passing()) t.comment(pool.logs().slice(-20_000));
    await pool.close();
    await obliterate(h2.config);
  });

  t.test('the database cut off from a worker during ingestion: messages retry and complete, each once', async (t) => {
    // This simulates the database server going away as the worker sees it (every connection
    // dropped, connections refused, then accepted again) with a TCP proxy between the worker and
    // MariaDB: a real restart of the shared MariaDB is not possible in CI.
    const url = new URL(DATABASE_URL);
    const proxy = new CuttableProxy(url.hostname, Number(url.port || 3306));
    const port = await proxy.listen();
    t.teardown(() => proxy.close());
    url.host = `127.0.0.1:${port}`;
    const l = await lab(h);
    const pool = new WorkerPool(t, workerEnv({ DATABASE_URL: url.toString() }));
    pool.restart = false;
    await pool.start();
    const ids = await postMany(t, l, 40, 4);
    const doneCount = async () => (await messages(h, ids)).filter((r) => r.status === 'done').length;
    await until(doneCount, (n) => n >= 3, 30_000, 20);
    await proxy.cut();
    const cutAt = Date.now();
    const doneAtCut = await doneCount();
    await sleep(3000);
    await proxy.listen(port);
    const back = Date.now();
    const rows = await settle(h, ids, 60_000);
    t.ok(finished(rows, ids.length), `settled ${elapsed(back)} after the database came back`);
    t.ok(doneAtCut < ids.length, `cut mid-batch: ${doneAtCut} of ${ids.length} done at the cut`);
    await exactlyOnce(t, l, ids, 4, pool);
    t.same(pool.exits, [], 'the worker did not exit');
    t.comment(`database cut for ${((back - cutAt) / 1000).toFixed(1)} s with ${doneAtCut}/40 done; all done ${elapsed(back)} after; attempts > 1: ${rows.filter((r) => r.attempts > 1).length}`);
  });

  t.test('two overdue sweeps at once (hms jobs run overdue-billing, twice): each invoice changed once', async (t) => {
    const patient = await makePatient(h);
    // the sweep acts on every invoice of the database: this test's live in a year of their own,
    // after every year before 1900 that other runs used, with everything earlier swept first
    const latest = (await h.db('billing').where('due_date', '<', '1900-01-01').max({ d: 'due_date' }))[0] as J;
    const y = latest?.d ? Number(String(latest.d).slice(0, 4)) + 1 : 1500;
    await overdueBilling({ asOf: `${y}-01-01` }, { db: h.db, config: h.config, log: silentLog, auditLog: h.app.auditLog, now: () => new Date() });
    const N = 500;
    const rows = Array.from({ length: N }, (_, i) => ({
      id: randomUUID(), patient_id: patient, invoice_number: `FLT-${unique()}-${i}`, service_date: `${y}-01-10`, service_description: 'Fault test',
      amount_charged: 50 + i, amount_paid: i % 3 === 0 ? 10 : 0, payment_status: i % 3 === 0 ? 'partial' : 'pending',
      billing_date: `${y}-01-10`, due_date: `${y}-0${2 + (i % 7)}-1${i % 10}`, created_by: h.userId, version_id: 1,
      created_at: '2020-01-10 08:00:00', updated_at: '2020-01-10 08:00:00',
    }));
    await h.db.batchInsert('billing', rows, 100);
    const ids = rows.map((r) => r.id);
    const env = workerEnv({ HMS_OVERDUE_BATCH: '25' });
    // a barrier, so that the two sweeps run at the same time whatever their start-up takes: a
    // run notes its start in job_last_runs before it sweeps; this test holds that row's lock
    // until both runs wait for it
    await h.db('job_last_runs').insert({ queue: 'overdue-billing', job_id: 'barrier', status: 'completed', started_at: '2020-01-01 00:00:00', runs: 0, failures: 0 }).onConflict('queue').ignore();
    const barrier = await h.db.transaction();
    await barrier('job_last_runs').where({ queue: 'overdue-billing' }).forUpdate().select('queue');
    const t0 = Date.now();
    const runs = [hms(t, ['jobs', 'run', 'overdue-billing', '--as-of', `${y}-12-01`], env), hms(t, ['jobs', 'run', 'overdue-billing', '--as-of', `${y}-12-01`], env)];
    const waitingRuns = async () => Number(((await h.db.raw("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'insert ignore into `job_last_runs`%'")) as J[][])[0]![0]!.n);
    const blocked = await until(waitingRuns, (n) => n >= 2 || runs.some((r) => !r.running()), 20_000, 50);
    await barrier.commit();
    t.equal(blocked, 2, 'both runs started and wait at the barrier');
    const released = Date.now();
    const exits = await within(Promise.all(runs.map((r) => r.exited)), 90_000, 'both sweeps');
    t.same(exits.map((e) => e.code), [0, 0], `both runs exit 0${runs.some((r) => r.stderr()) ? ` (stderr: ${runs.map((r) => r.stderr().slice(-500)).join(' | ')})` : ''}`);
    const results = runs.map((r) => JSON.parse(r.stdout().trim().split('\n').pop()!).result as J);
    const changed = results.map((r) => Number(r.changed));
    t.equal(changed[0]! + changed[1]!, N, `every invoice changed once in all (${changed.join(' + ')})`);
    t.ok(results.every((r) => Number(r.examined) > 0), `both runs took part (examined ${results.map((r) => r.examined).join(' and ')})`);
    const after = (await h.db('billing').whereIn('id', ids).select('id', 'version_id', 'payment_status')) as J[];
    t.equal(after.filter((r) => r.payment_status === 'overdue').length, N, 'all overdue');
    t.equal(after.filter((r) => Number(r.version_id) === 2).length, N, 'each one version up');
    const history = (await h.db('resource_history').where({ resource_type: 'Invoice' }).whereIn('resource_id', ids).groupBy('resource_id').select('resource_id').count({ n: '*' })) as J[];
    // a row written natively gains its first state (version 1) and the new version (2)
    t.same(history.filter((r) => Number(r.n) !== 2).map((r) => `${r.resource_id}: ${r.n}`), [], 'one new version each in resource_history');
    t.equal(history.length, N, 'every invoice has its history');
    t.comment(`two concurrent sweeps over ${N} invoices: ${changed.join(' + ')} changes, ${elapsed(released)} from the barrier (${elapsed(t0)} with the start-up)`);

    t.test('hms jobs status prints every queue with its counts and last run', async (t) => {
      const run = hms(t, ['jobs', 'status'], env);
      const exit = await within(run.exited, 30_000, 'jobs status');
      t.equal(exit.code, 0, `exits 0 ${run.stderr()}`);
      const out = run.stdout();
      t.match(out, /^Jobs: BullMQ/, 'on BullMQ');
      for (const q of QUEUE_NAMES) t.match(out, new RegExp(`^${q}\\n  waiting \\d+, active \\d+, delayed \\d+, failed \\d+, completed \\d+`, 'm'), `${q} with its counts`);
      t.match(out, /overdue-billing\n(?: {2}.*\n)*? {2}last run: completed .*"changed":\d+/, 'the last overdue run with its result');
      t.match(out, /lab-ingest\n(?: {2}.*\n)*? {2}recorded work not done: /, 'the recorded work of lab-ingest');
      // the figures are BullMQ's (nothing runs now: the workers above have stopped)
      const bull = new BullQueues(h.config, silentLog);
      try {
        const c = await bull.queue('lab-ingest').getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        t.match(out, `lab-ingest\n  waiting ${c.waiting ?? 0}, active ${c.active ?? 0}, delayed ${c.delayed ?? 0}, failed ${c.failed ?? 0}, completed ${c.completed ?? 0}\n`, `lab-ingest's counts are BullMQ's (${c.completed ?? 0} completed, ${c.failed ?? 0} failed)`);
      } finally {
        await bull.close();
      }
    });
  });
}
