/**
 * Lab ingestion end to end (docs/benchmarks.md): HL7 v2 ORU^R01 messages of R results each,
 * POSTed to /ingest/lab-results by a lab client, processed by one and then two `hms worker`
 * processes, timed from the first POST to the last message done; beside the floor: the same
 * Observations created directly with POST /fhir/Observation, same server, same run, same
 * concurrency. Prints messages/s, results/s and the ratio results/s ÷ floor Observations/s.
 *
 *   npx tsx bench/lab-ingest.ts
 *
 * Environment: DATABASE_URL (mysql://root@127.0.0.1:3306/hms_bench_ingest; dropped and made
 * again), REDIS_URL (redis://127.0.0.1:6379), INGEST_MESSAGES (400), INGEST_RESULTS (5 per
 * message), INGEST_CONCURRENCY (10 requests in flight), INGEST_WORKERS (1,2).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { createDb, migrateLatest } from '../src/db/knex.js';
import { createAdmin } from '../src/auth/admin.js';
import { startSession } from '../src/auth/sessions.js';
import { insertClient } from '../src/db/client-repository.js';
import { issueClientToken } from '../src/auth/client-tokens.js';
import { parseDatabaseUrl } from './config.js';
import { freePort, startServer } from './processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DATABASE_URL = process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/hms_bench_ingest';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MESSAGES = Number(process.env.INGEST_MESSAGES ?? 400);
const RESULTS = Number(process.env.INGEST_RESULTS ?? 5);
const CONCURRENCY = Number(process.env.INGEST_CONCURRENCY ?? 10);
const WORKERS = (process.env.INGEST_WORKERS ?? '1,2').split(',').map(Number);
const PATIENTS = 200;
const LOINC = [['2345-7', 'Glucose'], ['2823-3', 'Potassium'], ['2951-2', 'Sodium'], ['2075-0', 'Chloride'], ['2028-9', 'CO2'], ['3094-0', 'BUN'], ['2160-0', 'Creatinine'], ['17861-6', 'Calcium']];

const log = (line: string) => process.stdout.write(`${line}\n`);

function hl7(controlId: string, mrn: string): string {
  const obx = Array.from({ length: RESULTS }, (_, i) => {
    const [code, name] = LOINC[i % LOINC.length]!;
    return `OBX|${i + 1}|NM|${code}^${name}^LN||${(50 + Math.random() * 100).toFixed(1)}|mg/dL^mg/dL^UCUM|70-110|N|||F|||20261130080000+0000`;
  });
  return [
    `MSH|^~\\&|BENCHLAB|BENCHFAC|HMS|HOSP|20261130090000+0000||ORU^R01|${controlId}|P|2.5.1`,
    `PID|1||${mrn}^^^HOSP^MR||Bench^Patient||19700101|F`,
    `OBR|1|P${controlId}|F${controlId}|24323-8^Metabolic panel^LN|||20261130080000+0000||||||||||||||||||F`,
    ...obx,
  ].join('\r');
}

function observation(patient: string, doctor: string, i: number): Record<string, unknown> {
  const [code, name] = LOINC[i % LOINC.length]!;
  return {
    resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code, display: name }] }, subject: { reference: `Patient/${patient}` }, performer: [{ reference: `Practitioner/${doctor}` }],
    effectiveDateTime: '2026-11-30T08:00:00Z', valueQuantity: { value: 50 + Math.random() * 100, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
    referenceRange: [{ text: '70-110' }], interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'N' }] }],
  };
}

/** Runs `n` requests with `CONCURRENCY` in flight; resolves with seconds taken and non-2xx answers. */
async function pool(n: number, one: (i: number) => Promise<number>): Promise<{ seconds: number; failed: number }> {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) {
      const status = await one(next++);
      if (status < 200 || status >= 300) failed++;
    }
  }));
  return { seconds: (performance.now() - t0) / 1000, failed };
}

function startWorker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/hms.mjs', 'worker'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (c: Buffer) => { out += c.toString(); if (out.includes('HMS worker running')) resolve(child); };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${out.slice(-2000)}`)));
  });
}

async function main(): Promise<void> {
  const { server, database } = parseDatabaseUrl(DATABASE_URL);
  const conn = await mysql.createConnection({ host: server.host, port: server.port, user: server.user, password: server.password });
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await conn.end();
  const db = createDb({ DATABASE_URL, HMS_DATA_DIR: 'data', HMS_DB_POOL_MAX: 5 });
  await migrateLatest(db);
  const adminId = await createAdmin(db, { email: `bench-${randomUUID()}@bench.example.org`, password: randomBytes(18).toString('base64url'), name: 'Bench', cost: 12 });
  const admin = await startSession(db, adminId, { ttlSeconds: 3600 });
  const prefix = `hmsbench-${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const env = { ...process.env, DATABASE_URL, REDIS_URL, HMS_QUEUE_PREFIX: prefix, PORT: String(port), LOG_LEVEL: 'warn', HMS_RATE_LIMIT: '0', HMS_SESSION_EXPIRY_SCHEDULE: 'off', HMS_OVERDUE_SCHEDULE: 'off', HMS_AUDIT_ARCHIVE_SCHEDULE: 'off' };
  const api = await startServer({ name: 'hms', args: ['bin/hms.mjs', 'serve'], env, port, cwd: ROOT, logFile: join(ROOT, 'bench', 'results', 'lab-ingest-serve.log') });
  const url = api.url;
  const inject = (method: string, path: string, token: string, body: string, type: string) =>
    fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': type }, body }).then(async (r) => { await r.arrayBuffer(); return r.status; });
  try {
    // a doctor, patients with MRNs (the doctor their primary doctor), a lab client
    const doctorRes = await fetch(`${url}/fhir/Practitioner`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Practitioner', name: [{ family: 'Bench' }], telecom: [{ system: 'email', value: `d-${randomUUID()}@bench.example.org` }], extension: [{ url: 'http://hms.example.org/fhir/StructureDefinition/practitioner-role', valueCode: 'doctor' }] }) });
    const doctor = (await doctorRes.json() as { id: string }).id;
    const patients: { id: string; mrn: string }[] = [];
    for (let i = 0; i < PATIENTS; i++) {
      const mrn = `BM${i}-${randomBytes(3).toString('hex')}`;
      const r = await fetch(`${url}/fhir/Patient`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:bench:mrn', value: mrn }], name: [{ family: 'Bench', given: ['Patient'] }], gender: 'female', birthDate: '1970-01-01', generalPractitioner: [{ reference: `Practitioner/${doctor}` }] }) });
      patients.push({ id: (await r.json() as { id: string }).id, mrn });
    }
    const client = await insertClient(db, { name: 'Bench lab', kind: 'lab', scope: 'system/Patient.rs system/Observation.cru system/DiagnosticReport.cru', jwksUrl: 'https://keys.bench.example.org/jwks' });
    const labToken = async () => (await issueClientToken(db, { clientId: client.id, scope: 'system/Patient.rs system/Observation.cru system/DiagnosticReport.cru', ttlSeconds: 300 })).token;
    log(`HMS lab ingestion: ${MESSAGES} HL7 v2 messages of ${RESULTS} results (+1 DiagnosticReport) each, ${CONCURRENCY} requests in flight, MariaDB + Redis`);

    // floor: the same Observations through the FHIR API, as the lab client
    let token = await labToken();
    const floorN = MESSAGES * RESULTS;
    const floor = await pool(floorN, (i) => inject('POST', '/fhir/Observation', token, JSON.stringify(observation(patients[i % PATIENTS]!.id, doctor, i)), 'application/fhir+json'));
    const floorRate = floorN / floor.seconds;
    log(`floor  POST /fhir/Observation: ${floorN} in ${floor.seconds.toFixed(1)} s = ${floorRate.toFixed(0)} Observations/s (${floor.failed} non-2xx)`);

    for (const n of WORKERS) {
      token = await labToken();
      const workers = await Promise.all(Array.from({ length: n }, () => startWorker(env)));
      const run = randomBytes(3).toString('hex');
      const t0 = performance.now();
      const posted = await pool(MESSAGES, (i) => inject('POST', '/ingest/lab-results', token, hl7(`B${run}-${i}`, patients[i % PATIENTS]!.mrn), 'x-application/hl7-v2+er7'));
      let done = 0, failed = 0;
      for (;;) {
        const rows = await db('ingest_messages').where('control_id', 'like', `%|B${run}-%`).select('status').count({ n: '*' }).groupBy('status') as { status: string; n: number }[];
        done = Number(rows.find((r) => r.status === 'done')?.n ?? 0);
        failed = Number(rows.find((r) => r.status === 'failed')?.n ?? 0);
        if (done + failed >= MESSAGES - posted.failed) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const seconds = (performance.now() - t0) / 1000;
      const rate = (done * RESULTS) / seconds;
      log(`ingest ${n} worker${n > 1 ? 's' : ' '}: ${MESSAGES} messages POSTed in ${posted.seconds.toFixed(1)} s (${posted.failed} non-2xx), all processed in ${seconds.toFixed(1)} s = ` +
        `${(done / seconds).toFixed(1)} messages/s, ${rate.toFixed(0)} results/s (${failed} failed) -> ${(rate / floorRate).toFixed(2)} of the floor (target 0.70)`);
      for (const w of workers) w.kill('SIGTERM');
      await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
    }
  } finally {
    await api.stop();
    await db.destroy();
  }
}

main().catch((err) => { process.stderr.write(`bench failed: ${(err as Error).stack}\n`); process.exit(1); });
