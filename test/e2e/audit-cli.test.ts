/**
 * `hms audit verify / export / archives` as an operator runs them, in child processes, over a
 * database with archive files: verify walks the files and the table (exit 0, or 1 with the file
 * that broke), export writes exactly the rows of a range (archived and online, seq order), archives
 * lists the manifest; and the bounds export accepts. Runs on MariaDB when DATABASE_URL is set (a
 * throw-away database of its own), else on SQLite in a temp dir.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb } from '../../src/db/knex.js';
import { appendToChain, AuditLog, securityLogRow } from '../../src/db/audit-log.js';
import { archiveAuditLog, archiveFileName, archiveLine } from '../../src/db/audit-archive.js';
import { inTransaction } from '../../src/db/transactions.js';
import { dateToSqlTimestamp } from '../../src/mappers/datatypes.js';
import { exportBound } from '../../src/audit-commands.js';
import type { Config } from '../../src/config.js';
import { testConfig, testDb } from '../helpers/app.js';

type Row = Record<string, unknown>;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DAY = 86_400_000;
const BASE = Date.UTC(2024, 2, 1); // 2024-03-01
const at = (day: number, sec = 0): string => dateToSqlTimestamp(new Date(BASE + day * DAY + sec * 1000));

/** `node bin/hms.mjs ...args` on the test's database and archive directory. */
function hms(config: Config, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', HMS_AUDIT_ARCHIVE_DIR: config.HMS_AUDIT_ARCHIVE_DIR! };
  delete env.NODE_OPTIONS;
  for (const key of Object.keys(env)) if (key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key];
  if (config.DATABASE_URL) env.DATABASE_URL = config.DATABASE_URL;
  else { delete env.DATABASE_URL; env.HMS_DATA_DIR = config.HMS_DATA_DIR; }
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'hms.mjs'), ...args], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

t.test('export bounds: a date is its whole UTC day, an instant needs a zone, both ends inclusive', async (t) => {
  t.equal(exportBound('2024-03-01', false), '2024-03-01 00:00:00');
  t.equal(exportBound('2024-03-01', true), '2024-03-01 23:59:59');
  t.equal(exportBound('2024-03-01T10:20:30.900+02:00', false), '2024-03-01 08:20:30');
  t.equal(exportBound('2024-03-01T10:20Z', true), '2024-03-01 10:20:00');
  for (const bad of ['2024-02-30', '2024-03-01T10:20:30', 'yesterday', '']) t.equal(exportBound(bad, false), undefined, `'${bad}' is refused`);
});

t.test('hms audit verify, export and archives over archived and online rows', async (t) => {
  let url: string | undefined;
  if (process.env.DATABASE_URL) {
    const name = `hms_auditcli_${randomBytes(6).toString('hex')}`;
    const admin = createDb({ DATABASE_URL: process.env.DATABASE_URL, HMS_DATA_DIR: '', HMS_DB_POOL_MAX: 1 });
    await admin.raw(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    t.teardown(async () => { await admin.raw(`DROP DATABASE IF EXISTS ${name}`); await admin.destroy(); });
    const u = new URL(process.env.DATABASE_URL);
    u.pathname = `/${name}`;
    url = u.toString();
  }
  const config = testConfig(t, url ? { DATABASE_URL: url } : {});
  const db = await testDb(t, config);
  // 300 rows on day 0 (archived in 3 files), 20 on day 1 (online), then today's rows
  const stamps = [...Array.from({ length: 300 }, (_, i) => at(0, i * 60)), ...Array.from({ length: 20 }, (_, i) => at(1, i))];
  const rows = stamps.map((ts, i) => ({
    ...securityLogRow({ action: 'read', role: 'doctor', resourceType: 'Patient', resourceId: randomUUID(), success: true, requestId: `cli-${i}`, additionalData: { n: i } }),
    timestamp: ts,
  }));
  await inTransaction(db, (trx) => appendToChain(trx, rows));
  const lines = ((await db('security_logs').orderBy('seq').select('*')) as Row[]).map((r) => JSON.stringify(archiveLine(r)));
  const r = await archiveAuditLog(db, { archiveDir: config.HMS_AUDIT_ARCHIVE_DIR!, before: new Date(BASE + DAY), rowsPerFile: 100 });
  t.match(r, { files: 3, rows: 300 });
  const log = new AuditLog(db);
  await log.record({ action: 'read', role: 'admin', resourceType: 'Patient', resourceId: randomUUID(), success: true });
  const head = (await db('audit_chain').where({ id: 1 }).first()) as Row;

  const ok = await hms(config, ['audit', 'verify', '--anchor', `150:${JSON.parse(lines[149]!).hash as string}`]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout.trim(), `Audit chain intact: 321 rows verified (300 in 3 archive file(s), 21 online; head seq 321, hash ${String(head.last_hash)})`);

  const out = join(config.HMS_DATA_DIR, 'export.ndjson');
  // from 04:00 on day 0 (row 241 on) to the end of day 1: the last 60 archived rows and the 20 of day 1
  const exp = await hms(config, ['audit', 'export', '--from', '2024-03-01T04:00:00Z', '--to', '2024-03-02', '--out', out]);
  t.equal(exp.code, 0, exp.stderr);
  t.same(readFileSync(out, 'utf8').split('\n').filter(Boolean), lines.slice(240, 320), 'exactly the rows of the range, archived then online, in seq order');
  t.match(exp.stderr, 'Exported 80 rows (60 from 1 archive file(s), 20 online)');

  const list = await hms(config, ['audit', 'archives']);
  t.equal(list.code, 0, list.stderr);
  t.equal(list.stdout.trim().split('\n').length, 3, 'one line per archive file');
  t.match(list.stdout, `${archiveFileName(101, 200)}  seq 101-200  100 rows  ${at(0, 100 * 60)} .. ${at(0, 199 * 60)}`);

  const f = join(config.HMS_AUDIT_ARCHIVE_DIR!, archiveFileName(101, 200));
  renameSync(f, `${f}.away`);
  const broken = await hms(config, ['audit', 'verify']);
  renameSync(`${f}.away`, f);
  t.equal(broken.code, 1);
  t.match(broken.stdout, `Audit chain broken at archive ${archiveFileName(101, 200)} (seq 101): archive-missing`);
  t.match(broken.stdout, '100 rows verified before it');
});
