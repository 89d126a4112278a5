/**
 * The overdue billing sweep at scale (issue 9, "Figures"): N invoices (default 1,000,000), all
 * unpaid and past due, on MySQL/MariaDB. Prints
 *
 *   - how long seeding took (INSERT ... SELECT from a numbers table, in chunks);
 *   - the sweep's rows/s (src/workers/processors/overdue-billing.ts, run in a child process as a
 *     worker would run it) beside the floor measured in the same run: bare batched
 *     `UPDATE billing SET payment_status = 'overdue' WHERE id IN (...)` over the same rows, read
 *     in the same keyset batches (no lock, version, history or audit), after which the rows are
 *     set back;
 *   - the p99 of concurrent Patient reads (GET /fhir/Patient/{id} against `hms serve` in its own
 *     process, at a fixed rate) during the sweep against the same load without it (target <= 1.5x).
 *
 *   DATABASE_URL=mysql://root@127.0.0.1:3306/hms_bench_overdue npx tsx bench/overdue-sweep.ts
 *   BENCH_OVERDUE_INVOICES=100000 npx tsx bench/overdue-sweep.ts      (a quick run)
 *
 * Environment: DATABASE_URL (database name must start with hms_bench; default
 * mysql://root@127.0.0.1:3306/hms_bench_overdue; dropped and recreated, dropped again at the end
 * unless BENCH_KEEP=1), BENCH_OVERDUE_INVOICES (1000000), BENCH_OVERDUE_PATIENTS (1000),
 * BENCH_OVERDUE_KEPT (0.2: share of invoices with a kept API version in resource_history, the rest
 * native rows as the seeder writes them), BENCH_OVERDUE_BATCH (500, HMS_OVERDUE_BATCH),
 * BENCH_OVERDUE_READ_RATE (200 reads/s in all), BENCH_OVERDUE_CONNECTIONS (10),
 * BENCH_OVERDUE_BASELINE (20 s of reads without the sweep), BENCH_OVERDUE_P99_TARGET (1.5).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import mysql from 'mysql2/promise';
import type { Knex } from 'knex';
import { loadConfig } from '../src/config.js';
import { createDb, migrateLatest, mysqlConnection } from '../src/db/knex.js';
import { AuditLog } from '../src/db/audit-log.js';
import { createAdmin } from '../src/auth/admin.js';
import { startSession } from '../src/auth/sessions.js';
import { INVOICE_EXTENSIONS, CPT_SYSTEM } from '../src/mappers/invoice-mapper.js';
import { overdueBilling } from '../src/workers/processors/overdue-billing.js';
import { cpuSeconds, databaseServerPid, freePort, machineBusySeconds, startServer, type ChildServer } from './processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const log = (line: string): void => { process.stdout.write(line + '\n'); };
const num = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not '${v}'`);
  return n;
};

/** The day the sweep runs as of: every seeded invoice is due before it. */
const AS_OF = '2026-01-01';
const ID_PREFIX = '0190a000-0000-7000-8000-';
const silent = { info() {}, warn() {}, error() {}, debug() {} };
/** CPU (in cores) used by processes outside the benchmark above which a measurement is flagged as noisy. */
const NOISE_CORES = 0.25;

/** Child mode: one sweep, as a worker process runs it; prints its result as JSON. */
async function sweeper(): Promise<void> {
  const config = loadConfig(process.env, { LOG_LEVEL: 'silent' });
  const db = createDb(config);
  try {
    const result = await overdueBilling({ asOf: AS_OF }, { db, config, log: silent, auditLog: new AuditLog(db), now: () => new Date() });
    const cpu = process.cpuUsage();
    process.stdout.write(JSON.stringify({ ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6 }) + '\n');
  } finally {
    await db.destroy();
  }
}

const settings = () => ({
  databaseUrl: process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/hms_bench_overdue',
  invoices: Math.floor(num('BENCH_OVERDUE_INVOICES', 1_000_000)),
  patients: Math.max(1, Math.floor(num('BENCH_OVERDUE_PATIENTS', 1000))),
  kept: Math.min(1, num('BENCH_OVERDUE_KEPT', 0.2)),
  batch: Math.max(1, Math.floor(num('BENCH_OVERDUE_BATCH', 500))),
  rate: Math.max(1, num('BENCH_OVERDUE_READ_RATE', 200)),
  connections: Math.max(1, Math.floor(num('BENCH_OVERDUE_CONNECTIONS', 10))),
  baseline: Math.max(1, num('BENCH_OVERDUE_BASELINE', 20)),
  target: num('BENCH_OVERDUE_P99_TARGET', 1.5),
  keep: process.env.BENCH_KEEP === '1',
});
type Settings = ReturnType<typeof settings>;

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/** Seeds patients and invoices with INSERT ... SELECT over a numbers table, in chunks. */
async function seed(db: Knex, s: Settings, userId: string): Promise<void> {
  await db.raw('CREATE TABLE bench_digits (d INT PRIMARY KEY)');
  await db.raw('INSERT INTO bench_digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)');
  await db.raw('CREATE TABLE bench_numbers (n INT PRIMARY KEY)');
  const digits = Math.max(1, Math.ceil(Math.log10(Math.max(s.invoices, s.patients) + 1)));
  const from = Array.from({ length: digits }, (_, i) => `bench_digits d${i}`).join(', ');
  const n = Array.from({ length: digits }, (_, i) => `d${i}.d * ${10 ** i}`).join(' + ');
  await db.raw(`INSERT INTO bench_numbers SELECT ${n} AS n FROM ${from} HAVING n < ?`, [Math.max(s.invoices, s.patients)]);

  await db.raw(`INSERT INTO patients (id, first_name, last_name, date_of_birth, gender, status, version_id, created_at, updated_at)
    SELECT CONCAT('0190a000-0000-7000-9000-', LPAD(n, 12, '0')), CONCAT('Given', n), CONCAT('Bench', n % 97), DATE_SUB('1990-01-01', INTERVAL n % 20000 DAY),
      ELT(1 + n % 2, 'female', 'male'), 'active', 1, '2025-01-01 00:00:00', '2025-01-01 00:00:00'
    FROM bench_numbers WHERE n < ?`, [s.patients]);
  await db.raw('CREATE TABLE bench_patients (k INT PRIMARY KEY, id VARCHAR(36) NOT NULL)');
  await db.raw(`INSERT INTO bench_patients SELECT n, CONCAT('0190a000-0000-7000-9000-', LPAD(n, 12, '0')) FROM bench_numbers WHERE n < ?`, [s.patients]);

  const every = s.kept > 0 ? Math.max(1, Math.round(1 / s.kept)) : 0;
  const chunk = 50_000;
  // dates: billed over the 300 days before 2025-10-01 in id order (ids are time-ordered, as
  // UUIDv7 ids of invoices written over time are), due 30 days later; a tenth partly paid
  const cols = `CONCAT('${ID_PREFIX}', LPAD(b.n, 12, '0')) AS id, p.id AS patient_id, CONCAT('BENCH-', b.n) AS invoice_number,
    DATE_SUB('2025-10-01', INTERVAL FLOOR((${s.invoices} - 1 - b.n) * 300 / ${Math.max(1, s.invoices)}) DAY) AS day, 50 + b.n % 500 AS charged, IF(b.n % 10 = 0, 10, 0) AS paid`;
  for (let lo = 0; lo < s.invoices; lo += chunk) {
    const hi = Math.min(s.invoices, lo + chunk);
    await db.raw(`INSERT INTO billing (id, patient_id, invoice_number, service_date, service_description, procedure_codes, amount_charged, amount_paid,
        payment_status, billing_date, due_date, created_by, version_id, created_at, updated_at)
      SELECT x.id, x.patient_id, x.invoice_number, x.day, 'Office visit', '99213', x.charged, x.paid, IF(x.paid > 0, 'partial', 'pending'),
        x.day, DATE_ADD(x.day, INTERVAL 30 DAY), ?, 1, '2025-01-01 00:00:00', '2025-01-01 00:00:00'
      FROM (SELECT ${cols} FROM bench_numbers b JOIN bench_patients p ON p.k = b.n % ? WHERE b.n >= ? AND b.n < ?) x`, [userId, s.patients, lo, hi]);
    if (every) {
      // the version an API write would have kept: the resource as sent, meta included
      await db.raw(`INSERT INTO resource_history (resource_type, resource_id, version_id, method, recorded_at, recorded_by, resource)
        SELECT 'Invoice', x.id, 1, 'POST', '2025-01-01 00:00:00', ?, JSON_OBJECT(
          'resourceType', 'Invoice', 'id', x.id, 'meta', JSON_OBJECT('versionId', '1', 'lastUpdated', '2025-01-01T00:00:00Z'),
          'status', 'issued', 'identifier', JSON_ARRAY(JSON_OBJECT('system', 'urn:bench:invoice', 'value', x.invoice_number)),
          'subject', JSON_OBJECT('reference', CONCAT('Patient/', x.patient_id)), 'date', DATE_FORMAT(x.day, '%Y-%m-%d'),
          'totalGross', JSON_OBJECT('value', x.charged, 'currency', 'USD'),
          'lineItem', JSON_ARRAY(JSON_OBJECT('chargeItemCodeableConcept', JSON_OBJECT('coding', JSON_ARRAY(JSON_OBJECT('system', ?, 'code', '99213')), 'text', 'Office visit'))),
          'note', JSON_ARRAY(JSON_OBJECT('text', 'Seeded by the overdue benchmark')),
          'extension', IF(x.paid > 0,
            JSON_ARRAY(JSON_OBJECT('url', ?, 'valueMoney', JSON_OBJECT('value', x.paid, 'currency', 'USD')), JSON_OBJECT('url', ?, 'valueCode', 'partial'),
              JSON_OBJECT('url', ?, 'valueDate', DATE_FORMAT(DATE_ADD(x.day, INTERVAL 30 DAY), '%Y-%m-%d'))),
            JSON_ARRAY(JSON_OBJECT('url', ?, 'valueDate', DATE_FORMAT(DATE_ADD(x.day, INTERVAL 30 DAY), '%Y-%m-%d')))))
        FROM (SELECT ${cols} FROM bench_numbers b JOIN bench_patients p ON p.k = b.n % ? WHERE b.n >= ? AND b.n < ? AND b.n % ? = 0) x`,
      [userId, CPT_SYSTEM, INVOICE_EXTENSIONS.amountPaid, INVOICE_EXTENSIONS.paymentStatus, INVOICE_EXTENSIONS.dueDate, INVOICE_EXTENSIONS.dueDate, s.patients, lo, hi, every]);
    }
    if (every) {
      // and its index rows (Invoice.status is index-backed)
      await db.raw(`INSERT INTO search_token (resource_type, resource_id, param, \`system\`, code)
        SELECT 'Invoice', CONCAT('${ID_PREFIX}', LPAD(b.n, 12, '0')), 'status', 'http://hl7.org/fhir/invoice-status', 'issued'
        FROM bench_numbers b WHERE b.n >= ? AND b.n < ? AND b.n % ? = 0`, [lo, hi, every]);
    }
    if (hi % 200_000 === 0 || hi === s.invoices) log(`  ${hi} / ${s.invoices} invoices`);
  }
  await db.raw('ANALYZE TABLE billing, resource_history, patients');
}

/**
 * The floor: the least a batched change of the same rows does. Each batch reads the next ids over
 * the same index and keyset as the sweep and sets them overdue with one UPDATE by id (autocommit
 * each: no locking read, no version, history, index or audit). A single
 * `UPDATE ... ORDER BY due_date, id LIMIT n` is no floor: as it changes the index it walks,
 * MariaDB first buffers every matching row, so each batch costs the whole remaining range.
 * Returns rows and seconds.
 */
async function floor(conn: mysql.Connection, batch: number): Promise<{ rows: number; seconds: number }> {
  const t0 = process.hrtime.bigint();
  let rows = 0;
  for (const status of ['pending', 'partial']) {
    let after: { due: string; id: string } | undefined;
    for (;;) {
      const [found] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT id, due_date FROM billing FORCE INDEX (idx_overdue) WHERE payment_status = ? AND due_date < ? AND amount_due > 0
         ${after ? 'AND (due_date > ? OR (due_date = ? AND id > ?))' : ''} ORDER BY due_date, id LIMIT ?`,
        after ? [status, AS_OF, after.due, after.due, after.id, batch] : [status, AS_OF, batch]);
      if (found.length === 0) break;
      const [r] = await conn.query<mysql.ResultSetHeader>("UPDATE billing SET payment_status = 'overdue' WHERE id IN (?)", [found.map((f) => String(f.id))]);
      rows += r.affectedRows;
      const last = found[found.length - 1]!;
      after = { due: String(last.due_date).slice(0, 10), id: String(last.id) };
      if (found.length < batch) break;
    }
  }
  return { rows, seconds: seconds(t0) };
}

/** Sets the floor's rows back as seeded (their updated_at too). */
async function reset(conn: mysql.Connection, s: Settings): Promise<void> {
  for (let lo = 0; lo < s.invoices; lo += 50_000) {
    const id = (k: number): string => ID_PREFIX + String(k).padStart(12, '0');
    await conn.query("UPDATE billing SET payment_status = IF(amount_paid > 0, 'partial', 'pending'), updated_at = '2025-01-01 00:00:00' WHERE id >= ? AND id < ?",
      [id(lo), id(Math.min(s.invoices, lo + 50_000))]);
  }
}

/**
 * Waits (up to a minute) until the database has written back what seeding and the floor left
 * dirty and the machine is idle, so that the reads without the sweep are not slowed by that.
 */
async function settle(server: mysql.Connection): Promise<number> {
  const t0 = process.hrtime.bigint();
  while (seconds(t0) < 60) {
    const [rows] = await server.query<mysql.RowDataPacket[]>("SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_pages_dirty', 'Innodb_buffer_pool_pages_total')");
    const v = Object.fromEntries(rows.map((r) => [String(r.Variable_name), Number(r.Value)]));
    const before = machineBusySeconds();
    await new Promise((r) => setTimeout(r, 1000));
    const after = machineBusySeconds();
    const busy = before === undefined || after === undefined ? 0 : after - before;
    if ((v.Innodb_buffer_pool_pages_dirty ?? 0) <= 0.01 * (v.Innodb_buffer_pool_pages_total ?? 0) && busy < 0.25) break;
  }
  return seconds(t0);
}

interface CpuMark { at: bigint; machine?: number; procs: (number | undefined)[]; self: NodeJS.CpuUsage }

/** The CPU time used so far by the machine, by the given processes and by this one. */
function cpuMark(pids: (number | undefined)[]): CpuMark {
  return { at: process.hrtime.bigint(), machine: machineBusySeconds(), procs: pids.map((p) => cpuSeconds(p)), self: process.cpuUsage() };
}

/**
 * Cores used since a mark: the machine, the benchmark's own processes (the given ones, this one,
 * and `extraSeconds` of a child that has exited), and the rest: other processes, i.e. noise.
 */
function coresSince(mark: CpuMark, pids: (number | undefined)[], extraSeconds = 0): { machine?: number; ours: number; other?: number } {
  const secs = seconds(mark.at);
  const self = process.cpuUsage(mark.self);
  let ours = (self.user + self.system) / 1e6 + extraSeconds;
  pids.forEach((p, i) => { const now = cpuSeconds(p); const was = mark.procs[i]; if (now !== undefined && was !== undefined) ours += now - was; });
  const m = machineBusySeconds();
  const machine = m !== undefined && mark.machine !== undefined ? (m - mark.machine) / secs : undefined;
  return { machine, ours: ours / secs, other: machine === undefined ? undefined : Math.max(0, machine - ours / secs) };
}

interface Reads { requests: number; p50: number; p99: number; max: number; non2xx: number; errors: number; seconds: number }

/** Patient reads at a fixed rate until `until` resolves (or for `duration` seconds). */
function reads(url: string, token: string, ids: string[], s: Settings, opts: { duration?: number; until?: Promise<unknown> }): Promise<Reads> {
  const times: number[] = [];
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url, connections: s.connections, pipelining: 1, overallRate: s.rate, timeout: 10,
      duration: opts.duration ?? 24 * 3600,
      requests: [{
        method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
        setupRequest: (req) => ({ ...req, path: `/fhir/Patient/${ids[Math.floor(Math.random() * ids.length)]}` }),
      }],
    }, (err: unknown, result: autocannon.Result) => {
      if (err) { reject(err); return; }
      const sorted = Float64Array.from(times).sort();
      const at = (p: number): number => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : NaN;
      resolve({ requests: result.requests.total, p50: at(0.5), p99: at(0.99), max: at(1), non2xx: result.non2xx, errors: result.errors + result.timeouts, seconds: seconds(t0) });
    });
    instance.on('response', (_c, status, _b, ms) => { if (status >= 200 && status < 300) times.push(ms); });
    opts.until?.finally(() => instance.stop());
  });
}

/** Runs the sweep in a child process (a worker); resolves with its result and wall time. */
function sweepInChild(s: Settings): Promise<{ result: Record<string, unknown>; seconds: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SELF], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, OVERDUE_BENCH_ROLE: 'sweeper', DATABASE_URL: s.databaseUrl, HMS_OVERDUE_BATCH: String(s.batch), HMS_OVERDUE_GRACE_DAYS: '0' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.on('error', reject);
    child.on('exit', (code) => {
      const wall = seconds(t0);
      if (code !== 0) { reject(new Error(`the sweeper exited with ${code}: ${out}`)); return; }
      try { resolve({ result: JSON.parse(out.trim().split('\n').pop()!), seconds: wall }); } catch (e) { reject(e); }
    });
  });
}

const ms = (v: number): string => `${v.toFixed(2)} ms`;

async function main(): Promise<number> {
  const s = settings();
  const conn0 = mysqlConnection(s.databaseUrl);
  if (!/^hms_bench/.test(conn0.database)) throw new Error(`refusing to touch database '${conn0.database}': its name must start with hms_bench`);
  const server = await mysql.createConnection({ ...conn0, database: undefined, charset: 'utf8mb4' });
  await server.query(`DROP DATABASE IF EXISTS \`${conn0.database}\``);
  await server.query(`CREATE DATABASE \`${conn0.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const [[version]] = await server.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v, @@innodb_buffer_pool_size AS bp, @@innodb_flush_log_at_trx_commit AS flush');
  log(`Overdue sweep benchmark: ${s.invoices} invoices (${Math.round(s.kept * 100)} % with a kept API version), ${s.patients} patients, batch ${s.batch}, ` +
    `reads ${s.rate}/s over ${s.connections} connections; ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${String(version!.v)} ` +
    `(buffer pool ${Math.round(Number(version!.bp) / 2 ** 20)} MiB, innodb_flush_log_at_trx_commit ${String(version!.flush)})`);

  const db = createDb({ DATABASE_URL: s.databaseUrl, HMS_DATA_DIR: 'data', HMS_DB_POOL_MAX: 4 });
  let hms: ChildServer | undefined;
  let code = 1;
  try {
    await migrateLatest(db);
    const userId = await createAdmin(db, { email: `bench-${randomBytes(4).toString('hex')}@bench.example.org`, password: randomBytes(18).toString('base64url'), name: 'Benchmark', cost: 12 });
    const token = await startSession(db, userId, { ttlSeconds: 4 * 3600, userAgent: 'hms-bench-overdue' });

    log('Seeding ...');
    const t0 = process.hrtime.bigint();
    await seed(db, s, userId);
    const seedSeconds = seconds(t0);
    log(`Seeded ${s.invoices} invoices (+ ${s.kept > 0 ? Math.floor(s.invoices / Math.round(1 / s.kept)) : 0} kept versions) and ${s.patients} patients in ${seedSeconds.toFixed(1)} s ` +
      `(${Math.round(s.invoices / seedSeconds)} invoices/s)`);
    const ids = ((await db('patients').select('id')) as { id: string }[]).map((r) => r.id);

    const work = await mysql.createConnection({ ...conn0, charset: 'utf8mb4' });
    const bare = await floor(work, s.batch);
    log(`Floor (bare batched UPDATE): ${bare.rows} rows in ${bare.seconds.toFixed(1)} s, ${Math.round(bare.rows / bare.seconds)} rows/s`);
    await reset(work, s);
    await work.end();

    const port = await freePort();
    hms = await startServer({
      name: 'hms', args: [join(ROOT, 'bin', 'hms.mjs'), 'serve'], port, cwd: ROOT, logFile: join(ROOT, 'bench', 'results', 'overdue-hms.log'),
      env: { ...process.env, DATABASE_URL: s.databaseUrl, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', HMS_BASE_URL: '', HMS_RATE_LIMIT: '1000000000', REDIS_URL: '' },
    });
    const smoke = await fetch(`${hms.url}/fhir/Patient/${ids[0]}`, { headers: { authorization: `Bearer ${token}` } });
    if (smoke.status !== 200) throw new Error(`GET Patient answered ${smoke.status}: ${await smoke.text()}`);

    await reads(hms.url, token, ids, s, { duration: 3 });
    log(`Database settled after ${(await settle(server)).toFixed(0)} s`);
    const pids = [hms.pid, databaseServerPid()];
    const noise: Record<string, number | undefined> = {};
    const cores = (c: { machine?: number; ours: number; other?: number }, name: string): string => {
      noise[name] = c.other;
      return c.machine === undefined ? '' : ` (CPU: benchmark processes ${c.ours.toFixed(2)} cores, other processes ${c.other!.toFixed(2)} of ${cpus().length})`;
    };
    let mark = cpuMark(pids);
    const without = await reads(hms.url, token, ids, s, { duration: s.baseline });
    log(`Reads without the sweep: ${without.requests} in ${without.seconds.toFixed(1)} s, p50 ${ms(without.p50)}, p99 ${ms(without.p99)}, max ${ms(without.max)}${cores(coresSince(mark, pids), 'without')}`);

    mark = cpuMark(pids);
    const sweep = sweepInChild(s);
    const during = await reads(hms.url, token, ids, s, { until: sweep });
    const { result, seconds: sweepSeconds } = await sweep;
    const duringCores = cores(coresSince(mark, pids, Number(result.cpuSeconds ?? 0)), 'during');
    const changed = Number(result.changed);
    const rowsPerSecond = changed / (Number(result.durationMs) / 1000);
    log(`Sweep: ${changed} invoices changed in ${(Number(result.durationMs) / 1000).toFixed(1)} s (${sweepSeconds.toFixed(1)} s with process start), ` +
      `${result.batches} batches: ${Math.round(rowsPerSecond)} rows/s; the sweeper process used ${(Number(result.cpuSeconds) / sweepSeconds).toFixed(2)} cores`);
    log(`Reads during the sweep: ${during.requests} in ${during.seconds.toFixed(1)} s, p50 ${ms(during.p50)}, p99 ${ms(during.p99)}, max ${ms(during.max)}${duringCores}`);
    log(`Database settled after ${(await settle(server)).toFixed(0)} s`);
    mark = cpuMark(pids);
    const after = await reads(hms.url, token, ids, s, { duration: s.baseline });
    log(`Reads after the sweep: p50 ${ms(after.p50)}, p99 ${ms(after.p99)}${cores(coresSince(mark, pids), 'after')}`);

    // the result as the API shows it
    const overdue = Number(((await db('billing').where({ payment_status: 'overdue' }).count({ n: '*' })) as { n: number }[])[0]!.n);
    const versions = Number(((await db('resource_history').where({ resource_type: 'Invoice', version_id: 2 }).count({ n: '*' })) as { n: number }[])[0]!.n);
    const sample = (await (await fetch(`${hms.url}/fhir/Invoice/${ID_PREFIX}${String(Math.floor(s.invoices / 2)).padStart(12, '0')}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { meta?: { versionId?: string }; extension?: { url: string; valueCode?: string }[] };
    const sampleStatus = sample.extension?.find((e) => e.url === INVOICE_EXTENSIONS.paymentStatus)?.valueCode;
    const problems: string[] = [];
    if (changed !== s.invoices || overdue !== s.invoices) problems.push(`expected ${s.invoices} changed and overdue, got ${changed} changed, ${overdue} overdue`);
    if (versions !== s.invoices) problems.push(`expected ${s.invoices} version-2 history rows, found ${versions}`);
    if (sample.meta?.versionId !== '2' || sampleStatus !== 'overdue') problems.push(`a sample invoice reads version ${sample.meta?.versionId} ${sampleStatus}`);
    for (const [name, r] of [['without', without], ['during', during], ['after', after]] as const) {
      if (r.non2xx || r.errors) problems.push(`reads ${name} the sweep: ${r.non2xx} non-2xx, ${r.errors} errors`);
    }

    const p99Ratio = during.p99 / without.p99;
    const floorRatio = rowsPerSecond / (bare.rows / bare.seconds);
    log('');
    log('| figure | value |');
    log('| --- | --- |');
    log(`| invoices | ${s.invoices} |`);
    log(`| seeding | ${seedSeconds.toFixed(1)} s |`);
    log(`| sweep | ${Math.round(rowsPerSecond)} rows/s (${(Number(result.durationMs) / 1000).toFixed(1)} s) |`);
    log(`| floor (bare batched UPDATE) | ${Math.round(bare.rows / bare.seconds)} rows/s (${bare.seconds.toFixed(1)} s) |`);
    log(`| sweep / floor | ${floorRatio.toFixed(2)} |`);
    log(`| Patient read p99 without / during the sweep | ${ms(without.p99)} / ${ms(during.p99)} |`);
    log(`| p99 during / without | ${p99Ratio.toFixed(2)} (target <= ${s.target}) |`);
    log(`| load average at the end | ${loadavg().map((l) => l.toFixed(2)).join(', ')} |`);
    if (p99Ratio > s.target) problems.push(`p99 of reads during the sweep is ${p99Ratio.toFixed(2)}x the p99 without it (target <= ${s.target})`);
    const noisy = Object.entries(noise).filter(([, v]) => (v ?? 0) > NOISE_CORES);
    for (const [name, v] of noisy) log(`WARNING: other processes used ${v!.toFixed(2)} cores during the reads ${name} the sweep: the figures are unreliable`);
    for (const p of problems) log(`PROBLEM: ${p}`);
    log(`Verdict: ${problems.length ? 'FAIL' : 'PASS'}`);
    code = problems.length ? 1 : 0;
  } finally {
    await hms?.stop();
    await db.destroy();
    if (!s.keep) await server.query(`DROP DATABASE IF EXISTS \`${conn0.database}\``);
    else log(`Database ${conn0.database} kept (BENCH_KEEP=1)`);
    await server.end();
  }
  return code;
}

if (process.env.OVERDUE_BENCH_ROLE === 'sweeper') {
  sweeper().catch((err: unknown) => { process.stderr.write(`sweeper: ${(err as Error).stack ?? String(err)}\n`); process.exitCode = 1; });
} else {
  main().then((code) => { process.exitCode = code; }, (err: unknown) => { process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`); process.exitCode = 1; });
}
