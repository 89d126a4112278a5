/**
 * The scale-out test (docs/high-availability.md), on this machine: MariaDB (the local server),
 * Redis, and `hms serve` processes behind HAProxy.
 *   1. Throughput of a mixed FHIR load (reads, searches, creates) through HAProxy with 1, then 2
 *      API processes; lab ingestion with 1, then 2 workers (messages accepted first, then drained).
 *   2. What must hold across processes, asked of both at once:
 *      - conditional creates: one resource;
 *      - double booking: one appointment;
 *      - the login throttle: it counts both processes' failures;
 *      - session revocation: a logout on one ends the token on the other;
 *      - the audit chain: intact, no seq twice.
 * The figures are per configuration on this machine's two cores, where the database shares the
 * CPU with the API processes: a second process shows what the stateless design allows, not a
 * second machine.
 *
 * Run: npx tsx bench/scale-out.ts   (DATABASE_URL, default mysql://root@127.0.0.1:3306/hms_scale;
 * REDIS_URL, default redis://127.0.0.1:6379/0; SCALE_SECONDS 15; SCALE_CLIENTS 16; SCALE_MESSAGES 400)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import { HAProxy } from './ha-cluster.js';
import { freePort, runNode, startServer, type ChildServer } from './processes.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/hms_scale';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const SECONDS = Number(process.env.SCALE_SECONDS ?? 15);
const CLIENTS = Number(process.env.SCALE_CLIENTS ?? 16);
const MESSAGES = Number(process.env.SCALE_MESSAGES ?? 400);
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'hms.mjs');
const MRN = 'http://hospital.example.org/mrn';
const ROLE = 'http://hms.example.org/fhir/StructureDefinition/practitioner-role';
const log = (line: string) => process.stdout.write(`${line}\n`);
const PASSWORD = 'a scale admin password';

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hms-scale-'));
  const servers: ChildServer[] = [];
  const checks: [string, boolean, string][] = [];
  const url = new URL(DATABASE_URL);
  const admin = await mysql.createConnection({ host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username || 'root'), password: decodeURIComponent(url.password) });
  const dbName = url.pathname.slice(1);
  await admin.query(`DROP DATABASE IF EXISTS \`${dbName}\``);
  await admin.query(`CREATE DATABASE \`${dbName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await admin.end();
  const prefix = `scale-${randomUUID().slice(0, 8)}`;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', HOST: '127.0.0.1', HMS_DATA_DIR: join(dir, 'data'), DATABASE_URL, REDIS_URL, HMS_QUEUE_PREFIX: prefix, HMS_RATE_LIMIT: '0' };
  let haproxy: HAProxy | undefined;
  try {
    await runNode([BIN, 'migrate'], env, ROOT);
    await runNode([BIN, 'seed', '--patients', '2000'], env, ROOT);
    await runNode([BIN, 'create-admin', '--email', 'scale@example.org', '--password', PASSWORD, '--name', 'Scale'], env, ROOT);
    const ports = [await freePort(), await freePort()];
    for (const [i, port] of ports.entries()) servers.push(await startServer({ name: `api${i + 1}`, args: [BIN, 'serve'], env: { ...env, PORT: String(port) }, port, cwd: ROOT, logFile: join(dir, `api${i + 1}.log`), healthPath: '/health/ready' }));
    const direct = ports.map((p) => `http://127.0.0.1:${p}`);
    const login = async (base: string, email = 'scale@example.org', password = PASSWORD) => fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
    const token = ((await (await login(direct[0]!)).json()) as { access_token: string }).access_token;
    const auth = { authorization: `Bearer ${token}` };
    const fhir = { ...auth, 'content-type': 'application/fhir+json' };
    const db = await mysql.createConnection({ host: url.hostname, port: Number(url.port || 3306), user: 'root', database: dbName });
    const [seedRows] = await db.query('SELECT id, last_name FROM patients ORDER BY id LIMIT 500');
    const known = (seedRows as { id: string; last_name: string }[]);

    // 1. throughput with 1 and 2 API processes
    const load = async (base: string): Promise<{ rps: number; errors: number; p50: number }> => {
      let running = true;
      let done = 0;
      let errors = 0;
      const lat: number[] = [];
      const client = async (c: number) => {
        for (let n = 0; running; n++) {
          const op = n % 10;
          const t0 = performance.now();
          const p = known[(n * 7 + c) % known.length]!;
          const res = op < 5 ? await fetch(`${base}/fhir/Patient/${p.id}`, { headers: auth })
            : op < 8 ? await fetch(`${base}/fhir/Patient?family=${encodeURIComponent(p.last_name)}&_count=10`, { headers: auth })
            : await fetch(`${base}/fhir/Patient`, { method: 'POST', headers: fhir, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Scale', given: [`c${c}n${n}`] }] }) });
          await res.arrayBuffer();
          lat.push(performance.now() - t0);
          if (res.status >= 400) errors++;
          done++;
        }
      };
      const warm = Array.from({ length: CLIENTS }, (_, c) => client(c));
      await new Promise((r) => setTimeout(r, 2000));
      done = 0; lat.length = 0; errors = 0;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const rps = done / ((performance.now() - t0) / 1000);
      running = false;
      await Promise.all(warm);
      lat.sort((a, b) => a - b);
      return { rps, errors, p50: lat[Math.floor(lat.length / 2)] ?? NaN };
    };
    const results: { name: string; rps: number; errors: number; p50: number }[] = [];
    for (const n of [1, 2]) {
      haproxy = await HAProxy.start(join(dir, `haproxy-${n}`), [], ports.slice(0, n));
      await new Promise((r) => setTimeout(r, 2500)); // its checks mark the servers up
      results.push({ name: `${n} x hms serve behind HAProxy`, ...(await load(`http://127.0.0.1:${haproxy.httpPort}`)) });
      await haproxy.stop();
      haproxy = undefined;
    }

    // lab ingestion: messages accepted with no worker running, then drained by 1, then 2 workers
    // messages for 16 patients: one patient's results are written one message at a time (its row locks)
    const mrns = Array.from({ length: 16 }, () => `SCALE-${randomUUID().slice(0, 8)}`);
    for (const mrn of mrns) await fetch(`${direct[0]}/fhir/Patient`, { method: 'POST', headers: fhir, body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: MRN, value: mrn }], name: [{ family: 'Scalelab' }] }) });
    const ingest: { name: string; perSecond: number }[] = [];
    for (const workers of [1, 2]) {
      const ids: string[] = [];
      await Promise.all(Array.from({ length: 8 }, async (_, c) => {
        for (let i = c; i < MESSAGES; i += 8) {
          const body = { resourceType: 'Bundle', type: 'collection', identifier: { system: 'urn:scale', value: randomUUID() }, entry: Array.from({ length: 5 }, (_, k) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource: {
            resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, subject: { identifier: { system: MRN, value: mrns[i % mrns.length] } },
            effectiveDateTime: '2026-12-01T08:00:00Z', valueQuantity: { value: 80 + k, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' } } })) };
          const res = await fetch(`${direct[i % 2]}/ingest/lab-results`, { method: 'POST', headers: fhir, body: JSON.stringify(body) });
          if (res.status === 202) ids.push(String(((await res.json()) as { id: string }).id));
        }
      }));
      const started = await Promise.all(Array.from({ length: workers }, async (_, w) => {
        const mport = await freePort();
        return startServer({ name: `worker${w + 1}`, args: [BIN, 'worker', '--queues', 'lab-ingest'], env: { ...env, HMS_METRICS_PORT: String(mport) }, port: mport, cwd: ROOT, logFile: join(dir, `worker-${workers}-${w}.log`), healthPath: '/metrics' });
      }));
      // timed from when both are up (their start is not ingestion) to the last message done
      const left = async () => Number(((await db.query("SELECT COUNT(*) AS n FROM ingest_messages WHERE id IN (?) AND status NOT IN ('done', 'failed')", [ids]))[0] as { n: number }[])[0]!.n);
      const t0 = performance.now();
      const atStart = await left();
      while ((await left()) > 0) await new Promise((r) => setTimeout(r, 100));
      const seconds = (performance.now() - t0) / 1000;
      for (const s of started) await s.stop();
      const [failed] = await db.query("SELECT COUNT(*) AS n FROM ingest_messages WHERE id IN (?) AND status <> 'done'", [ids]);
      checks.push([`${workers} worker(s): every message done`, Number((failed as { n: number }[])[0]!.n) === 0, `${ids.length} messages`]);
      ingest.push({ name: `${workers} x hms worker (lab-ingest)`, perSecond: atStart / seconds });
    }

    // 2. what must hold across the two processes
    const ident = `urn:scale|${randomUUID()}`;
    const conditional = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`${direct[i % 2]}/fhir/Patient`, {
      method: 'POST', headers: { ...fhir, 'if-none-exist': `identifier=${ident}` },
      body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:scale', value: ident.split('|')[1] }], name: [{ family: 'Cond' }] }),
    }).then((r) => r.status)));
    const condCount = ((await (await fetch(`${direct[1]}/fhir/Patient?identifier=${encodeURIComponent(ident)}&_summary=count`, { headers: auth })).json()) as { total: number }).total;
    checks.push(['conditional create from both processes at once: one Patient', condCount === 1 && conditional.filter((s) => s === 201).length === 1, `answers ${conditional.join(',')}; ${condCount} stored`]);

    const doctor = await (await fetch(`${direct[0]}/fhir/Practitioner`, { method: 'POST', headers: fhir, body: JSON.stringify({ resourceType: 'Practitioner', name: [{ family: 'Scaledoc' }], telecom: [{ system: 'email', value: `doc-${randomUUID()}@scale.example.org` }], extension: [{ url: ROLE, valueCode: 'doctor' }] }) })).json() as { id: string };
    const booking = await Promise.all(Array.from({ length: 6 }, (_, i) => fetch(`${direct[i % 2]}/fhir/Appointment`, {
      method: 'POST', headers: fhir, body: JSON.stringify({ resourceType: 'Appointment', status: 'booked', start: '2032-01-05T10:00:00Z', end: '2032-01-05T10:30:00Z',
        participant: [{ actor: { reference: `Patient/${known[i]!.id}` }, status: 'accepted' }, { actor: { reference: `Practitioner/${doctor.id}` }, status: 'accepted' }] }),
    }).then((r) => r.status)));
    const [bookRows] = await db.query('SELECT COUNT(*) AS n FROM appointments WHERE doctor_id = ?', [doctor.id]);
    checks.push(['one slot booked from both processes at once: one appointment', Number((bookRows as { n: number }[])[0]!.n) === 1 && booking.filter((s) => s === 201).length === 1, `answers ${booking.join(',')}`]);

    const email = `throttle-${randomUUID()}@scale.example.org`;
    await fetch(`${direct[0]}/admin/users`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'the right password', name: 'Throttled', role: 'finance' }) });
    const failures = [];
    for (let i = 0; i < 5; i++) failures.push((await login(direct[i % 2]!, email, 'a wrong password')).status);
    const afterLimit = [(await login(direct[0]!, email, 'the right password')).status, (await login(direct[1]!, email, 'the right password')).status];
    checks.push(['5 failed logins spread over both processes: the account throttled on both', afterLimit.every((s) => s === 429), `failures ${failures.join(',')}, then ${afterLimit.join(',')}`]);

    const session = ((await (await login(direct[0]!)).json()) as { access_token: string }).access_token;
    const before = (await fetch(`${direct[1]}/fhir/Patient/${known[0]!.id}`, { headers: { authorization: `Bearer ${session}` } })).status;
    await fetch(`${direct[0]}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${session}` } });
    const after = (await fetch(`${direct[1]}/fhir/Patient/${known[0]!.id}`, { headers: { authorization: `Bearer ${session}` } })).status;
    checks.push(['logout on one process: the token refused on the other at once', before === 200 && after === 401, `${before} then ${after}`]);

    const [dups] = await db.query('SELECT COUNT(*) AS n FROM (SELECT seq FROM security_logs GROUP BY seq HAVING COUNT(*) > 1) d');
    const verify = await runNode([BIN, 'audit', 'verify'], env, ROOT).then((out) => ({ ok: true, out }), (err: Error) => ({ ok: false, out: err.message }));
    checks.push(['audit chain across processes: intact, no position twice', verify.ok && Number((dups as { n: number }[])[0]!.n) === 0, verify.out.split('\n')[0]!.slice(0, 120)]);
    await db.end();

    log('');
    log('| configuration | throughput | p50 | errors |');
    log('|---|---|---|---|');
    for (const r of results) log(`| ${r.name} (${CLIENTS} clients: 50 % reads, 30 % searches, 20 % creates) | ${r.rps.toFixed(0)} req/s | ${r.p50.toFixed(1)} ms | ${r.errors} |`);
    for (const r of ingest) log(`| ${r.name}, ${MESSAGES} messages of 5 Observations | ${r.perSecond.toFixed(0)} messages/s | | |`);
    log(`| 2 / 1 API processes | ${(results[1]!.rps / results[0]!.rps).toFixed(2)}x | | |`);
    log(`| 2 / 1 workers | ${(ingest[1]!.perSecond / ingest[0]!.perSecond).toFixed(2)}x | | |`);
    log('');
    for (const [name, ok, detail] of checks) log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${detail})`);
    const ok = checks.every((c) => c[1]) && results.every((r) => r.errors === 0);
    log(ok ? 'scale-out: PASS' : 'scale-out: FAIL');
    process.exitCode = ok ? 0 : 1;
  } finally {
    await haproxy?.stop().catch(() => undefined);
    for (const s of servers) await s.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => { process.stderr.write(`scale-out: ${(err as Error).stack}\n`); process.exitCode = 1; }).finally(() => setTimeout(() => process.exit(), 500));
