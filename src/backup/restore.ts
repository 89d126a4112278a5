/**
 * `hms restore`: a backup into a database of its own (never over the live one unless --force),
 * then, on MariaDB, the binlog replayed from the backup's position to a point in time:
 * --to "YYYY-MM-DD HH:MM:SS" (UTC: the last event before that second), --stop-before REGEX (the
 * transaction whose statement matches, e.g. an accidental `DELETE FROM patients`, and all after
 * it, left out; MariaDB logs each row event's statement, binlog_annotate_row_events), or
 * --stop-position N. The binlog files come from the shipped copies (HMS_BINLOG_DIR, `hms backup
 * binlogs`) or, when there are none, from the server itself.
 *
 * Every file is checked against the manifest's SHA-256 before anything is written; an encrypted
 * file also fails if its GCM tag does not match (a wrong key or an altered file).
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { Config } from '../config.js';
import { createDb } from '../db/knex.js';
import { decryptFile, parseBackupKeys } from './crypt.js';
import { fileSha256, findBackup, SQLITE_FILE, type BackupFile, type BackupManifest } from './backup.js';
import { clientProgram, mysqlTarget, runClient, withDatabase, type MysqlTarget } from './mysql-tools.js';

export interface RestoreOptions {
  /** A backup directory or id (default: the newest under HMS_BACKUP_DIR). */
  from?: string;
  /** MariaDB: the database to restore into (created; must be empty). */
  database?: string;
  /** SQLite: the directory to write hms.sqlite into. */
  dataDir?: string;
  /** Where to put the audit archive files of the backup. */
  archiveDir?: string;
  /** Point in time (UTC): replay the binlog up to, not including, this second. */
  to?: string;
  /** Replay up to the transaction whose logged statement matches this (left out with all after it). */
  stopBefore?: string;
  /** Replay up to this position of the last binlog file. */
  stopPosition?: number;
  /** Replay the whole binlog from the backup on (to the last committed transaction). */
  replay?: boolean;
  /** The binlog files (default HMS_BINLOG_DIR, else read from the server). */
  binlogs?: string;
  /** Allow restoring over the live database, or into a non-empty one. */
  force?: boolean;
}

export interface RestoreResult {
  backup: BackupManifest;
  /** The database or SQLite file restored into. */
  target: string;
  /** The binlog replay, when one ran. */
  replay?: { files: string[]; from: { file: string; position: number }; stop: string };
}

/** The plaintext of one file of a backup (checked against its SHA-256 first). */
async function openBackupFile(config: Config, manifest: BackupManifest, path: string, file: BackupFile, gunzip: boolean): Promise<Readable> {
  const sha = await fileSha256(path);
  if (sha !== file.sha256) throw new Error(`${path}: SHA-256 ${sha} is not the manifest's ${file.sha256}: the file is damaged or was altered`);
  const raw = manifest.encryption ? await decryptFile(path, parseBackupKeys(config.HMS_BACKUP_KEYS), manifest.encryption.keyId) : createReadStream(path);
  return gunzip ? raw.pipe(createGunzip()) : raw;
}

async function restoreArchives(config: Config, backup: { dir: string; manifest: BackupManifest }, to: string): Promise<void> {
  if (backup.manifest.archives.length === 0) return;
  await mkdir(to, { recursive: true });
  for (const f of backup.manifest.archives) {
    const name = f.name.replace(/\.enc$/, '');
    await pipeline(await openBackupFile(config, backup.manifest, join(backup.dir, 'audit-archive', f.name), f, false), createWriteStream(join(to, name)));
  }
}

async function restoreSqlite(config: Config, backup: { dir: string; manifest: BackupManifest }, opts: RestoreOptions): Promise<string> {
  if (!opts.dataDir) throw new Error('restoring an SQLite backup needs --data-dir DIR (where hms.sqlite is written)');
  if (opts.replay || opts.to || opts.stopBefore || opts.stopPosition !== undefined) throw new Error('point-in-time recovery needs MariaDB\'s binlog: an SQLite backup restores as taken');
  const dir = resolve(opts.dataDir);
  const target = join(dir, SQLITE_FILE);
  if (dir === resolve(config.HMS_DATA_DIR) && !opts.force) throw new Error(`${target} is the live database: restore elsewhere, or stop the server and pass --force`);
  if (existsSync(target) && !opts.force) throw new Error(`${target} exists: pass --force to replace it`);
  await mkdir(dir, { recursive: true });
  const partial = `${target}.partial`;
  await pipeline(await openBackupFile(config, backup.manifest, join(backup.dir, backup.manifest.file.name), backup.manifest.file, true), createWriteStream(partial, { mode: 0o600 }));
  for (const suffix of ['-wal', '-shm']) await rm(`${target}${suffix}`, { force: true });
  await rename(partial, target);
  return target;
}

/** Creates the target database; refuses the live one and a non-empty one unless forced. */
async function prepareMysqlTarget(config: Config, database: string, force: boolean): Promise<void> {
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) throw new Error(`--database ${database}: letters, digits and _ only`);
  const live = mysqlTarget(config.DATABASE_URL!).database;
  if (database === live && !force) throw new Error(`${database} is the live database: restore into another one and switch over, or pass --force`);
  const db = createDb({ ...config, HMS_DB_POOL_MAX: 1 });
  try {
    const tables = (await db.raw('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?', [database])) as [{ n: number }[]];
    if (Number(tables[0][0]!.n) > 0 && !force) throw new Error(`database ${database} is not empty: pick a new name, or pass --force`);
    await db.raw(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await db.destroy();
  }
}

const NO_BINLOG = 'this backup has no binlog position (the server wrote no binlog when it was taken): it restores as taken, without --to; docs/backup.md says how to turn the binlog on';

const BINLOG_FILE = /\.\d{6}$/;

/**
 * A restore writes nothing to the server's binlog (it needs BINLOG ADMIN, as root has): its
 * replayed transactions would come back into a later replay of the same binlog, and the restored
 * copy is not the live database. Take a new backup after switching over to a restored database.
 */
const NOT_LOGGED = '--init-command=SET sql_log_bin = 0';

/** The binlog files from the backup's onwards: shipped copies, or read from the server into a temp dir. */
async function binlogFiles(config: Config, target: MysqlTarget, first: string, dir: string | undefined): Promise<{ dir: string; files: string[]; temp: boolean }> {
  const shipped = dir ?? config.HMS_BINLOG_DIR!;
  if (existsSync(shipped)) {
    const files = (await readdir(shipped)).filter((f) => BINLOG_FILE.test(f) && f >= first).sort();
    if (files[0] === first) return { dir: shipped, files, temp: false };
    if (dir) throw new Error(`${dir} does not hold the backup's binlog file ${first}`);
  }
  const temp = await mkdtemp(join(tmpdir(), 'hms-binlogs-'));
  await runClient(clientProgram(['mariadb-binlog', 'mysqlbinlog']), target, ['--read-from-remote-server', '--raw', '--to-last-log', `--result-file=${temp}/`, first]).done;
  return { dir: temp, files: (await readdir(temp)).filter((f) => BINLOG_FILE.test(f)).sort(), temp: true };
}

/**
 * Where to stop for --stop-before: the start (the GTID event) of the first transaction from the
 * backup's position on whose logged statement (#Q>) matches.
 */
async function findStop(target: MysqlTarget, dir: string, files: string[], start: number, pattern: RegExp): Promise<{ index: number; position: number } | undefined> {
  const program = clientProgram(['mariadb-binlog', 'mysqlbinlog']);
  for (let i = 0; i < files.length; i++) {
    const run = runClient(program, target, ['--skip-gtid-strict-mode', ...(i === 0 ? [`--start-position=${start}`] : []), join(dir, files[i]!)]);
    let found: number | undefined;
    let at = 0;
    let transaction = 0;
    let rest = '';
    run.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (found !== undefined) return;
      const lines = (rest + d).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const pos = /^# at (\d+)$/.exec(line);
        if (pos) { at = Number(pos[1]); continue; }
        if (/\bGTID \d+-\d+-\d+/.test(line) && line.startsWith('#')) transaction = at;
        else if (line.startsWith('#Q> ') && pattern.test(line.slice(4))) { found = transaction; run.child.kill(); return; }
      }
    });
    await run.done.catch((err: unknown) => { if (found === undefined) throw err; });
    if (found !== undefined) return { index: i, position: found };
  }
  return undefined;
}

async function replayBinlog(config: Config, manifest: BackupManifest, database: string, opts: RestoreOptions): Promise<RestoreResult['replay']> {
  if (!manifest.binlog) throw new Error(NO_BINLOG);
  const target = mysqlTarget(config.DATABASE_URL!);
  const source = manifest.database!;
  const logs = await binlogFiles(config, target, manifest.binlog.file, opts.binlogs);
  try {
    let files = logs.files;
    const stopArgs: string[] = [];
    let stop = 'end of the binlog';
    if (opts.stopBefore) {
      const at = await findStop(target, logs.dir, files, manifest.binlog.position, new RegExp(opts.stopBefore, 'i'));
      if (!at) throw new Error(`no transaction after the backup matches --stop-before ${opts.stopBefore}`);
      files = files.slice(0, at.index + 1);
      stopArgs.push(`--stop-position=${at.position}`);
      stop = `before the transaction at ${files[at.index]}:${at.position}`;
    } else if (opts.stopPosition !== undefined) {
      stopArgs.push(`--stop-position=${opts.stopPosition}`);
      stop = `position ${opts.stopPosition} of ${files.at(-1)}`;
    }
    if (opts.to) {
      if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(opts.to)) throw new Error('--to needs "YYYY-MM-DD HH:MM:SS" (UTC)');
      stopArgs.push(`--stop-datetime=${opts.to}`);
      stop = opts.stopBefore || opts.stopPosition !== undefined ? `${stop}, and before ${opts.to} UTC` : `before ${opts.to} UTC`;
    }
    const binlog = runClient(clientProgram(['mariadb-binlog', 'mysqlbinlog']), target, [
      // a binlog that holds an earlier restore's replayed transactions has their GTIDs out of order
      '--skip-gtid-strict-mode', `--start-position=${manifest.binlog.position}`, ...stopArgs, `--database=${source}`, `--rewrite-db=${source}->${database}`,
      ...files.map((f) => join(logs.dir, f)),
    ]);
    const apply = runClient(clientProgram(['mariadb', 'mysql']), target, ['--default-character-set=utf8mb4', '--binary-mode', NOT_LOGGED, database], { stdin: 'pipe', stdout: 'ignore' });
    binlog.child.stdout!.pipe(apply.child.stdin!);
    await Promise.all([binlog.done, apply.done]);
    return { files, from: manifest.binlog, stop };
  } finally {
    if (logs.temp) await rm(logs.dir, { recursive: true, force: true });
  }
}

export async function restoreBackup(config: Config, opts: RestoreOptions): Promise<RestoreResult> {
  const backup = await findBackup(config, opts.from);
  const { manifest } = backup;
  if (manifest.engine === 'sqlite') {
    if (config.DATABASE_URL) throw new Error('this is an SQLite backup: restore it without DATABASE_URL (--data-dir DIR)');
    const target = await restoreSqlite(config, backup, opts);
    await restoreArchives(config, backup, opts.archiveDir ?? join(resolve(opts.dataDir!), 'audit-archive'));
    return { backup: manifest, target };
  }
  if (!config.DATABASE_URL) throw new Error('this is a MariaDB backup: set DATABASE_URL to the server to restore into (--database NAME)');
  if (!opts.database) throw new Error('restoring a MariaDB backup needs --database NAME (a new database on the DATABASE_URL server)');
  const pointInTime = opts.replay || opts.to || opts.stopBefore || opts.stopPosition !== undefined;
  if (pointInTime && !manifest.binlog) throw new Error(NO_BINLOG);
  await prepareMysqlTarget(config, opts.database, opts.force ?? false);
  const dump = await openBackupFile(config, manifest, join(backup.dir, manifest.file.name), manifest.file, true);
  const load = runClient(clientProgram(['mariadb', 'mysql']), mysqlTarget(withDatabase(config.DATABASE_URL, opts.database)), ['--default-character-set=utf8mb4', NOT_LOGGED, opts.database], { stdin: 'pipe', stdout: 'ignore' });
  await Promise.all([pipeline(dump, load.child.stdin!), load.done]);
  const replay = pointInTime ? await replayBinlog(config, manifest, opts.database, opts) : undefined;
  if (opts.archiveDir) await restoreArchives(config, backup, opts.archiveDir);
  return { backup: manifest, target: opts.database, ...(replay ? { replay } : {}) };
}
