/**
 * `hms restore`: a backup into a database of its own (never over the live one unless --force),
 * then, on MariaDB, the binlog replayed from the backup's position to a point in time:
 * --to "YYYY-MM-DD HH:MM:SS" (UTC: the last event before that second), --stop-before REGEX (the
 * transaction whose statement matches, e.g. an accidental `DELETE FROM patients`, and all after
 * it, left out; MariaDB logs each row event's statement, binlog_annotate_row_events), or
 * --stop-position FILE:POS, or --replay (to the end). The binlog files come from the shipped
 * copies (HMS_BINLOG_DIR, `hms backup binlogs`) or, when there are none, from the server itself;
 * only the backup's server's files, with no gap.
 *
 * Every file is checked against the manifest's SHA-256, and an encrypted one decrypted and its
 * GCM tag checked, before any byte of it reaches a database; the manifest's signature is checked
 * first (backup.ts checkManifest).
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Config } from '../config.js';
import { createDb } from '../db/knex.js';
import { decryptFile, parseBackupKeys } from './crypt.js';
import { ARCHIVE_FILE, checkManifest, fileSha256, findBackup, SQLITE_FILE, type BackupFile, type BackupManifest } from './backup.js';
import { binlogNumber, sameServer, serverIdentity, sortBinlogs } from './binlog-files.js';
import { shippedServer } from './binlogs.js';
import { allOrKill, clientProgram, mysqlTarget, runClient, withDatabase, type MysqlTarget } from './mysql-tools.js';

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
  /** Replay up to this position of this binlog file (FILE:POS, as SHOW BINLOG EVENTS names them). */
  stopPosition?: { file: string; position: number };
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

/**
 * One file of a backup, checked: its SHA-256 against the manifest's, then (encrypted) decrypted
 * whole into a temporary file (0600) whose GCM tag is verified before anything reads it, so no
 * byte of an altered file reaches a database. The gzip'ed plaintext's path, and its cleanup.
 */
async function checkedFile(config: Config, manifest: BackupManifest, path: string, file: BackupFile): Promise<{ path: string; cleanup(): Promise<void> }> {
  const sha = await fileSha256(path);
  if (sha !== file.sha256) throw new Error(`${path}: SHA-256 ${sha} is not the manifest's ${file.sha256}: the file is damaged or was altered`);
  if (!manifest.encryption) return { path, cleanup: async () => undefined };
  const dir = await mkdtemp(join(tmpdir(), 'hms-restore-'));
  const plain = join(dir, basename(path).replace(/\.enc$/, ''));
  try {
    await pipeline(await decryptFile(path, parseBackupKeys(config.HMS_BACKUP_KEYS), manifest.encryption.keyId), createWriteStream(plain, { mode: 0o600 }));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${path} does not decrypt: ${(err as Error).message} (an altered file or the wrong key)`);
  }
  return { path: plain, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

async function restoreArchives(config: Config, backup: { dir: string; manifest: BackupManifest }, to: string): Promise<void> {
  if (backup.manifest.archives.length === 0) return;
  await mkdir(to, { recursive: true, mode: 0o700 });
  for (const f of backup.manifest.archives) {
    const name = f.name.replace(/\.enc$/, '');
    // the manifest names files of its own directory only
    if (!ARCHIVE_FILE.test(name) || basename(f.name) !== f.name) throw new Error(`the manifest names an archive file ${JSON.stringify(f.name)} that is not one`);
    const file = await checkedFile(config, backup.manifest, join(backup.dir, 'audit-archive', f.name), f);
    try {
      await pipeline(createReadStream(file.path), createWriteStream(join(to, name), { mode: 0o600 }));
    } finally {
      await file.cleanup();
    }
  }
}

async function restoreSqlite(config: Config, backup: { dir: string; manifest: BackupManifest }, opts: RestoreOptions): Promise<string> {
  if (!opts.dataDir) throw new Error('restoring an SQLite backup needs --data-dir DIR (where hms.sqlite is written)');
  if (opts.replay || opts.to || opts.stopBefore || opts.stopPosition) throw new Error('point-in-time recovery needs MariaDB\'s binlog: an SQLite backup restores as taken');
  const dir = resolve(opts.dataDir);
  const target = join(dir, SQLITE_FILE);
  if (dir === resolve(config.HMS_DATA_DIR) && !opts.force) throw new Error(`${target} is the live database: restore elsewhere, or stop the server and pass --force`);
  if (existsSync(target) && !opts.force) throw new Error(`${target} exists: pass --force to replace it`);
  await mkdir(dir, { recursive: true });
  const partial = `${target}.partial`;
  const file = await checkedFile(config, backup.manifest, join(backup.dir, backup.manifest.file.name), backup.manifest.file);
  try {
    await pipeline(createReadStream(file.path), createGunzip(), createWriteStream(partial, { mode: 0o600 }));
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  } finally {
    await file.cleanup();
  }
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

/**
 * A restore writes nothing to the server's binlog (it needs BINLOG ADMIN, as root has): its
 * replayed transactions would come back into a later replay of the same binlog, and the restored
 * copy is not the live database. Take a new backup after switching over to a restored database.
 */
const NOT_LOGGED = '--init-command=SET sql_log_bin = 0';

/** MariaDB's: MySQL's mysqlbinlog renames the database before --database filters, which would replay nothing. */
const BINLOG = 'mariadb-binlog';
/** The loader never runs a client command (\\! shell, source) that a tampered dump could carry. */
const SANDBOX = '--sandbox';

const NO_BINLOG = 'this backup has no binlog position (the server wrote no binlog when it was taken): it restores as taken, without --to; docs/backup.md says how to turn the binlog on';

/**
 * The binlog files from the backup's onwards, every number in between present: shipped copies
 * (HMS_BINLOG_DIR or --binlogs), or read from the server into a temporary directory.
 */
async function binlogFiles(config: Config, manifest: BackupManifest, target: MysqlTarget, first: string, dir: string | undefined): Promise<{ dir: string; files: string[]; temp: boolean }> {
  const server = manifest.server;
  const pick = (names: string[]) => sortBinlogs(names.filter((f) => binlogNumber(f)?.base === binlogNumber(first)!.base && binlogNumber(f)!.n >= binlogNumber(first)!.n));
  const shipped = dir ?? config.HMS_BINLOG_DIR!;
  let found: { dir: string; files: string[]; temp: boolean } | undefined;
  if (existsSync(shipped)) {
    const holder = await shippedServer(shipped);
    if (server && holder && !sameServer(server, holder)) throw new Error(`${shipped} holds another server's binlog (server_id ${holder.serverId} on ${holder.hostname}:${holder.port}) than the backup's (server_id ${server.serverId} on ${server.hostname}:${server.port})`);
    const files = pick(await readdir(shipped));
    if (files[0] === first) found = { dir: shipped, files, temp: false };
    else if (dir) throw new Error(`${dir} does not hold the backup's binlog file ${first}`);
  }
  if (!found) {
    // from the server itself: only if it is the one the backup's position belongs to
    if (server) {
      const db = createDb({ ...config, HMS_DB_POOL_MAX: 1 });
      const now = await serverIdentity(db).finally(() => db.destroy());
      if (!sameServer(server, now)) throw new Error(`the backup's binlog position is server_id ${server.serverId}'s on ${server.hostname}:${server.port}, and DATABASE_URL reaches server_id ${now.serverId} on ${now.hostname}:${now.port}: give --binlogs with that server's shipped files`);
    }
    const temp = await mkdtemp(join(tmpdir(), 'hms-binlogs-'));
    try {
      await runClient(BINLOG, target, ['--read-from-remote-server', '--raw', '--to-last-log', `--result-file=${temp}/`, first]).done;
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
    found = { dir: temp, files: pick(await readdir(temp)), temp: true };
  }
  // a missing file in the middle would skip its transactions without a word
  for (let i = 1; i < found.files.length; i++) {
    if (binlogNumber(found.files[i]!)!.n !== binlogNumber(found.files[i - 1]!)!.n + 1) {
      if (found.temp) await rm(found.dir, { recursive: true, force: true });
      throw new Error(`binlog file ${found.files[i - 1]} is followed by ${found.files[i]}: the files between are missing from ${found.dir}`);
    }
  }
  return found;
}

/**
 * Where to stop for --stop-before: the start (the GTID event) of the first transaction from the
 * backup's position on whose logged statement (#Q>) matches.
 */
async function findStop(target: MysqlTarget, dir: string, files: string[], start: number, database: string, pattern: RegExp): Promise<{ index: number; position: number } | undefined> {
  for (let i = 0; i < files.length; i++) {
    // only the source database's statements: a DELETE in another database is not the one
    const run = runClient(BINLOG, target, ['--skip-gtid-strict-mode', `--database=${database}`, ...(i === 0 ? [`--start-position=${start}`] : []), join(dir, files[i]!)]);
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
        else if (line.startsWith('#Q> ') && pattern.test(line.slice(4))) { found = transaction; run.kill(); return; }
      }
    });
    await run.done.catch((err: unknown) => { if (found === undefined) throw err; });
    if (found !== undefined) return { index: i, position: found };
  }
  return undefined;
}

/** The replay's arguments checked before anything is restored. */
function stopOptions(opts: RestoreOptions): { pattern?: RegExp } {
  if (opts.to && !/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(opts.to)) throw new Error('--to needs "YYYY-MM-DD HH:MM:SS" (UTC)');
  if ([opts.stopBefore, opts.stopPosition].filter((v) => v !== undefined).length > 1) throw new Error('give --stop-before or --stop-position, not both');
  if (!opts.stopBefore) return {};
  try {
    return { pattern: new RegExp(opts.stopBefore, 'i') };
  } catch (err) {
    throw new Error(`--stop-before: ${(err as Error).message}`);
  }
}

async function replayBinlog(config: Config, manifest: BackupManifest, database: string, opts: RestoreOptions, pattern: RegExp | undefined): Promise<RestoreResult['replay']> {
  if (!manifest.binlog) throw new Error(NO_BINLOG);
  const target = mysqlTarget(config.DATABASE_URL!);
  const source = manifest.database!;
  const logs = await binlogFiles(config, manifest, target, manifest.binlog.file, opts.binlogs);
  try {
    let files = logs.files;
    const stopArgs: string[] = [];
    let stop = 'end of the binlog';
    if (pattern) {
      const at = await findStop(target, logs.dir, files, manifest.binlog.position, source, pattern);
      if (!at) throw new Error(`no transaction of ${source} after the backup matches --stop-before ${opts.stopBefore}`);
      files = files.slice(0, at.index + 1);
      stopArgs.push(`--stop-position=${at.position}`);
      stop = `before the transaction at ${files[at.index]}:${at.position}`;
    } else if (opts.stopPosition) {
      // mariadb-binlog applies --stop-position to the last file it is given: cut the list there
      const index = files.indexOf(opts.stopPosition.file);
      if (index === -1) throw new Error(`--stop-position: ${opts.stopPosition.file} is not among the binlog files from the backup's on (${files[0]} ... ${files.at(-1)})`);
      files = files.slice(0, index + 1);
      stopArgs.push(`--stop-position=${opts.stopPosition.position}`);
      stop = `position ${opts.stopPosition.position} of ${opts.stopPosition.file}`;
    }
    if (opts.to) {
      stopArgs.push(`--stop-datetime=${opts.to}`);
      stop = pattern || opts.stopPosition ? `${stop}, and before ${opts.to} UTC` : `before ${opts.to} UTC`;
    }
    const binlog = runClient(BINLOG, target, [
      // a binlog that holds an earlier restore's replayed transactions has their GTIDs out of order
      '--skip-gtid-strict-mode', `--start-position=${manifest.binlog.position}`, ...stopArgs, `--database=${source}`, `--rewrite-db=${source}->${database}`,
      ...files.map((f) => join(logs.dir, f)),
    ]);
    const apply = runClient(clientProgram(['mariadb', 'mysql']), target, ['--default-character-set=utf8mb4', '--binary-mode', SANDBOX, NOT_LOGGED, database], { stdin: 'pipe', stdout: 'ignore' });
    await allOrKill([binlog, apply], [pipeline(binlog.child.stdout!, apply.child.stdin!)]);
    return { files, from: manifest.binlog, stop };
  } finally {
    if (logs.temp) await rm(logs.dir, { recursive: true, force: true });
  }
}

export async function restoreBackup(config: Config, opts: RestoreOptions): Promise<RestoreResult> {
  const backup = await findBackup(config, opts.from);
  const { manifest } = backup;
  checkManifest(config, manifest, opts.force ?? false);
  const { pattern } = stopOptions(opts);
  if (manifest.engine === 'sqlite') {
    if (config.DATABASE_URL) throw new Error('this is an SQLite backup: restore it without DATABASE_URL (--data-dir DIR)');
    const target = await restoreSqlite(config, backup, opts);
    await restoreArchives(config, backup, opts.archiveDir ?? join(resolve(opts.dataDir!), 'audit-archive'));
    return { backup: manifest, target };
  }
  if (!config.DATABASE_URL) throw new Error('this is a MariaDB backup: set DATABASE_URL to the server to restore into (--database NAME)');
  if (!opts.database) throw new Error('restoring a MariaDB backup needs --database NAME (a new database on the DATABASE_URL server)');
  const pointInTime = opts.replay || opts.to || opts.stopBefore || opts.stopPosition;
  if (pointInTime && !manifest.binlog) throw new Error(NO_BINLOG);
  await prepareMysqlTarget(config, opts.database, opts.force ?? false);
  const file = await checkedFile(config, manifest, join(backup.dir, manifest.file.name), manifest.file);
  try {
    const load = runClient(clientProgram(['mariadb', 'mysql']), mysqlTarget(withDatabase(config.DATABASE_URL, opts.database)), ['--default-character-set=utf8mb4', SANDBOX, NOT_LOGGED, opts.database], { stdin: 'pipe', stdout: 'ignore' });
    await allOrKill([load], [pipeline(createReadStream(file.path), createGunzip(), load.child.stdin!)]);
  } finally {
    await file.cleanup();
  }
  const replay = pointInTime ? await replayBinlog(config, manifest, opts.database, opts, pattern) : undefined;
  if (opts.archiveDir) await restoreArchives(config, backup, opts.archiveDir);
  return { backup: manifest, target: opts.database, ...(replay ? { replay } : {}) };
}
