/**
 * `hms backup`: a consistent full backup of the database into a directory of its own under
 * HMS_BACKUP_DIR, with the audit archive files, compressed (gzip), checksummed (SHA-256) and,
 * with HMS_BACKUP_KEYS, encrypted (src/backup/crypt.ts); then the offsite copy and retention.
 *
 * - SQLite (the embedded default): SQLite's online backup API (better-sqlite3's backup()), which
 *   copies a consistent snapshot while the server keeps writing.
 * - MariaDB / MySQL: `mariadb-dump --single-transaction` (a consistent InnoDB snapshot without
 *   locking writers) with, when the server writes a binlog, `--master-data=2`: the binlog position
 *   of that snapshot, from which `hms restore --to` replays to a point in time. Row counts per
 *   table are counted off the dump as it streams (src/backup/dump-rows.ts), so they are the
 *   snapshot's, whatever was written meanwhile.
 *
 * A backup directory: manifest.json (written last: a directory without one is incomplete; signed
 * with an HMAC under the backup key when encrypted, with the binlog's server named), the database
 * file, audit-archive/ (copies of HMS_AUDIT_ARCHIVE_DIR's files).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { cp, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Config } from '../config.js';
import { createDb } from '../db/knex.js';
import { packageVersion } from '../version.js';
import { encryptStream, parseBackupKeys, type BackupKey } from './crypt.js';
import { DumpRowCounter } from './dump-rows.js';
import { clientProgram, mysqlTarget, runClient } from './mysql-tools.js';
import { binlogNumber, serverIdentity, type ServerIdentity } from './binlog-files.js';

export interface BackupFile { name: string; bytes: number; sha256: string }

export interface BackupManifest {
  format: 1;
  id: string;
  engine: 'sqlite' | 'mysql';
  tool: 'sqlite-online-backup' | 'mariadb-dump';
  /** The database backed up (MySQL). */
  database?: string;
  startedAt: string;
  finishedAt: string;
  /** The database file of the backup (gzip, then encrypted when encryption is set). */
  file: BackupFile;
  encryption: { algorithm: 'aes-256-gcm'; keyId: string } | null;
  /** Where in the binlog the snapshot stands (MySQL with log_bin on): the start of a point-in-time replay. */
  binlog: { file: string; position: number } | null;
  /** The server whose binlog that is (file names and positions are one server's own). */
  server?: ServerIdentity;
  /** Rows per table in the snapshot. */
  rows: Record<string, number>;
  /** The last migration the snapshot has. */
  migration: string | null;
  /** Copies of the audit archive files. */
  archives: BackupFile[];
  hmsVersion: string;
  /** With encryption: HMAC-SHA-256 of the rest of the manifest under the backup key, so it cannot be swapped. */
  signature?: string;
}


export const SQLITE_FILE = 'hms.sqlite';
export const ARCHIVE_FILE = /^security-log-\d+-\d+\.ndjson\.gz$/;

/** A backup's directory name: its start time, sortable (2026-12-04T18-20-05.123Z). */
function backupId(at: Date): string {
  return at.toISOString().replace(/:/g, '-');
}

/** Passes bytes through, hashing and counting them. */
class Hasher extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, done: (e?: Error | null, d?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/** Writes a stream to path (gzip'ed unless already, encrypted with key), fsynced; its name, size and SHA-256. */
async function store(source: Readable, path: string, key: BackupKey | undefined, stages: Transform[] = [], gzip = true): Promise<BackupFile> {
  const hasher = new Hasher();
  const out = createWriteStream(path, { mode: 0o600 });
  const chain: (Readable | Transform)[] = [source, ...stages];
  if (gzip) chain.push(createGzip({ level: 6 }));
  if (key) chain.push(encryptStream(key));
  chain.push(hasher);
  await (pipeline as (...streams: NodeJS.ReadWriteStream[]) => Promise<void>)(...([...chain, out] as unknown as NodeJS.ReadWriteStream[]));
  const fh = await open(path, 'r+');
  await fh.sync();
  await fh.close();
  return { name: path.split('/').pop()!, bytes: hasher.bytes, sha256: hasher.hash.digest('hex') };
}

/** The SHA-256 of a file. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const manifestMac = (key: BackupKey, m: BackupManifest): string => {
  const { signature: _, ...rest } = m;
  return createHmac('sha256', createHash('sha256').update('hms backup manifest').update(key.key).digest()).update(JSON.stringify(rest)).digest('hex');
};

/**
 * Refuses a manifest that does not hold: with HMS_BACKUP_KEYS set, an unencrypted backup (unless
 * forced: one taken before encryption was turned on) or one whose signature does not match (it
 * was edited, e.g. to point at another file or to drop the encryption).
 */
export function checkManifest(config: Config, m: BackupManifest, force: boolean): void {
  const keys = parseBackupKeys(config.HMS_BACKUP_KEYS);
  if (keys.length === 0) return;
  if (!m.encryption) {
    if (force) return;
    throw new Error(`backup ${m.id} is not encrypted although HMS_BACKUP_KEYS is set: pass --force if it was taken before encryption was turned on`);
  }
  const key = keys.find((k) => k.id === m.encryption!.keyId);
  if (!key) throw new Error(`backup ${m.id} was encrypted with key ${m.encryption.keyId}, which HMS_BACKUP_KEYS does not hold`);
  const expected = Buffer.from(manifestMac(key, m), 'hex');
  const given = Buffer.from(m.signature ?? '', 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Error(`backup ${m.id}: the manifest's signature does not match: it was altered`);
}

interface SqliteHandle { backup(destination: string): Promise<unknown> }

async function sqliteBackup(config: Config, dir: string, key: BackupKey | undefined): Promise<Pick<BackupManifest, 'file' | 'rows' | 'migration' | 'binlog' | 'database' | 'server'>> {
  const live = join(config.HMS_DATA_DIR, SQLITE_FILE);
  if (!existsSync(live)) throw new Error(`no database at ${live}`);
  const snapshotDir = join(dir, 'snapshot');
  await mkdir(snapshotDir);
  const source = createDb({ ...config, DATABASE_URL: undefined });
  try {
    // SQLite's online backup API, on this process's own connection to the live file
    const conn = (await source.client.acquireConnection()) as SqliteHandle;
    try {
      await conn.backup(join(snapshotDir, SQLITE_FILE));
    } finally {
      await source.client.releaseConnection(conn);
    }
  } finally {
    await source.destroy();
  }
  const copy = createDb({ ...config, DATABASE_URL: undefined, HMS_DATA_DIR: snapshotDir });
  const rows: Record<string, number> = {};
  let migration: string | null = null;
  try {
    const tables = (await copy.raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")) as { name: string }[];
    for (const { name } of tables) rows[name] = Number(((await copy(name).count({ n: '*' }).first()) as { n: number }).n);
    if (rows.knex_migrations !== undefined) migration = ((await copy('knex_migrations').orderBy('id', 'desc').first('name')) as { name?: string } | undefined)?.name ?? null;
  } finally {
    await copy.destroy();
  }
  const file = await store(createReadStream(join(snapshotDir, SQLITE_FILE)), join(dir, `${SQLITE_FILE}.gz${key ? '.enc' : ''}`), key);
  await rm(snapshotDir, { recursive: true });
  return { file, rows, migration, binlog: null };
}

async function mysqlBackup(config: Config, dir: string, key: BackupKey | undefined): Promise<Pick<BackupManifest, 'file' | 'rows' | 'migration' | 'binlog' | 'database' | 'server'>> {
  const target = mysqlTarget(config.DATABASE_URL!);
  const db = createDb({ ...config, HMS_DB_POOL_MAX: 1 });
  let logBin: boolean;
  let migration: string | null;
  let server: ServerIdentity;
  try {
    logBin = Number(((await db.raw('SELECT @@log_bin AS b')) as [{ b: number }[]])[0][0]!.b) === 1;
    server = await serverIdentity(db);
    migration = ((await db('knex_migrations').orderBy('id', 'desc').first('name')) as { name?: string } | undefined)?.name ?? null;
  } finally {
    await db.destroy();
  }
  const args = ['--single-transaction', '--quick', '--routines', '--triggers', '--hex-blob', '--no-tablespaces', '--default-character-set=utf8mb4', ...(logBin ? ['--master-data=2'] : []), target.database];
  const dump = runClient(clientProgram(['mariadb-dump', 'mysqldump']), target, args);
  const counter = new DumpRowCounter();
  const stored = store(dump.child.stdout!, join(dir, `database.sql.gz${key ? '.enc' : ''}`), key, [counter]);
  const [file] = await Promise.all([stored, dump.done]).catch((err: unknown) => { dump.kill(); throw err; });
  if (logBin && !counter.binlog) throw new Error('mariadb-dump wrote no binlog position although the server writes a binlog');
  return { file, rows: Object.fromEntries([...counter.counts].sort()), migration, binlog: counter.binlog ?? null, database: target.database, ...(logBin ? { server } : {}) };
}

async function copyArchives(config: Config, dir: string, key: BackupKey | undefined): Promise<BackupFile[]> {
  const from = config.HMS_AUDIT_ARCHIVE_DIR!;
  if (!existsSync(from)) return [];
  const names = (await readdir(from)).filter((n) => ARCHIVE_FILE.test(n)).sort();
  if (names.length === 0) return [];
  await mkdir(join(dir, 'audit-archive'));
  const out: BackupFile[] = [];
  for (const n of names) out.push(await store(createReadStream(join(from, n)), join(dir, 'audit-archive', `${n}${key ? '.enc' : ''}`), key, [], false));
  return out;
}

export interface BackupResult { dir: string; manifest: BackupManifest; removed: string[]; offsite?: string }

/** Takes a backup; then copies it offsite and applies retention. */
export async function takeBackup(config: Config, opts: { now?: () => Date } = {}): Promise<BackupResult> {
  const now = opts.now ?? (() => new Date());
  const key = parseBackupKeys(config.HMS_BACKUP_KEYS)[0];
  const started = now();
  const id = backupId(started);
  const root = config.HMS_BACKUP_DIR!;
  await mkdir(root, { recursive: true, mode: 0o700 });
  const partial = join(root, `.${id}.partial`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { mode: 0o700 });
  try {
    const part = config.DATABASE_URL ? await mysqlBackup(config, partial, key) : await sqliteBackup(config, partial, key);
    const archives = await copyArchives(config, partial, key);
    const manifest: BackupManifest = {
      format: 1, id, engine: config.DATABASE_URL ? 'mysql' : 'sqlite', tool: config.DATABASE_URL ? 'mariadb-dump' : 'sqlite-online-backup',
      ...(part.database ? { database: part.database } : {}),
      startedAt: started.toISOString(), finishedAt: now().toISOString(), file: part.file,
      encryption: key ? { algorithm: 'aes-256-gcm', keyId: key.id } : null,
      binlog: part.binlog, ...(part.server ? { server: part.server } : {}), rows: part.rows, migration: part.migration, archives, hmsVersion: packageVersion,
    };
    if (key) manifest.signature = manifestMac(key, manifest);
    await writeFile(join(partial, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    const dir = join(root, id);
    await rename(partial, dir);
    const offsite = await copyOffsite(config, dir);
    const removed = await applyRetention(config, now());
    return { dir, manifest, removed, offsite };
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}

/** A backup directory's manifest, or undefined when it has none (incomplete, or not a backup). */
async function readManifest(dir: string): Promise<BackupManifest | undefined> {
  const path = join(dir, 'manifest.json');
  return existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as BackupManifest) : undefined;
}

/** The complete backups of a directory, oldest first. */
export async function listBackups(root: string): Promise<{ dir: string; manifest: BackupManifest }[]> {
  if (!existsSync(root)) return [];
  const out: { dir: string; manifest: BackupManifest }[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (name.startsWith('.')) continue;
    const manifest = await readManifest(join(root, name));
    if (manifest) out.push({ dir: join(root, name), manifest });
  }
  return out;
}

/** A backup named by its directory or its id under HMS_BACKUP_DIR, or the newest one. */
export async function findBackup(config: Config, from?: string): Promise<{ dir: string; manifest: BackupManifest }> {
  const named = from ? await readManifest(from) : undefined;
  if (named) return { dir: from!, manifest: named };
  const all = await listBackups(config.HMS_BACKUP_DIR!);
  const found = from ? all.find((b) => b.manifest.id === from) : all.at(-1);
  if (!found) throw new Error(from ? `no backup ${from} (neither a backup directory nor an id under ${config.HMS_BACKUP_DIR})` : `no backup under ${config.HMS_BACKUP_DIR}`);
  return found;
}

/** HMS_BACKUP_OFFSITE_DIR: a copy of the backup's directory there; HMS_BACKUP_OFFSITE_COMMAND: run with the directory as $1. */
async function copyOffsite(config: Config, dir: string): Promise<string | undefined> {
  const name = dir.split('/').pop()!;
  if (config.HMS_BACKUP_OFFSITE_DIR) {
    await mkdir(config.HMS_BACKUP_OFFSITE_DIR, { recursive: true });
    const to = join(config.HMS_BACKUP_OFFSITE_DIR, name);
    await cp(dir, `${to}.partial`, { recursive: true });
    await rename(`${to}.partial`, to);
    return to;
  }
  if (config.HMS_BACKUP_OFFSITE_COMMAND) {
    await new Promise<void>((resolve, reject) => {
      // the command gets the environment without HMS's own secrets (its cloud credentials stay)
      const env = { ...process.env };
      for (const k of ['HMS_BACKUP_KEYS', 'DATABASE_URL', 'REDIS_URL']) delete env[k];
      const child = spawn('sh', ['-c', config.HMS_BACKUP_OFFSITE_COMMAND!, 'hms-offsite', dir], { stdio: ['ignore', 'inherit', 'pipe'], env });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`HMS_BACKUP_OFFSITE_COMMAND exited ${code}: ${stderr.trim().slice(-500)}`))));
    });
    return 'HMS_BACKUP_OFFSITE_COMMAND ran';
  }
  return undefined;
}

/**
 * Removes backups older than HMS_BACKUP_RETENTION_DAYS (never the newest), then shipped binlog
 * files older than the oldest backup kept needs (its own binlog file and what follows stays).
 */
export async function applyRetention(config: Config, now: Date): Promise<string[]> {
  const all = await listBackups(config.HMS_BACKUP_DIR!);
  const cutoff = now.getTime() - config.HMS_BACKUP_RETENTION_DAYS * 86_400_000;
  const removed: string[] = [];
  for (const b of all.slice(0, -1)) {
    if (Date.parse(b.manifest.startedAt) < cutoff) {
      await rm(b.dir, { recursive: true, force: true });
      removed.push(b.manifest.id);
    }
  }
  // per binlog base name, the oldest file a kept backup starts from; a file of a base no kept
  // backup names is kept (another server's, or one not yet backed up)
  const oldest = new Map<string, number>();
  for (const b of all.filter((x) => !removed.includes(x.manifest.id))) {
    const at = b.manifest.binlog && binlogNumber(b.manifest.binlog.file);
    if (at) oldest.set(at.base, Math.min(oldest.get(at.base) ?? Infinity, at.n));
  }
  const binlogDir = config.HMS_BINLOG_DIR!;
  if (oldest.size && existsSync(binlogDir)) {
    for (const f of await readdir(binlogDir)) {
      const at = binlogNumber(f);
      const keepFrom = at && oldest.get(at.base);
      if (at && keepFrom !== undefined && at.n < keepFrom) { await rm(join(binlogDir, f)); removed.push(`binlog ${f}`); }
    }
  }
  return removed;
}
