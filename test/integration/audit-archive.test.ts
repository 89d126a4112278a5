/**
 * Audit archiving (docs/audit-log.md, "Archiving"), on a real database and real files: old
 * security_logs rows move in seq order to gzip NDJSON files with a manifest row each; the chain
 * verifies across the archives and the table; a second run moves nothing; tampering with a file, a
 * manifest row or the table is found, with where; interrupted runs (a hook that throws at each
 * step, and a process killed with SIGKILL between the delete and the commit) leave a consistent
 * state that the next run completes; two concurrent runs archive each row once; export gives
 * exactly the rows of a range; the processor records its run; AuditEvent sees only online rows.
 * (`hms audit verify / export` as commands: test/e2e/audit-cli.test.ts.)
 *
 * One timeline on a database of this file's own (MySQL: a throw-away hms_archive_<random>,
 * dropped at teardown; SQLite: a temp file): blocks of old rows on fixed days of 2024, archived
 * block by block with advancing cutoffs. Each tampering test repairs what it broke.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Knex } from 'knex';
import { createDb, dialectOf } from '../../src/db/knex.js';
import { appendToChain, AuditLog, securityLogRow, type SecurityLogEntry } from '../../src/db/audit-log.js';
import { verifyAuditChain, type ChainVerification } from '../../src/db/audit-chain.js';
import { archiveAuditLog, archiveFileName, archiveLine, exportAuditLog, listManifests, AuditArchiveError, type ArchiveOptions, type ArchiveResult } from '../../src/db/audit-archive.js';
import { securityLogHash } from '../../src/db/audit-hash.js';
import { parseBackupKeys } from '../../src/backup/crypt.js';
import { inTransaction } from '../../src/db/transactions.js';
import { dateToSqlTimestamp } from '../../src/mappers/datatypes.js';
import { auditArchive } from '../../src/workers/processors/audit-archive.js';
import { PermanentJobError, type JobDeps } from '../../src/workers/jobs.js';
import { buildApp } from '../../src/api/app.js';
import { createAdmin } from '../../src/auth/admin.js';
import { startSession } from '../../src/auth/sessions.js';
import { privateDatabase, testConfig, testDb } from '../helpers/app.js';
import type { Config } from '../../src/config.js';

type Row = Record<string, unknown>;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DAY = 86_400_000;
const BASE = Date.UTC(2024, 0, 1);
/** 'YYYY-MM-DD HH:MM:SS' of a day of 2024 (0: Jan 1) plus seconds. */
const at = (day: number, sec = 0): string => dateToSqlTimestamp(new Date(BASE + day * DAY + sec * 1000));
const dayStart = (day: number): Date => new Date(BASE + day * DAY);


/** A varied entry: nulls, a JSON object with nested keys and non-ASCII text, failures. */
function entry(i: number): SecurityLogEntry {
  return {
    action: ['read', 'search', 'update', 'login', 'refused'][i % 5]!, role: i % 7 ? 'doctor' : 'system', resourceType: i % 3 ? 'Patient' : 'Observation',
    resourceId: randomUUID(), patientId: i % 3 ? null : randomUUID(), ipAddress: i % 4 ? '10.0.0.1' : null, userAgent: `archive-test/${i} ünïcødé`,
    success: i % 5 !== 4, failureReason: i % 5 === 4 ? '403 forbidden' : null, requestId: `req-${i}`, breakGlass: i % 11 === 0,
    additionalData: i % 2 ? { z: i, a: { nested: [1, 'two', null], 'k é': true } } : null,
  };
}

/** Appends rows through the chain with the given timestamps (the hash covers the timestamp, so they are old from the start). */
async function appendAt(db: Knex, stamps: string[], offset: number): Promise<void> {
  for (let i = 0; i < stamps.length; i += 500) {
    const rows = stamps.slice(i, i + 500).map((ts, j) => ({ ...securityLogRow(entry(offset + i + j)), timestamp: ts }));
    await inTransaction(db, (trx) => appendToChain(trx, rows));
  }
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const rowCount = async (db: Knex): Promise<number> => Number(((await db('security_logs').count({ n: '*' })) as Row[])[0]!.n);
const headOf = async (db: Knex): Promise<{ seq: number; hash: string }> => {
  const r = (await db('audit_chain').where({ id: 1 }).first()) as Row;
  return { seq: Number(r.last_seq), hash: String(r.last_hash) };
};
const seqsOnline = async (db: Knex): Promise<number[]> => ((await db('security_logs').orderBy('seq').select('seq')) as Row[]).map((r) => Number(r.seq));
const sha256 = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex');
const fileLines = (path: string): Row[] => gunzipSync(readFileSync(path)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row);

function assertIntact(t: Test, v: ChainVerification, rows: number, archived: { files: number; rows: number } | undefined, what: string): void {
  t.same(v, { intact: true, rows, head: v.head, ...(archived ? { archived } : {}) }, what);
  t.equal(v.head?.seq, rows, 'every position from 1 to the head verified');
}

/**
 * A child process that archives with a hook killing itself (SIGKILL) at `step`: between the
 * delete and the commit the database holds the open transaction, which dies with the process.
 */
function killedRun(config: Config, before: Date, step: 'afterVerify' | 'beforeCommit'): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const script = `
    import { createDb } from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/db/knex.ts')).href)};
    import { archiveAuditLog } from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/db/audit-archive.ts')).href)};
    const db = createDb(JSON.parse(process.env.HMS_TEST_CONFIG));
    await archiveAuditLog(db, { archiveDir: process.env.HMS_TEST_ARCHIVE_DIR, before: new Date(${before.getTime()}),
      hooks: { ${step}: () => { process.kill(process.pid, 'SIGKILL'); return new Promise(() => {}); } } });
    process.stderr.write('the hook was not reached\\n');
    process.exit(3);`;
  const env: NodeJS.ProcessEnv = { ...process.env, HMS_TEST_CONFIG: JSON.stringify({ DATABASE_URL: config.DATABASE_URL, HMS_DATA_DIR: config.HMS_DATA_DIR, HMS_DB_POOL_MAX: 2 }), HMS_TEST_ARCHIVE_DIR: config.HMS_AUDIT_ARCHIVE_DIR };
  delete env.NODE_OPTIONS;
  for (const key of Object.keys(env)) if (key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.once('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

t.test('audit archiving', async (t) => {
  const url = await privateDatabase(t, 'hms_archive');
  const config = testConfig(t, url ? { DATABASE_URL: url } : {});
  const db = await testDb(t, config);
  const dir = config.HMS_AUDIT_ARCHIVE_DIR!;
  const mysql = dialectOf(db) === 'mysql';
  const archive = (opts: Partial<ArchiveOptions> & { before: Date }, on: Knex = db): Promise<ArchiveResult> => archiveAuditLog(on, { archiveDir: dir, ...opts });

  // the timeline: A 1,250 rows on day 0 (one per second), B 600 on day 10, C 300 on day 20, D 50 on
  // day 30, then one row of day 40, five of day 30 again (out of time order) and ten of day 40
  const stamps = [
    ...Array.from({ length: 1250 }, (_, i) => at(0, i)),
    ...Array.from({ length: 600 }, (_, i) => at(10, i)),
    ...Array.from({ length: 300 }, (_, i) => at(20, i)),
    ...Array.from({ length: 50 }, (_, i) => at(30, i)),
    at(40),
    ...Array.from({ length: 5 }, (_, i) => at(30, 100 + i)),
    ...Array.from({ length: 10 }, (_, i) => at(40, 1 + i)),
  ];
  const t0 = Date.now();
  await appendAt(db, stamps, 0);
  t.comment(`appended ${stamps.length} rows in ${Date.now() - t0} ms`);
  const total = stamps.length;
  /** Every row as an archive line, captured before anything moved (what the files and export must give back). */
  const lines = ((await db('security_logs').orderBy('seq').select('*')) as Row[]).map(archiveLine);
  const lineOf = (seq: number): Row => lines[seq - 1]!;
  t.equal(lines.length, total);
  assertIntact(t, await verifyAuditChain(db), total, undefined, 'intact before archiving');

  t.test('the rows before the cutoff move, in seq order, to files that verify, with their manifest', async (t) => {
    const started = Date.now();
    const r = await archive({ before: dayStart(5), rowsPerFile: 500, deleteBatch: 200 });
    const ms = Date.now() - started;
    t.comment(`archived 1,250 rows in 3 files in ${ms} ms (${Math.round(1250 / (ms / 1000))} rows/s)`);
    t.same(r, {
      files: 3, rows: 1250, firstSeq: 1, lastSeq: 1250, removed: [],
      fileNames: [archiveFileName(1, 500), archiveFileName(501, 1000), archiveFileName(1001, 1250)],
    });
    t.equal(archiveFileName(1, 500), 'security-log-000000000001-000000000500.ndjson.gz', 'files are named by their seq range');
    t.same(readdirSync(dir).sort(), r.fileNames, 'the files and nothing else (no temp file left)');
    const online = await seqsOnline(db);
    t.equal(online[0], 1251, 'the first row left is the one after the last archived');
    t.equal(online.length, total - 1250, 'exactly the archived rows are gone');

    const manifests = await listManifests(db);
    t.equal(manifests.length, 3);
    for (const [i, m] of manifests.entries()) {
      const [first, last] = [[1, 500], [501, 1000], [1001, 1250]][i]!;
      const bytes = readFileSync(join(dir, m.fileName));
      t.match(m, {
        fileName: archiveFileName(first!, last!), firstSeq: first, lastSeq: last, rowCount: last! - first! + 1,
        minTimestamp: at(0, first! - 1), maxTimestamp: at(0, last! - 1),
        firstPrevHash: lineOf(first!).prev_hash, lastHash: lineOf(last!).hash, sha256: sha256(bytes), bytes: bytes.length,
      }, `manifest of ${m.fileName}`);
      const inFile = fileLines(join(dir, m.fileName));
      t.same(inFile.map((l) => JSON.stringify(l)), lines.slice(first! - 1, last!).map((l) => JSON.stringify(l)), 'the file holds every column of exactly its rows, in seq order');
      t.ok(inFile.every((l) => securityLogHash(l) === l.hash), 'each line recomputes to its hash');
    }
    assertIntact(t, await verifyAuditChain(db, { archiveDir: dir }), total, { files: 3, rows: 1250 }, 'the chain verifies across the archives and the table');
    assertIntact(t, await verifyAuditChain(db, { archiveDir: dir, batchSize: 7, anchor: { seq: 700, hash: String(lineOf(700).hash) } }), total, { files: 3, rows: 1250 }, 'with an anchor inside an archive too');
    t.match(await verifyAuditChain(db, { archiveDir: dir, anchor: { seq: 700, hash: String(lineOf(701).hash) } }), { intact: false, break: { reason: 'anchor-mismatch', seq: 700, archive: archiveFileName(501, 1000) } });
    await t.rejects(verifyAuditChain(db), /archive directory/, 'verify needs the directory once there are archives');
  });

  t.test('a second run with the same cutoff moves nothing more', async (t) => {
    const before = await seqsOnline(db);
    t.same(await archive({ before: dayStart(5), rowsPerFile: 500 }), { files: 0, rows: 0, firstSeq: null, lastSeq: null, fileNames: [], removed: [] });
    t.same(await seqsOnline(db), before);
    t.equal((await listManifests(db)).length, 3);
  });

  t.test('tampering with an archive file, a manifest row or the table is found, with where', async (t) => {
    const f2 = join(dir, archiveFileName(501, 1000));
    const original = readFileSync(f2);
    const expectBreak = async (what: string, shape: Row): Promise<ChainVerification> => {
      const v = await verifyAuditChain(db, { archiveDir: dir });
      t.match(v, { intact: false, break: shape }, what);
      return v;
    };
    const restore = async (): Promise<void> => {
      writeFileSync(f2, original);
      assertIntact(t, await verifyAuditChain(db, { archiveDir: dir }), total, { files: 3, rows: 1250 }, 'intact again');
    };

    // a row edited inside the file (recompressed)
    const edited = fileLines(f2);
    edited[9] = { ...edited[9], ip_address: '10.6.6.6' };
    writeFileSync(f2, gzipSync(edited.map((l) => `${JSON.stringify(l)}\n`).join('')));
    const v = await expectBreak('an edited row in a file', { reason: 'content-changed', seq: 510, id: lineOf(510).id, archive: archiveFileName(501, 1000) });
    t.equal(v.rows, 509, 'the rows before it verified');
    // the same rows, other bytes (another compression level): the rows verify, the file is not the one archived
    writeFileSync(f2, gzipSync(gunzipSync(original), { level: 1 }));
    await expectBreak('a rewritten file', { reason: 'archive-changed', archive: archiveFileName(501, 1000) });
    // a row dropped from the file
    writeFileSync(f2, gzipSync(fileLines(f2).filter((l) => l.seq !== 600).map((l) => `${JSON.stringify(l)}\n`).join('')));
    await expectBreak('a row dropped from a file', { reason: 'row-missing', seq: 601, archive: archiveFileName(501, 1000) });
    // a cut file, a missing file
    writeFileSync(f2, original.subarray(0, original.length - 100));
    await expectBreak('a truncated file', { reason: 'archive-unreadable', archive: archiveFileName(501, 1000) });
    unlinkSync(f2);
    await expectBreak('a missing file', { reason: 'archive-missing', archive: archiveFileName(501, 1000), seq: 501 });
    await restore();

    // the manifest
    const m2 = (await db('audit_archives').where({ first_seq: 501 }).first()) as Row;
    for (const [column, value, reason] of [
      ['row_count', 499, 'manifest-mismatch'], ['last_hash', 'f'.repeat(64), 'manifest-mismatch'], ['first_prev_hash', 'e'.repeat(64), 'manifest-mismatch'],
      ['sha256', '0'.repeat(64), 'archive-changed'], ['bytes', 1, 'archive-changed'],
    ] as const) {
      await db('audit_archives').where({ id: m2.id }).update({ [column]: value });
      await expectBreak(`the manifest's ${column} changed`, { reason, archive: archiveFileName(501, 1000) });
      await db('audit_archives').where({ id: m2.id }).update({ [column]: m2[column] });
    }
    await db('audit_archives').where({ id: m2.id }).delete();
    await expectBreak('a manifest row deleted (the rows of its file belong nowhere)', { reason: 'row-missing', seq: 1001, archive: archiveFileName(1001, 1250) });
    await db('audit_archives').insert(m2);
    const m3 = (await db('audit_archives').where({ first_seq: 1001 }).first()) as Row;
    await db('audit_archives').where({ id: m3.id }).delete();
    await expectBreak('the last manifest row deleted', { reason: 'row-missing', seq: 1251 });
    await db('audit_archives').insert(m3);

    // the table: an archived row put back; the first online row edited
    const back: Row = { ...lineOf(800) };
    await db('security_logs').insert(back);
    await expectBreak('an archived row put back into the table', { reason: 'archived-row-online', seq: 800 });
    await db('security_logs').where({ id: back.id }).delete();
    await db('security_logs').where({ seq: 1251 }).update({ action: 'nothing-to-see' });
    await expectBreak('the first online row edited', { reason: 'content-changed', seq: 1251 });
    await db('security_logs').where({ seq: 1251 }).update({ action: lineOf(1251).action });
    await restore();
  });

  t.test('a broken chain is not archived', async (t) => {
    await db('security_logs').where({ seq: 1300 }).update({ user_agent: 'forged' });
    const err = await archive({ before: dayStart(15) }).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof AuditArchiveError && err.permanent && err.seq === 1300, `refused at the broken row (${String(err)})`);
    t.equal((await listManifests(db)).length, 3, 'no manifest row');
    t.equal((await seqsOnline(db))[0], 1251, 'nothing moved');
    await t.rejects(auditArchive({ before: '2024-01-16T00:00:00Z' }, { db, config, log: silent, auditLog: new AuditLog(db), now: () => new Date() }), PermanentJobError,
      'the processor fails at once (no retries)');
    await db('security_logs').where({ seq: 1300 }).update({ user_agent: lineOf(1300).user_agent });
    assertIntact(t, await verifyAuditChain(db, { archiveDir: dir }), total, { files: 3, rows: 1250 }, 'repaired');
  });

  t.test('an interrupted run leaves nothing moved, and the next run completes it', async (t) => {
    const before = dayStart(15);
    const b = archiveFileName(1251, 1850);
    const state = async (what: string, files: string[]): Promise<void> => {
      t.equal((await listManifests(db)).length, 3, `${what}: no manifest row`);
      t.equal((await seqsOnline(db))[0], 1251, `${what}: no row moved`);
      t.same(readdirSync(dir).filter((n) => !/^security-log-0+(1|501|1001)-/.test(n)).sort(), files.sort(), `${what}: files left`);
      assertIntact(t, await verifyAuditChain(db, { archiveDir: dir }), total, { files: 3, rows: 1250 }, `${what}: the chain verifies`);
    };
    const crash = new Error('crash');
    let temp = '';
    await t.rejects(archive({ before, hooks: { afterWrite: (p) => { temp = p; throw crash; } } }), crash);
    await state('stopped after writing the temp file', [temp.split('/').pop()!]);
    t.match(temp, /\/\.security-log-[0-9a-f-]+\.tmp$/);

    await t.rejects(archive({ before, hooks: { afterVerify: () => { throw crash; } } }), crash);
    await state('stopped after the file was renamed and verified (no manifest)', [b]);

    await t.rejects(archive({ before, hooks: { beforeCommit: () => { throw crash; } } }), crash);
    await state('stopped after the manifest insert and the delete, before commit (rolled back)', [b]);

    const killed = await killedRun(config, before, 'beforeCommit');
    t.equal(killed.signal, 'SIGKILL', `the child was killed between the delete and the commit (${killed.stderr.trim()})`);
    // MySQL rolls the dead connection's transaction back when it sees the socket close: until then the lock is held
    let r: ArchiveResult | undefined;
    for (let i = 0; i < 50 && (!r || r.busy); i++) {
      if (r) await new Promise((res) => setTimeout(res, 100));
      r = await archive({ before });
    }
    t.same(r!.removed, [b], 'the next run removed the orphan file (its rows were all still online)');
    t.match(r, { files: 1, rows: 600, firstSeq: 1251, lastSeq: 1850, fileNames: [b] }, 'and archived block B');
    t.same(fileLines(join(dir, b)).map((l) => JSON.stringify(l)), lines.slice(1250, 1850).map((l) => JSON.stringify(l)));
    assertIntact(t, await verifyAuditChain(db, { archiveDir: dir }), total, { files: 4, rows: 1850 }, 'intact after the completed run');
    t.notOk(readdirSync(dir).some((n) => n.endsWith('.tmp')), 'no temp file left');
  });

  t.test('an orphan whose rows are not online is kept (it may be their only copy)', async (t) => {
    const name = archiveFileName(1, 10);
    writeFileSync(join(dir, name), gzipSync(lines.slice(0, 10).map((l) => `${JSON.stringify(l)}\n`).join('')));
    const r = await archive({ before: dayStart(15) });
    t.same(r.removed, []);
    t.ok(existsSync(join(dir, name)), 'kept');
    unlinkSync(join(dir, name));
  });

  t.test('two concurrent runs archive each row once', async (t) => {
    const other = mysql ? createDb(config) : db; // MySQL: another pool (another worker); SQLite: one connection per process, runs serialise
    if (mysql) t.teardown(() => other.destroy());
    // MySQL: while one run holds the lock in the middle of a file, a third run finds it taken and stops at once
    let third: ArchiveResult | undefined;
    const hooks = mysql ? { afterVerify: async () => { third ??= await archive({ before: dayStart(25), rowsPerFile: 50 }, other); } } : undefined;
    const [a, b] = await Promise.all([archive({ before: dayStart(25), rowsPerFile: 50, hooks }), archive({ before: dayStart(25), rowsPerFile: 50, hooks }, other)]);
    t.comment(`run 1: ${a.files} files${a.busy ? ' (then busy)' : ''}; run 2: ${b.files} files${b.busy ? ' (then busy)' : ''}`);
    if (mysql) t.match(third, { files: 0, rows: 0, busy: true }, 'a run that finds the lock taken moves nothing and does not wait');
    t.equal(a.rows + b.rows, 300, 'block C moved once in all');
    const names = [...a.fileNames, ...b.fileNames];
    t.equal(new Set(names).size, names.length, 'no file twice');
    const manifests = await listManifests(db);
    const c = manifests.filter((m) => m.firstSeq > 1850);
    t.same(c.map((m) => [m.firstSeq, m.lastSeq]), Array.from({ length: 6 }, (_, i) => [1851 + i * 50, 1900 + i * 50]), 'six files of 50, in order, no overlap');
    t.same(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
    assertIntact(t, await verifyAuditChain(db, { archiveDir: dir }), total, { files: 10, rows: 2150 }, 'intact');
  });

  t.test('never a row at or after the cutoff, even when older rows follow it in seq order', async (t) => {
    const r = await archive({ before: dayStart(35) });
    t.match(r, { files: 1, rows: 50, firstSeq: 2151, lastSeq: 2200 });
    const online = (await db('security_logs').orderBy('seq').select('seq', 'timestamp')) as Row[];
    t.same(online.map((x) => String(x.timestamp)), [at(40), ...Array.from({ length: 5 }, (_, i) => at(30, 100 + i)), ...Array.from({ length: 10 }, (_, i) => at(40, 1 + i))],
      'the day-40 row stops the run; the five day-30 rows after it wait for it');
    t.same((await archive({ before: dayStart(35) })).rows, 0, 'and stay until it may move');
  });

  t.test('export gives exactly the rows of a range, archived and online, in seq order', async (t) => {
    const collect = async (from?: string, to?: string): Promise<string[]> => {
      const out: string[] = [];
      await exportAuditLog(db, { archiveDir: dir, from, to }, (row) => { out.push(JSON.stringify(row)); });
      return out;
    };
    const expected = (from?: string, to?: string): string[] => lines.filter((l) => (!from || String(l.timestamp) >= from) && (!to || String(l.timestamp) <= to)).map((l) => JSON.stringify(l));
    for (const [from, to] of [
      [at(0, 300), at(0, 600)], // inside one file and across two
      [at(0), at(10, 599)], // blocks A and B exactly
      [at(20, 10), at(40, 5)], // archived (C, D) and online rows (day 40, day 30 again, day 40)
      [at(30, 102), at(30, 103)], // online only
      [at(50), at(60)], // nothing
      [undefined, undefined], // everything
    ] as const) {
      const got = await collect(from, to);
      const want = expected(from, to);
      t.equal(got.length, want.length, `${from} .. ${to}: ${want.length} rows`);
      t.ok(got.every((g, i) => g === want[i]), 'the same rows, in seq order');
    }
    const f = join(dir, archiveFileName(1, 500));
    const original = readFileSync(f);
    writeFileSync(f, gzipSync(gunzipSync(original), { level: 1 }));
    await t.rejects(collect(at(0), at(0, 10)), /does not match its manifest/, 'a changed file is refused, not exported');
    writeFileSync(f, original);
  });

  t.test('the processor archives past the retention, records its run, and moves nothing more the second time', async (t) => {
    const auditLog = new AuditLog(db);
    const deps: JobDeps = { db, config: { ...config, HMS_AUDIT_RETENTION_DAYS: 90 }, log: silent, auditLog, now: () => dayStart(200) };
    await t.rejects(auditArchive({ before: new Date(Date.now() + DAY).toISOString() }, { ...deps, now: () => new Date() }), PermanentJobError, 'a cutoff in the future is refused');
    await t.rejects(auditArchive({ before: 'yesterday' }, deps), PermanentJobError);
    const r = await auditArchive({}, deps);
    t.same(r, { files: 1, rows: 16, firstSeq: 2201, lastSeq: 2216, before: dayStart(110).toISOString() }, 'now - 90 days');
    const own = (await db('security_logs').where({ action: 'audit-archive' }).select('*')) as Row[];
    t.equal(own.length, 1, 'one row for the run');
    t.match(own[0], { role: 'system', success: 1, seq: total + 1 });
    t.match(JSON.parse(String(typeof own[0]!.additional_data === 'string' ? own[0]!.additional_data : JSON.stringify(own[0]!.additional_data))), { files: 1, rows: 16, firstSeq: 2201, lastSeq: 2216 });
    const again = await auditArchive({}, deps);
    t.match(again, { files: 0, rows: 0, firstSeq: null, lastSeq: null });
    t.equal(await rowCount(db), 1, 'no row for a run that moved nothing');
    assertIntact(t, await verifyAuditChain(db, { archiveDir: dir }), total + 1, { files: 12, rows: total }, 'the whole chain: 12 files and the run\'s own row');
    t.same(await headOf(db), { seq: total + 1, hash: String(own[0]!.hash) });
  });

  t.test('AuditEvent serves only the online rows', async (t) => {
    const app = await buildApp({ config, db, logger: false });
    t.teardown(() => app.close());
    const admin = await createAdmin(db, { email: `admin-${randomUUID()}@test.example.org`, password: 'correct horse battery', name: 'Archive Admin', cost: 12 });
    const token = await startSession(db, admin, { ttlSeconds: 3600 });
    const get = (u: string) => app.inject({ method: 'GET', url: u, headers: { authorization: `Bearer ${token}` } });
    t.equal((await get(`/fhir/AuditEvent/${String(lineOf(10).id)}`)).statusCode, 404, 'an archived row is not found');
    const own = (await db('security_logs').where({ action: 'audit-archive' }).first('id')) as Row;
    t.equal((await get(`/fhir/AuditEvent/${String(own.id)}`)).statusCode, 200, 'an online row is');
    const search = await get('/fhir/AuditEvent?date=lt2024-12-31');
    t.equal(search.statusCode, 200);
    t.equal((search.json() as { total?: number; entry?: unknown[] }).entry?.length ?? 0, 0, 'a search of the archived period finds nothing online');
  });
});

t.test('with HMS_BACKUP_KEYS the archive files are encrypted at rest; verify and export read them with the keys, and not without', async (t) => {
  const url = await privateDatabase(t, 'hms_archive_enc');
  const config = testConfig(t, url ? { DATABASE_URL: url } : {});
  const db = await testDb(t, config);
  const dir = config.HMS_AUDIT_ARCHIVE_DIR!;
  const [key, older] = parseBackupKeys(`${randomBytes(32).toString('base64')},${randomBytes(32).toString('hex')}`);
  await appendAt(db, Array.from({ length: 300 }, (_, i) => at(0, i)), 0);
  const moved = await archiveAuditLog(db, { archiveDir: dir, before: dayStart(1), key: key!, rowsPerFile: 200 });
  t.equal(moved.rows, 300);
  const files = readdirSync(dir).filter((f) => f.endsWith('.ndjson.gz'));
  t.equal(files.length, 2);
  for (const f of files) {
    const bytes = readFileSync(join(dir, f));
    t.ok(bytes.subarray(0, 8).equals(Buffer.from('HMSENC1\n')), `${f}: an encrypted file, not gzip`);
    t.notOk(bytes.includes(Buffer.from('archive-test/')), `${f}: no row in clear`);
  }
  const manifests = await listManifests(db);
  t.equal(manifests[0]!.sha256, sha256(readFileSync(join(dir, manifests[0]!.fileName))), 'the manifest holds the SHA-256 of the file as stored');
  // rotation: a new key first, the one that encrypted them still listed
  assertIntact(t, await verifyAuditChain(db, { archiveDir: dir, keys: [older!, key!] }), 300, { files: 2, rows: 300 }, 'verifies with the key (listed second after a rotation)');
  const without = await verifyAuditChain(db, { archiveDir: dir, keys: [older!] });
  t.equal(without.intact, false, 'and not without it');
  let exported = 0;
  await exportAuditLog(db, { archiveDir: dir, keys: [key!] }, async () => { exported += 1; });
  t.equal(exported, 300, 'export reads them with the key');
  // an altered byte fails the GCM tag: the break names the file
  const path = join(dir, files[0]!);
  const bytes = readFileSync(path);
  bytes[bytes.length >> 1] ^= 1;
  writeFileSync(path, bytes);
  t.equal((await verifyAuditChain(db, { archiveDir: dir, keys: [key!] })).intact, false, 'an altered encrypted file is a break');
});
