/**
 * Transaction ingest (issue 11, "Figures"): the Synthea transaction Bundles (the
 * hospitalInformation and practitionerInformation Bundles, the 12 records made storable and the 3
 * rewritten with conditional references: test/fixtures/synthea-exchange/records.ts) sent through
 * processBundle one after the other, as `hms import` sends them (a server context, every entry
 * validated, versioned, indexed and audited in one database transaction per Bundle; acting as an
 * admin, as `hms import --as`), in
 * BENCH_TX_ROUNDS rounds, each made unique to its round (so every round creates its providers
 * again). Prints resources/s beside the floor measured in the same run: the rows those rounds
 * wrote (every table: seed tables, generic store, history, search index, security log), copied
 * with raw mysql2 multi-row INSERTs in one transaction into empty tables of the same definition
 * (`CREATE TABLE ... LIKE`: the same columns and indexes, no foreign keys); and the ratio of the
 * two rates (target >= 0.3).
 *
 *   DATABASE_URL=mysql://root@127.0.0.1:3306/hms_bench_tx npx tsx bench/transaction-ingest.ts
 *
 * Environment: DATABASE_URL (named hms_bench*; default mysql://root@127.0.0.1:3306/hms_bench_tx;
 * it and <name>_floor are dropped and made again, and dropped at the end unless BENCH_KEEP=1),
 * BENCH_TX_ROUNDS (3 measured rounds, after one warm-up round that is not counted),
 * BENCH_TX_STATEMENTS=1 (also list the statements sent per resource, by shape), BENCH_TX_PROFILE=DIR
 * (a CPU profile of the measured rounds, written there and summarized).
 */
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { createDb, migrateLatest, mysqlConnection } from '../src/db/knex.js';
import { loadConfig } from '../src/config.js';
import { AuditLog } from '../src/db/audit-log.js';
import { createAdmin } from '../src/auth/admin.js';
import { workerContext } from '../src/workers/context.js';
import { processBundle } from '../src/fhir/exchange/transaction.js';
import '../src/fhir/resources/index.js';
import { storable, syntheaExchange, type TransactionBundle } from '../test/fixtures/synthea-exchange/records.js';
import { parseDatabaseUrl } from './config.js';
import { formatProfile, summarizeProfile } from './profile.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/hms_bench_tx';
const ROUNDS = Math.max(1, Number(process.env.BENCH_TX_ROUNDS ?? 3));
const TARGET = 0.3;
/** BENCH_TX_STATEMENTS=1 also lists the statements HMS sent, by shape. */
const SHAPES = process.env.BENCH_TX_STATEMENTS === '1';
/** BENCH_TX_PROFILE=DIR writes a CPU profile of the measured rounds there and prints its summary. */
const PROFILE = process.env.BENCH_TX_PROFILE;
/** Bytes of VALUES per INSERT statement in the floor (well under max_allowed_packet). */
const STATEMENT_BYTES = 4 * 1024 * 1024;
const log = (line: string): void => { process.stdout.write(`${line}\n`); };
const silent = { info() {}, warn() {}, error() {}, debug() {} };

/** One round's Bundles, in the order `hms import` sends a Synthea export: shared ones first. */
function round(): TransactionBundle[] {
  const { hospital, practitioner, originals, rewritten } = syntheaExchange(randomBytes(4).toString('hex'));
  return [hospital, practitioner, ...originals.map((o) => storable(o.bundle, practitioner)), ...rewritten.map((r) => r.bundle)];
}

type Rows = Map<string, { columns: string[]; rows: unknown[][] }>;

/** The tables of a database and their writable (not generated) columns. */
async function tables(conn: mysql.Connection, database: string): Promise<Map<string, string[]>> {
  const [cols] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ? AND EXTRA NOT LIKE '%GENERATED%' AND TABLE_NAME NOT LIKE 'knex_migrations%' ORDER BY TABLE_NAME, ORDINAL_POSITION`, [database]);
  const out = new Map<string, string[]>();
  for (const { t, c } of cols) out.set(String(t), [...(out.get(String(t)) ?? []), String(c)]);
  return out;
}

/** Every row of every table, as JSON text per table (to tell the rows a run added). */
async function snapshot(conn: mysql.Connection, schema: Map<string, string[]>): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const [table, columns] of schema) {
    const [rows] = await conn.query({ sql: `SELECT ${columns.map((c) => `\`${c}\``).join(', ')} FROM \`${table}\``, rowsAsArray: true });
    out.set(table, new Set((rows as unknown[][]).map((r) => JSON.stringify(r))));
  }
  return out;
}

/** The rows not in `before` (what the measured rounds wrote, or rewrote in place: the chain head). */
async function added(conn: mysql.Connection, schema: Map<string, string[]>, before: Map<string, Set<string>>): Promise<Rows> {
  const out: Rows = new Map();
  for (const [table, columns] of schema) {
    const [rows] = await conn.query({ sql: `SELECT ${columns.map((c) => `\`${c}\``).join(', ')} FROM \`${table}\``, rowsAsArray: true });
    // a JSON column may come back parsed: it goes back as the text it was
    const fresh = (rows as unknown[][]).filter((r) => !before.get(table)!.has(JSON.stringify(r)))
      .map((r) => r.map((v) => (v !== null && typeof v === 'object' && !Buffer.isBuffer(v) ? JSON.stringify(v) : v)));
    if (fresh.length) out.set(table, { columns, rows: fresh });
  }
  return out;
}

/** The floor: the same rows, multi-row INSERTs in one transaction; resolves to its seconds. */
async function floor(conn: mysql.Connection, rows: Rows): Promise<number> {
  const started = process.hrtime.bigint();
  await conn.beginTransaction();
  for (const [table, { columns, rows: list }] of rows) {
    let chunk: unknown[][] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length) await conn.query(`INSERT INTO \`${table}\` (${columns.map((c) => `\`${c}\``).join(', ')}) VALUES ?`, [chunk]);
      chunk = [];
      bytes = 0;
    };
    for (const r of list) {
      chunk.push(r);
      bytes += JSON.stringify(r).length;
      if (bytes >= STATEMENT_BYTES) await flush();
    }
    await flush();
  }
  await conn.commit();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main(): Promise<void> {
  const { server, database } = parseDatabaseUrl(DATABASE_URL);
  const floorDb = `${database}_floor`;
  const admin = await mysql.createConnection({ host: server.host, port: server.port, user: server.user, password: server.password });
  for (const name of [database, floorDb]) {
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  }
  const config = loadConfig({ DATABASE_URL, HMS_DATA_DIR: 'data', LOG_LEVEL: 'silent' });
  const db = createDb(config);
  const auditLog = new AuditLog(db);
  const conn = await mysql.createConnection(mysqlConnection(DATABASE_URL));
  try {
    await migrateLatest(db);
    // as `hms import --as` an admin: the recorder of the records' Conditions (Synthea names none)
    const userId = await createAdmin(db, { email: `bench-${randomBytes(6).toString('hex')}@bench.example.org`, password: randomBytes(18).toString('base64url'), name: 'Bench', cost: 12 });
    const principal = { kind: 'user' as const, userId, role: 'admin' as const, sessionId: 'import', grants: [] };
    const ctx = workerContext({ db, config, log: silent, auditLog, now: () => new Date() }, { principal, job: { queue: 'import', id: 'bench/transaction-ingest' } });
    const send = async (bundles: TransactionBundle[]): Promise<{ created: number; matched: number }> => {
      let created = 0;
      let matched = 0;
      for (const b of bundles) {
        const res = await processBundle(ctx, b, { maxEntries: config.HMS_BUNDLE_MAX_ENTRIES, return: 'minimal' });
        for (const e of res.entry ?? []) {
          if (e.response?.status.startsWith('201')) created++;
          else matched++;
        }
      }
      return { created, matched };
    };
    // warm-up (JIT, connection pool, caches): not counted, its rows not copied by the floor
    const warm = await send(round());
    log(`warm-up round: ${warm.created} resources created, ${warm.matched} matched`);

    const schema = await tables(conn, database);
    const before = await snapshot(conn, schema);
    const work = Array.from({ length: ROUNDS }, round);
    const entries = work.reduce((n, r) => n + r.reduce((m, b) => m + b.entry.length, 0), 0);
    // the statements HMS sends for them: round trips, which is where its time goes (the CPU mostly waits)
    let statements = 0;
    const shapes = new Map<string, number>();
    const count = (q: { sql?: string }): void => {
      statements++;
      if (SHAPES) {
        const shape = (q.sql ?? '').replace(/\s+/g, ' ').replace(/\((?:\?, )*\?\)(?:, \((?:\?, )*\?\))*/g, '(?...)').slice(0, 90);
        shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
      }
    };
    db.on('query', count);
    const profiler = PROFILE ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    const cpuBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    let created = 0;
    let matched = 0;
    for (const r of work) {
      const got = await send(r);
      created += got.created;
      matched += got.matched;
    }
    const hmsSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    await auditLog.settle();
    db.off('query', count);
    const cpu = process.cpuUsage(cpuBefore);
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      await mkdir(PROFILE!, { recursive: true });
      const file = join(PROFILE!, `transaction-ingest-${Date.now()}.cpuprofile`);
      await writeFile(file, JSON.stringify(profile));
      log(formatProfile(summarizeProfile(file, process.cwd(), undefined, 25)));
    }

    // what one statement costs on this machine whatever it does: HMS pays it per statement, the floor per 4 MB
    const trips = 500;
    const tripStart = process.hrtime.bigint();
    for (let i = 0; i < trips; i++) await conn.query('SELECT 1');
    const roundTripUs = Number(process.hrtime.bigint() - tripStart) / 1e3 / trips;

    const rows = await added(conn, schema, before);
    const rowCount = [...rows.values()].reduce((n, t) => n + t.rows.length, 0);
    const floorConn = await mysql.createConnection(mysqlConnection(DATABASE_URL.replace(/\/[^/]*$/, `/${floorDb}`)));
    let floorSeconds: number;
    try {
      for (const table of rows.keys()) await floorConn.query(`CREATE TABLE \`${table}\` LIKE \`${database}\`.\`${table}\``);
      floorSeconds = await floor(floorConn, rows);
    } finally {
      await floorConn.end();
    }

    const hmsRate = created / hmsSeconds;
    const floorRate = created / floorSeconds;
    log(`${ROUNDS} rounds x ${work[0]!.length} transaction Bundles: ${entries} entries, ${created} resources created, ${matched} matched (conditional creates of the shared providers)`);
    log(`rows written: ${rowCount} in ${rows.size} tables (${[...rows].sort((a, b) => b[1].rows.length - a[1].rows.length).map(([t, v]) => `${t} ${v.rows.length}`).join(', ')})`);
    log(`HMS  (processBundle, one transaction per Bundle): ${hmsSeconds.toFixed(2)} s, ${Math.round(hmsRate)} resources/s; ${statements} SQL statements (${(statements / created).toFixed(1)} per resource); this process's CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (${((cpu.user + cpu.system) / created / 1000).toFixed(2)} ms per resource)`);
    log(`a round trip (SELECT 1 over the same connection, ${trips} in a row): ${roundTripUs.toFixed(0)} us; HMS's statements x that: ${(statements * roundTripUs / 1e6).toFixed(2)} s of its ${hmsSeconds.toFixed(2)} s`);
    log(`floor (the same rows, raw multi-row INSERTs in one transaction): ${floorSeconds.toFixed(2)} s, ${Math.round(floorRate)} resources/s`);
    if (SHAPES) {
      log('statements by shape (per resource created):');
      for (const [shape, n] of [...shapes].sort((a, b) => b[1] - a[1]).slice(0, 30)) log(`  ${(n / created).toFixed(2).padStart(6)}  ${shape}`);
    }
    const ratio = hmsRate / floorRate;
    log(`ratio HMS / floor: ${ratio.toFixed(2)} (target >= ${TARGET}: ${ratio >= TARGET ? 'met' : 'NOT met'})`);
  } finally {
    await conn.end();
    await db.destroy();
    if (process.env.BENCH_KEEP !== '1') for (const name of [database, floorDb]) await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
