/**
 * Bulk Data $export throughput and memory (issue 11, "Figures"): the export writer the
 * bulk-export job runs (src/fhir/bulk/export-writer.ts: keyset pages, the resource as a read shows
 * it, the access view, one audit row per patient, NDJSON to files), as an admin, over the types
 * Patient, Observation, Encounter, Condition, MedicationRequest and Immunization of the bench
 * data (`hms seed`'s generator). Beside it, the floor measured in the same run: the same rows
 * (the same SELECT of each type's table joined with its kept version) streamed by mysql2 and
 * written as JSON lines to a file. Prints resources/s of both, their ratio (target >= 0.5), and the
 * export's peak RSS at 1x and at 10x the data (target: within 10 %), each measured export run in
 * a process of its own (so that seeding and the floor leave nothing in its heap). Run again in a
 * process with --expose-gc that collects fully every 10 pages, the export also tells the heap it
 * keeps (in use right after a full collection): peak RSS also holds what V8 has not collected
 * yet, which grows with the length of the run up to V8's heap-growing limit, not with the data.
 *
 *   DATABASE_URL=mysql://root@127.0.0.1:3306/hms_bench_export npx tsx bench/bulk-export.ts
 *
 * Environment: DATABASE_URL (named hms_bench*; dropped and made again; dropped at the end unless
 * BENCH_KEEP=1), BENCH_EXPORT_PATIENTS (200: the 1x data; 10x is ten times as many),
 * BENCH_EXPORT_PAGE (rows per page of the export; the writer's default otherwise).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { createConnection } from 'mysql2';
import { execFileSync } from 'node:child_process';
import type { Knex } from 'knex';
import { loadConfig } from '../src/config.js';
import { AuditLog } from '../src/db/audit-log.js';
import { workerContext } from '../src/workers/context.js';
import { writeExport } from '../src/fhir/bulk/export-writer.js';
import { definitionOf } from '../src/fhir/resource-view.js';
import { currentQuery } from '../src/db/resource-repository.js';
import '../src/fhir/resources/index.js';
import { parseDatabaseUrl } from './config.js';
import { ensureDatabase, openMigrated, seedTo } from './seed.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/hms_bench_export';
const PATIENTS = Math.max(10, Number(process.env.BENCH_EXPORT_PATIENTS ?? 200));
const TYPES = ['Patient', 'Observation', 'Encounter', 'Condition', 'MedicationRequest', 'Immunization'];
const TARGET = 0.5;
/** Rows per page of the export (BENCH_EXPORT_PAGE; the writer's default otherwise). */
const PAGE = process.env.BENCH_EXPORT_PAGE ? Number(process.env.BENCH_EXPORT_PAGE) : undefined;
const log = (line: string): void => { process.stdout.write(`${line}\n`); };
const silent = { info() {}, warn() {}, error() {}, debug() {} };

/** Peak RSS while `fn` runs (sampled every 20 ms), in MiB, with the RSS it started from and the peak of the V8 heap in use. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peakMiB: number; baseMiB: number; heapMiB: number }> {
  const mib = (n: number): number => n / 1024 / 1024;
  const base = process.memoryUsage().rss;
  let peak = base;
  let heap = process.memoryUsage().heapUsed;
  const sample = (): void => { const m = process.memoryUsage(); peak = Math.max(peak, m.rss); heap = Math.max(heap, m.heapUsed); };
  const timer = setInterval(sample, 20);
  try {
    const result = await fn();
    sample();
    return { result, peakMiB: mib(peak), baseMiB: mib(base), heapMiB: mib(heap) };
  } finally {
    clearInterval(timer);
  }
}

/** The floor: each type's SELECT streamed by mysql2, one JSON line per row. */
async function floor(db: Knex, dir: string): Promise<{ rows: number; seconds: number }> {
  const { server, database } = parseDatabaseUrl(DATABASE_URL);
  const conn = createConnection({ ...server, database, charset: 'utf8mb4' });
  const started = process.hrtime.bigint();
  let rows = 0;
  try {
    for (const type of TYPES) {
      const def = definitionOf(type);
      const q = currentQuery(db, def).orderBy('t.id');
      if (def.softDelete) q.whereNull('t.deleted_at');
      const out = createWriteStream(join(dir, `${type}.floor.ndjson`));
      const stream = conn.query(q.toString()).stream();
      for await (const row of stream) {
        rows++;
        if (!out.write(JSON.stringify(row) + '\n')) await once(out, 'drain');
      }
      await new Promise<void>((resolve) => out.end(resolve));
    }
  } finally {
    conn.end();
  }
  return { rows, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

async function hmsExport(db: Knex, dir: string): Promise<{ rows: number; seconds: number; peakMiB: number; baseMiB: number; heapMiB: number; retainedMiB?: number }> {
  const config = loadConfig({ ...process.env, DATABASE_URL }, { LOG_LEVEL: 'silent' });
  const auditLog = new AuditLog(db);
  const ctx = workerContext({ db, config, log: silent, auditLog, now: () => new Date() }, { job: { queue: 'bulk-export', id: 'bench' } });
  const started = process.hrtime.bigint();
  // under --expose-gc: a full collection every 10 pages, and the heap in use right after it
  const gc = (globalThis as { gc?: () => void }).gc;
  let pages = 0;
  let retained = 0;
  const onPage = gc ? async (): Promise<boolean> => {
    if (++pages % 10 === 0) { gc(); retained = Math.max(retained, process.memoryUsage().heapUsed); }
    return true;
  } : undefined;
  const { result, peakMiB, baseMiB, heapMiB } = await peakRss(() => writeExport(ctx, 'system', { types: TYPES, typeFilter: {} }, { dir, pageSize: PAGE, onPage }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await auditLog.settle();
  return { rows: result.resources, seconds, peakMiB, baseMiB, heapMiB, ...(gc ? { retainedMiB: retained / 1024 / 1024 } : {}) };
}

async function main(): Promise<void> {
  const { server, database } = parseDatabaseUrl(DATABASE_URL);
  await ensureDatabase({ server, database }, true);
  const db = await openMigrated({ databaseUrl: DATABASE_URL }, 4);
  const dir = await mkdtemp(join(tmpdir(), 'hms-bench-export-'));
  try {
    const figures: { scale: string; hms: Awaited<ReturnType<typeof hmsExport>>; floor: Awaited<ReturnType<typeof floor>> }[] = [];
    for (const [scale, patients] of [['1x', PATIENTS], ['10x', PATIENTS * 10]] as const) {
      await seedTo(db, patients);
      // a warm-up pass of each, then the measured ones
      await floor(db, dir);
      await hmsExport(db, dir);
      const f = await floor(db, dir);
      // measured in a process of its own: this one's heap holds what seeding and the floor left
      const measure = (gc: boolean) => JSON.parse(execFileSync(process.execPath, [...(gc ? ['--expose-gc'] : []), ...process.execArgv, process.argv[1]!], {
        env: { ...process.env, BENCH_EXPORT_CHILD: dir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
      }).trim().split('\n').pop()!) as Awaited<ReturnType<typeof hmsExport>>;
      const h = measure(false);
      // again with a full collection every 10 pages: the heap the export keeps (what it needs, not what V8 has yet to collect)
      const retained = measure(true).retainedMiB!;
      figures.push({ scale, hms: { ...h, retainedMiB: retained }, floor: f });
      log(`${scale} (${patients} patients): HMS ${h.rows} resources in ${h.seconds.toFixed(2)} s = ${(h.rows / h.seconds).toFixed(0)}/s, peak RSS ${h.peakMiB.toFixed(0)} MiB (from ${h.baseMiB.toFixed(0)} MiB before it; V8 heap in use at most ${h.heapMiB.toFixed(0)} MiB); `
        + `floor ${f.rows} rows in ${f.seconds.toFixed(2)} s = ${(f.rows / f.seconds).toFixed(0)}/s; ratio ${((h.rows / h.seconds) / (f.rows / f.seconds)).toFixed(2)} (target >= ${TARGET})`);
    }
    const [one, ten] = figures;
    log(`memory: peak RSS ${one!.hms.peakMiB.toFixed(0)} MiB at 1x, ${ten!.hms.peakMiB.toFixed(0)} MiB at 10x: ${(ten!.hms.peakMiB / one!.hms.peakMiB).toFixed(2)}x (target <= 1.10)`);
    log(`memory kept: V8 heap in use after a full collection, at most ${one!.hms.retainedMiB!.toFixed(1)} MiB at 1x, ${ten!.hms.retainedMiB!.toFixed(1)} MiB at 10x: ${(ten!.hms.retainedMiB! / one!.hms.retainedMiB!).toFixed(2)}x`);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await db.destroy();
    if (process.env.BENCH_KEEP !== '1') {
      const conn = await mysql.createConnection({ ...server, charset: 'utf8mb4' });
      await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await conn.end();
    }
  }
}

/** The measured export alone, in a fresh process: prints its figures as JSON. */
async function child(dir: string): Promise<void> {
  const db = await openMigrated({ databaseUrl: DATABASE_URL }, 4);
  try {
    log(JSON.stringify(await hmsExport(db, dir)));
  } finally {
    await db.destroy();
  }
}

(process.env.BENCH_EXPORT_CHILD ? child(process.env.BENCH_EXPORT_CHILD) : main()).catch((err) => { console.error(err); process.exit(1); });
