/**
 * What the fault tests of background work share (test/integration/jobs-faults-*.test.ts): a lab
 * client with its patient, its messages (FHIR Bundles and HL7 v2 ORU^R01), posting and settling
 * them, the exactly-once check, and the app and worker environment of a fault test.
 */
import type { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { testApp, type TestApp } from './app.js';
import { clientToken, makePractitioner, SCOPES } from './access-world.js';
import { makePatient, unique } from './world.js';
import { silentLog, testPrefix } from './jobs.js';
import { childEnv, until, within, type WorkerPool } from './processes.js';
import { BullQueues } from '../../src/workers/bullmq.js';
import type { Config } from '../../src/config.js';

export type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const REDIS_URL = process.env.REDIS_URL;
export const DATABASE_URL = process.env.DATABASE_URL;
const LOINC = 'http://loinc.org';
const MRN = 'http://hospital.example.org/mrn';

export const json = (v: unknown): J | undefined => (v === null || v === undefined ? undefined : (typeof v === 'string' ? JSON.parse(v) : v) as J);
export const elapsed = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/** Removes a prefix's queues from a Redis (their keys: jobs, schedulers, events). */
export async function obliterate(config: Config): Promise<void> {
  const bull = new BullQueues(config, silentLog);
  try {
    for (const q of bull.all()) await within(q.obliterate({ force: true }), 10_000, 'obliterate').catch(() => undefined);
  } finally {
    await bull.close();
  }
}

export interface Lab {
  h: TestApp;
  patient: string;
  mrn: string;
  token: string;
  clientId: string;
}

/** A patient with an MRN and a lab client's token on a test app. */
export async function lab(h: TestApp): Promise<Lab> {
  const mrn = `MRN-${unique()}`;
  // a primary doctor: an unsolicited result is for them (Observation.performer)
  const doctor = await makePractitioner(h);
  const patient = await makePatient(h, `Fault${unique()}`, { identifier: [{ system: MRN, value: mrn }], generalPractitioner: [{ reference: `Practitioner/${doctor}` }] });
  const c = await clientToken(h, SCOPES['lab client']);
  return { h, patient, mrn, token: c.token, clientId: c.clientId };
}

/** A glucose Observation of the patient (by identifier, as a lab names it). */
export const observation = (l: Lab, value: number, mrn = l.mrn): J => ({
  resourceType: 'Observation', status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  code: { coding: [{ system: LOINC, code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' }] },
  subject: { identifier: { system: MRN, value: mrn } }, effectiveDateTime: '2026-11-30T08:00:00Z',
  valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
});

/** A Bundle of `n` Observations, identified by `value` (its control id is bundle:urn:fault-test|value). */
export const bundle = (l: Lab, value: string, n = 1, mrn = l.mrn): J => ({
  resourceType: 'Bundle', type: 'collection', identifier: { system: 'urn:fault-test', value },
  entry: Array.from({ length: n }, (_, i) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource: observation(l, 70 + i, mrn) })),
});

/**
 * An HL7 v2.5.1 ORU^R01 of the patient (PID-3 its MRN) with MSH-10 `controlId`: one OBR (a
 * DiagnosticReport) of `n` OBX results (Observations).
 */
export const oru = (l: Lab, controlId: string, n = 1): string => [
  `MSH|^~\\&|FAULTLAB|FAULTFAC|HMS|HOSP|20261130080000||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
  `PID|1||${l.mrn}^^^HOSP^MR||Fault^Test||19700101|F`,
  'OBR|1|ORD-1|FIL-1|24323-8^Comprehensive metabolic panel^LN|||20261130073000|||||||||||||||20261130080000||CH|F',
  ...Array.from({ length: n }, (_, i) => `OBX|${i + 1}|NM|2345-7^Glucose^LN||${90 + i}|mg/dL^mg/dL^UCUM|70-99|N|||F|||20261130073000`),
].join('\r');

export async function post(l: Lab, body: J | string, h = l.h): Promise<{ status: number; id?: string; body: string }> {
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
export async function postMany(t: Test, l: Lab, n: number, entries = 1, tag = unique(), hl7 = false): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await post(l, hl7 && i % 2 === 1 ? oru(l, `${tag}-${i}`, entries) : bundle(l, `${tag}-${i}`, entries));
    if (r.status !== 202) t.fail(`message ${i} answered ${r.status}: ${r.body}`);
    else ids.push(r.id!);
  }
  return ids;
}

export interface MessageRow { id: string; status: string; attempts: number; result?: J; outcome?: J }

export async function messages(h: TestApp, ids: string[]): Promise<MessageRow[]> {
  const rows = (await h.db('ingest_messages').whereIn('id', ids).select('id', 'status', 'attempts', 'result', 'outcome')) as J[];
  return rows.map((r) => ({ id: String(r.id), status: String(r.status), attempts: Number(r.attempts), result: json(r.result), outcome: json(r.outcome) }));
}

export const finished = (rows: MessageRow[], n: number): boolean => rows.length === n && rows.every((r) => r.status === 'done' || r.status === 'failed');

/** Polls until every message is done or failed (bounded); returns the rows as they are then. */
export async function settle(h: TestApp, ids: string[], ms: number): Promise<MessageRow[]> {
  return until(() => messages(h, ids), (rows) => finished(rows, ids.length), ms, 100);
}

export const countOf = async (q: Promise<J[]>): Promise<number> => Number((await q)[0]!.n);

/**
 * Every message done once: status done, its outbox row done, as many Observations for the
 * patient as the messages carried, the ids the messages name all distinct and all there.
 */
export async function exactlyOnce(t: Test, l: Lab, ids: string[], perMessage: number, pool?: WorkerPool): Promise<void> {
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

/** The app of a fault test (on its own queue prefix, its queues removed at teardown) and the environment of its workers. */
export async function faultSetup(t: Test): Promise<{ h: TestApp; prefix: string; workerEnv: (extra?: Record<string, string | undefined>) => NodeJS.ProcessEnv }> {
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
  return { h, prefix, workerEnv };
}
