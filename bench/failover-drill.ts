/**
 * The failover drill (docs/high-availability.md), on this machine: a three-node Galera cluster
 * behind HAProxy, Redis with a replica and three Sentinels, two `hms serve` behind the same
 * HAProxy and one `hms worker`, under a steady mixed load through HAProxy (reads, searches,
 * creates, lab messages). It kills the Galera node taking the writes, then the Redis master, and
 * records:
 *   - the failover time of each (from the kill to the first write answered 2xx after it);
 *   - the requests failed during it, by status (503 allowed, 500 never);
 *   - acknowledged writes lost (creates answered 201 whose Patient is not in the database): 0;
 *   - lab messages accepted (202) and not processed after recovery: 0.
 *
 * Needs Debian's haproxy, mariadb-server (mariadbd, galera-4, rsync) and redis-server.
 * Run: npx tsx bench/failover-drill.ts   (DRILL_PHASE_SECONDS, default 12; DRILL_CLIENTS, default 8)
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import { Galera, HAProxy, RedisHA } from './ha-cluster.js';
import { freePort, runNode, startServer, type ChildServer } from './processes.js';

const PHASE = Number(process.env.DRILL_PHASE_SECONDS ?? 12) * 1000;
const CLIENTS = Number(process.env.DRILL_CLIENTS ?? 8);
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'hms.mjs');
const MRN = 'http://hospital.example.org/mrn';
const log = (line: string) => process.stdout.write(`${line}\n`);

interface Answer { at: number; op: string; status: number }

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hms-failover-'));
  chmodSync(dir, 0o755); // the Galera nodes run as the mysql user
  const servers: ChildServer[] = [];
  let haproxy: HAProxy | undefined;
  try {
    log('starting three Galera nodes, Redis + replica + three Sentinels ...');
    const galera = await Galera.start(join(dir, 'galera'));
    await galera.sql(0, "CREATE DATABASE hms CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
    const redis = await RedisHA.start(join(dir, 'redis'));
    const apiPorts = [await freePort(), await freePort()];
    haproxy = await HAProxy.start(dir, galera.nodes.map((n) => n.port), apiPorts);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', HOST: '127.0.0.1', HMS_DATA_DIR: join(dir, 'data'),
      DATABASE_URL: `mysql://root@127.0.0.1:${haproxy.mysqlPort}/hms`, REDIS_URL: redis.url, HMS_QUEUE_PREFIX: `drill-${randomUUID().slice(0, 8)}`,
      HMS_RATE_LIMIT: '0', HMS_OUTBOX_SWEEP_SECONDS: '5', HMS_OUTBOX_STALE_SECONDS: '10',
    };
    await runNode([BIN, 'migrate'], env, ROOT);
    await runNode([BIN, 'create-admin', '--email', 'drill@example.org', '--password', 'a drill admin password', '--name', 'Drill'], env, ROOT);
    for (const [i, port] of apiPorts.entries()) {
      servers.push(await startServer({ name: `api${i + 1}`, args: [BIN, 'serve'], env: { ...env, PORT: String(port) }, port, cwd: ROOT, logFile: join(dir, `api${i + 1}.log`), healthPath: '/health/ready' }));
    }
    const workerPort = await freePort();
    servers.push(await startServer({ name: 'worker', args: [BIN, 'worker'], env: { ...env, HMS_METRICS_PORT: String(workerPort) }, port: workerPort, cwd: ROOT, logFile: join(dir, 'worker.log'), healthPath: '/metrics' }));
    const base = `http://127.0.0.1:${haproxy.httpPort}`;
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'drill@example.org', password: 'a drill admin password' }) });
    const token = ((await login.json()) as { access_token: string }).access_token;
    const auth = { authorization: `Bearer ${token}` };
    const fhir = { ...auth, 'content-type': 'application/fhir+json' };
    const mrn = `DRILL-${randomUUID().slice(0, 8)}`;
    const seed = await fetch(`${base}/fhir/Patient`, { method: 'POST', headers: fhir, body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: MRN, value: mrn }], name: [{ family: 'Drillseed' }] }) });
    const known = [String(((await seed.json()) as { id: string }).id)];

    const answers: Answer[] = [];
    const acked: string[] = [];
    const accepted: string[] = [];
    let running = true;
    const client = async (c: number) => {
      for (let n = 0; running; n++) {
        const op = ['read', 'search', 'create', 'read', 'lab', 'create', 'search', 'read'][(n + c) % 8]!;
        const at = Date.now();
        let status = 0;
        try {
          if (op === 'read') status = (await fetch(`${base}/fhir/Patient/${known[n % known.length]}`, { headers: auth })).status;
          else if (op === 'search') status = (await fetch(`${base}/fhir/Patient?family=Drill&_count=5`, { headers: auth })).status;
          else if (op === 'create') {
            const res = await fetch(`${base}/fhir/Patient`, { method: 'POST', headers: fhir, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Drill', given: [`C${c}N${n}`] }] }) });
            status = res.status;
            if (status === 201) { const id = String(((await res.json()) as { id: string }).id); acked.push(id); if (known.length < 200) known.push(id); }
          } else {
            const body = { resourceType: 'Bundle', type: 'collection', identifier: { system: 'urn:drill', value: randomUUID() }, entry: [{ fullUrl: `urn:uuid:${randomUUID()}`, resource: {
              resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, subject: { identifier: { system: MRN, value: mrn } },
              effectiveDateTime: '2026-12-01T08:00:00Z', valueQuantity: { value: 90, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' } } }] };
            const res = await fetch(`${base}/ingest/lab-results`, { method: 'POST', headers: fhir, body: JSON.stringify(body) });
            status = res.status;
            if (status === 202) accepted.push(String(((await res.json()) as { id: string }).id));
          }
        } catch {
          status = -1; // connection refused or reset: no answer
        }
        answers.push({ at, op, status });
      }
    };
    log(`load: ${CLIENTS} clients through HAProxy (reads, searches, creates, lab messages)`);
    const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
    await new Promise((r) => setTimeout(r, PHASE));
    const dbKill = Date.now();
    await galera.kill(0);
    log('killed galera1 (the node taking the writes)');
    await new Promise((r) => setTimeout(r, PHASE));
    const redisKill = Date.now();
    await redis.killMaster();
    log('killed the Redis master');
    await new Promise((r) => setTimeout(r, PHASE * 1.5));
    running = false;
    await Promise.all(clients);
    const end = Date.now();
    log(`Redis master now on port ${await redis.masterPort()} (was ${redis.master.port})`);

    // after recovery: every accepted message processed, every acknowledged create stored
    const db = await mysql.createConnection({ host: '127.0.0.1', port: galera.nodes[1]!.port, user: 'root', database: 'hms' });
    const unprocessed = async () => {
      let n = 0;
      for (let i = 0; i < accepted.length; i += 500) {
        const [rows] = await db.query("SELECT COUNT(*) AS n FROM ingest_messages WHERE id IN (?) AND status <> 'done'", [accepted.slice(i, i + 500)]);
        n += Number((rows as { n: number }[])[0]!.n);
      }
      return n;
    };
    const settleEnd = Date.now() + 120_000;
    let left = await unprocessed();
    while (left > 0 && Date.now() < settleEnd) { await new Promise((r) => setTimeout(r, 1000)); left = await unprocessed(); }
    let lost = 0;
    for (let i = 0; i < acked.length; i += 500) {
      const [rows] = await db.query('SELECT COUNT(*) AS n FROM patients WHERE id IN (?)', [acked.slice(i, i + 500)]);
      lost += acked.slice(i, i + 500).length - Number((rows as { n: number }[])[0]!.n);
    }
    await db.end();

    const window = (from: number, to: number) => answers.filter((a) => a.at >= from && a.at < to);
    const failover = (from: number, ops: string[], ok: number[]) => {
      const firstOk = answers.filter((a) => a.at > from && ops.includes(a.op) && ok.includes(a.status)).map((a) => a.at).sort((a, b) => a - b)[0];
      return firstOk ? (firstOk - from) / 1000 : NaN;
    };
    const statuses = (as: Answer[]) => Object.entries(as.reduce<Record<string, number>>((m, a) => { m[a.status] = (m[a.status] ?? 0) + 1; return m; }, {})).map(([s, n]) => `${s === '-1' ? 'no answer' : s}: ${n}`).join(', ');
    const errors500 = answers.filter((a) => a.status >= 500 && a.status !== 503).length;
    const dbFailover = failover(dbKill, ['create'], [201]);
    const redisFailover = failover(redisKill, ['lab'], [202]);
    log('');
    log('| phase | requests | answers |');
    log('|---|---|---|');
    log(`| steady (${(PHASE / 1000).toFixed(0)} s) | ${window(0, dbKill).length} | ${statuses(window(0, dbKill))} |`);
    log(`| database node killed: first create 201 after ${dbFailover.toFixed(1)} s | ${window(dbKill, redisKill).length} | ${statuses(window(dbKill, redisKill))} |`);
    log(`| Redis master killed: first lab message 202 after ${redisFailover.toFixed(1)} s | ${window(redisKill, end).length} | ${statuses(window(redisKill, end))} |`);
    log('');
    log(`acknowledged creates: ${acked.length}, lost: ${lost}`);
    log(`lab messages accepted: ${accepted.length}, not processed after recovery: ${left}`);
    log(`answers 5xx other than 503: ${errors500}`);
    const ok = lost === 0 && left === 0 && errors500 === 0;
    log(ok ? 'failover drill: PASS' : 'failover drill: FAIL');
    process.exitCode = ok ? 0 : 1;
  } finally {
    for (const s of servers) await s.stop().catch(() => undefined);
    await haproxy?.stop().catch(() => undefined);
    if (!process.env.DRILL_KEEP) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}

main().catch((err: unknown) => { process.stderr.write(`drill: ${(err as Error).stack}\n`); process.exitCode = 1; }).finally(() => setTimeout(() => process.exit(), 500));
