/**
 * Archiving of the security log (docs/audit-log.md, "Archiving"): rows past the online retention
 * move, in `seq` order (the chain's order), from security_logs to gzip-compressed NDJSON files
 * under the archive directory, each file named by its seq range and described by a manifest row
 * (table audit_archives: range, count, timestamps, the chain's hashes at both ends, SHA-256 and
 * size of the file). The chain stays verifiable end to end: archive files in manifest order, then
 * the table from where the last archive ended (src/db/audit-chain.ts).
 *
 * One file is one transaction, holding the archive lock (audit_archive_lock row 1) from start to
 * end, so two runs never archive the same rows:
 *
 *   lock -> (first file of a run: remove temp files and orphans) -> read the next rows in seq
 *   order, checking each one's hash and link, up to the first row at or past the cutoff -> write
 *   them to a temp file -> fsync it -> rename it into place -> fsync the directory -> read it
 *   back and verify it (SHA-256, size, count, every row's hash and link, the hashes at both ends)
 *   -> insert the manifest row and delete exactly that seq range (in statements of at most
 *   `deleteBatch` rows) -> commit.
 *
 * The manifest row and the delete commit together or not at all: a run killed at any point leaves
 * either nothing moved (a temp file, or a verified file that no manifest names, whose rows are all
 * still in the table: the next run removes both) or a complete verified file with its manifest
 * row and its rows gone. Appends are not held up: they lock the chain head (audit_chain), which
 * archiving only reads, and they take their link from the head, not from the table's last row.
 *
 * This is the one code path that removes security_logs rows, and only rows whose verified copy is
 * already on disk and named by the manifest in the same transaction.
 */
import type { Knex } from 'knex';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, createGzip } from 'node:zlib';
import { v7 as uuidv7 } from 'uuid';
import { dialectOf } from './dialect.js';
import { AUDIT_GENESIS_HASH, AUDIT_HASHED_COLUMNS, canonicalJson, securityLogHash } from './audit-hash.js';
import { AUDIT_CHAIN_TABLE } from './audit-log.js';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';
import { decryptFile, encryptStream, isEncryptedFile, type BackupKey } from '../backup/crypt.js';

/** The manifest: one row per archive file. */
export const AUDIT_ARCHIVES_TABLE = 'audit_archives';
/** One row (id 1) that a run locks while it archives a file. */
export const AUDIT_ARCHIVE_LOCK_TABLE = 'audit_archive_lock';
/**
 * Rows per archive file, by default. A file is one transaction: on MySQL it holds only the archive
 * lock (and, at its end, the rows it deletes), so files are large; SQLite has one connection per
 * process and one writer, so the embedded server waits while a file is made (~0.5 s per 10,000
 * rows on the test machine) and files are smaller.
 */
export const DEFAULT_ROWS_PER_FILE = { mysql: 100_000, sqlite: 10_000 } as const;

const LOG_TABLE = 'security_logs';
const FILE_RE = /^security-log-(\d+)-(\d+)\.ndjson\.gz$/;
const TEMP_RE = /^\.security-log-[0-9a-f-]+\.tmp$/;

type Row = Record<string, unknown>;

/** A row as an archive file (and `hms audit export`) holds it: every column, JSON values. */
export type ArchiveRow = Record<string, unknown>;

/** What one manifest row says about its file. */
export interface ArchiveManifest {
  id: string;
  fileName: string;
  firstSeq: number;
  lastSeq: number;
  rowCount: number;
  /** The earliest and latest timestamp of the file's rows (null when none has one). */
  minTimestamp: string | null;
  maxTimestamp: string | null;
  /** prev_hash of the first row: the hash of the row before the file (the genesis hash for seq 1). */
  firstPrevHash: string;
  /** hash of the last row. */
  lastHash: string;
  /** SHA-256 (hex) and size of the file's bytes, as written. */
  sha256: string;
  bytes: number;
  createdAt: string;
  createdBy: string | null;
}

/** A failure of archiving; `permanent` when running it again cannot mend it (a broken chain). */
export class AuditArchiveError extends Error {
  constructor(message: string, readonly permanent: boolean, readonly seq?: number) {
    super(message);
    this.name = 'AuditArchiveError';
  }
}

/** An archive file that is missing or cannot be read as gzip NDJSON. */
export class ArchiveFileError extends Error {
  constructor(message: string, readonly kind: 'missing' | 'unreadable') {
    super(message);
    this.name = 'ArchiveFileError';
  }
}

/** The file name of a seq range: sorts in chain order (positions zero-padded to 12 digits). */
export function archiveFileName(firstSeq: number, lastSeq: number): string {
  const pad = (n: number) => String(n).padStart(12, '0');
  return `security-log-${pad(firstSeq)}-${pad(lastSeq)}.ndjson.gz`;
}

const sqlTime = (v: unknown): string | null => (v === null || v === undefined ? null : v instanceof Date ? dateToSqlTimestamp(v) : String(v));

/**
 * A security_logs row as an archive line: the hashed columns in canonical order, then `hash`, then
 * any other column. Values as the database gave them, except: seq as a number (a string past
 * 2^53), timestamp as 'YYYY-MM-DD HH:MM:SS', additional_data as its text (MySQL 8's parsed JSON
 * as canonical JSON text), so securityLogHash(line) recomputes the row's hash.
 */
export function archiveLine(row: Row): ArchiveRow {
  const line: ArchiveRow = {};
  for (const c of AUDIT_HASHED_COLUMNS) {
    const v = row[c] ?? null;
    if (c === 'seq') line[c] = v === null ? null : Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
    else if (c === 'timestamp') line[c] = sqlTime(v);
    else if (c === 'additional_data') line[c] = v === null || typeof v === 'string' ? v : canonicalJson(v);
    else line[c] = typeof v === 'bigint' ? String(v) : v;
  }
  line.hash = row.hash ?? null;
  for (const [k, v] of Object.entries(row)) if (!(k in line)) line[k] = v instanceof Date ? dateToSqlTimestamp(v) : v;
  return line;
}

export function manifestFromRow(r: Row): ArchiveManifest {
  return {
    id: String(r.id), fileName: String(r.file_name), firstSeq: Number(r.first_seq), lastSeq: Number(r.last_seq), rowCount: Number(r.row_count),
    minTimestamp: sqlTime(r.min_timestamp), maxTimestamp: sqlTime(r.max_timestamp), firstPrevHash: String(r.first_prev_hash), lastHash: String(r.last_hash),
    sha256: String(r.sha256), bytes: Number(r.bytes), createdAt: String(sqlTime(r.created_at)), createdBy: r.created_by === null || r.created_by === undefined ? null : String(r.created_by),
  };
}

/** Every manifest row, in chain order. */
export async function listManifests(db: Knex): Promise<ArchiveManifest[]> {
  return ((await db(AUDIT_ARCHIVES_TABLE).orderBy('first_seq').select('*')) as Row[]).map(manifestFromRow);
}

/** What reading an archive file found. */
export interface ArchiveFileStats { sha256: string; bytes: number; rows: number }

const errCode = (e: unknown): string | undefined => (e as { code?: string } | null)?.code;

/**
 * Streams an archive file: SHA-256 and size of its bytes, and each line parsed (in file order) to
 * `onRow` when given, which may stop the read by throwing (that error comes back as it is).
 * Throws ArchiveFileError when the file is missing, is not gzip, or holds a line that is not a
 * JSON object. Constant memory.
 */
export async function readArchiveFile(path: string, onRow?: (row: ArchiveRow, line: number) => void | Promise<void>, keys: BackupKey[] = []): Promise<ArchiveFileStats> {
  const hash = createHash('sha256');
  let bytes = 0;
  let rows = 0;
  let callerError: { error: unknown } | undefined;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) { hash.update(chunk); bytes += chunk.length; cb(null, chunk); },
  });
  const take = async (text: string): Promise<void> => {
    rows += 1;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ArchiveFileError(`${path}: line ${rows} is not JSON`, 'unreadable');
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ArchiveFileError(`${path}: line ${rows} is not a JSON object`, 'unreadable');
    if (onRow) {
      try {
        await onRow(value as ArchiveRow, rows);
      } catch (error) {
        callerError = { error };
        throw error;
      }
    }
  };
  try {
    // an encrypted file (HMS_BACKUP_KEYS): its bytes hashed as stored, then its plaintext read after
    // the key it names (the GCM tag is checked at the end: an altered file fails the read)
    const encrypted = await isEncryptedFile(path).catch(() => false);
    if (encrypted) await pipeline(createReadStream(path), hasher, async (source: AsyncIterable<Buffer>) => { for await (const _ of source) { /* hashed */ } });
    const consume = async (source: AsyncIterable<Buffer>): Promise<void> => {
      const decoder = new StringDecoder('utf8');
      let rest = '';
      for await (const chunk of source) {
        const parts = (rest + decoder.write(chunk)).split('\n');
        rest = parts.pop()!;
        for (const part of parts) await take(part);
      }
      rest += decoder.end();
      if (rest !== '') await take(rest); // a last line without its newline
    };
    if (encrypted) await pipeline(await decryptFile(path, keys), createGunzip(), consume);
    else await pipeline(createReadStream(path), hasher, createGunzip(), consume);
  } catch (err) {
    if (callerError) throw callerError.error;
    if (err instanceof ArchiveFileError) throw err;
    if (errCode(err) === 'ENOENT') throw new ArchiveFileError(`${path}: no such file`, 'missing');
    throw new ArchiveFileError(`${path}: cannot be read as gzip NDJSON (${(err as Error).message})`, 'unreadable');
  }
  return { sha256: hash.digest('hex'), bytes, rows };
}

/** fsync of a directory, so a rename (or unlink) in it survives a crash. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // some platforms (Windows) cannot fsync a directory; the rename is then as durable as the OS makes it
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF'].includes(errCode(err) ?? '')) throw err;
  } finally {
    await fh.close();
  }
}

/** Test and operator hooks at the steps of one file (a hook that throws stops the run there, as a crash would). */
export interface ArchiveHooks {
  /** The temp file is written and fsynced; it is not in place yet. */
  afterWrite?(tempPath: string): void | Promise<void>;
  /** The file is in place and verified; no manifest row yet, nothing deleted. */
  afterVerify?(path: string): void | Promise<void>;
  /** The manifest row is inserted and the rows deleted; not committed yet. */
  beforeCommit?(manifest: ArchiveManifest): void | Promise<void>;
}

export interface ArchiveLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** How to archive. */
export interface ArchiveOptions {
  /** Where the files go (HMS_AUDIT_ARCHIVE_DIR). */
  archiveDir: string;
  /** Encrypts each file with this key (the first of HMS_BACKUP_KEYS); absent: gzip only. */
  key?: BackupKey;
  /** Rows with a timestamp before this instant move (rows without a timestamp count as old). */
  before: Date;
  /** Rows per file at most (default 100,000 on MySQL, 10,000 on SQLite): also the most rows one transaction deletes. */
  rowsPerFile?: number;
  /** Rows read per query (default 1000). */
  batchSize?: number;
  /** Rows deleted per DELETE statement (default 5000), all in the file's one transaction. */
  deleteBatch?: number;
  /** Checked between files: an aborted run stops after the file it is on. */
  signal?: AbortSignal;
  /** Recorded in the manifest (created_by) and the lock row: who archived (a job id, a host). */
  createdBy?: string;
  log?: ArchiveLogger;
  hooks?: ArchiveHooks;
}

/** What a run did. */
export interface ArchiveResult {
  files: number;
  rows: number;
  /** The seq range moved by this run (null when nothing moved). */
  firstSeq: number | null;
  lastSeq: number | null;
  fileNames: string[];
  /** Temp files and orphans (files no manifest names, whose rows are all online) removed. */
  removed: string[];
  /** Stopped because another run holds the archive lock. */
  busy?: boolean;
}

type Step =
  | { kind: 'busy' }
  | { kind: 'done'; removed: string[] }
  | { kind: 'file'; manifest: ArchiveManifest; more: boolean; removed: string[] };

/** Takes the archive lock for this transaction; false when another run holds it (MySQL; SQLite waits: it serialises writers). */
async function takeLock(trx: Knex.Transaction, by: string): Promise<boolean> {
  const mark = { locked_at: dateToSqlTimestamp(new Date()), locked_by: by.slice(0, 200) };
  if (dialectOf(trx) === 'mysql') {
    const [rows] = (await trx.raw(`SELECT id FROM ${AUDIT_ARCHIVE_LOCK_TABLE} WHERE id = 1 FOR UPDATE SKIP LOCKED`)) as [Row[]];
    if (rows.length === 0) {
      if (!(await trx(AUDIT_ARCHIVE_LOCK_TABLE).where({ id: 1 }).first('id'))) throw new AuditArchiveError(`The archive lock row (${AUDIT_ARCHIVE_LOCK_TABLE} id 1) is missing: run 'hms migrate'`, true);
      return false;
    }
    await trx(AUDIT_ARCHIVE_LOCK_TABLE).where({ id: 1 }).update(mark);
    return true;
  }
  // SQLite: the write takes the database's write lock; another process's run waits (busy_timeout) and then fails, to be retried
  const n = await trx(AUDIT_ARCHIVE_LOCK_TABLE).where({ id: 1 }).update(mark);
  if (n === 0) throw new AuditArchiveError(`The archive lock row (${AUDIT_ARCHIVE_LOCK_TABLE} id 1) is missing: run 'hms migrate'`, true);
  return true;
}

/**
 * Under the lock (no other run is writing): removes temp files, and files that no manifest names
 * whose rows are all still online (left by a run that stopped before its commit). A file no
 * manifest names whose rows are not all online is kept (it may be the only copy of them) and
 * reported: `hms audit verify` shows the gap.
 */
async function cleanDirectory(trx: Knex.Transaction, dir: string, log?: ArchiveLogger): Promise<string[]> {
  const names = await readdir(dir);
  const candidates = names.filter((n) => TEMP_RE.test(n) || FILE_RE.test(n));
  if (candidates.length === 0) return [];
  const named = new Set(((await trx(AUDIT_ARCHIVES_TABLE).select('file_name')) as Row[]).map((r) => String(r.file_name)));
  const removed: string[] = [];
  for (const name of candidates) {
    const range = FILE_RE.exec(name);
    if (range) {
      if (named.has(name)) continue;
      const first = Number(range[1]);
      const last = Number(range[2]);
      const [count] = (await trx(LOG_TABLE).whereBetween('seq', [first, last]).count({ n: '*' })) as Row[];
      if (Number(count!.n) !== last - first + 1) {
        log?.warn({ file: name, online: Number(count!.n), expected: last - first + 1 }, 'audit archive: a file no manifest names holds rows that are not online; kept');
        continue;
      }
    }
    await unlink(join(dir, name));
    removed.push(name);
  }
  if (removed.length) {
    await fsyncDir(dir);
    log?.info({ removed }, 'audit archive: removed files of an interrupted run');
  }
  return removed;
}

const tsOf = (row: Row): string | null => sqlTime(row.timestamp);

/** One file: see the module's description for the order of its steps. */
async function archiveStep(trx: Knex.Transaction, opts: Required<Pick<ArchiveOptions, 'rowsPerFile' | 'batchSize' | 'deleteBatch'>> & ArchiveOptions, clean: boolean, by: string): Promise<Step> {
  if (!(await takeLock(trx, by))) return { kind: 'busy' };
  const removed = clean ? await cleanDirectory(trx, opts.archiveDir, opts.log) : [];

  const headRow = (await trx(AUDIT_CHAIN_TABLE).where({ id: 1 }).first('last_seq')) as Row | undefined;
  if (!headRow) throw new AuditArchiveError(`The chain head (${AUDIT_CHAIN_TABLE} id 1) is missing: nothing is archived`, true);
  const headSeq = Number(headRow.last_seq);
  const lastManifest = (await trx(AUDIT_ARCHIVES_TABLE).orderBy('last_seq', 'desc').first('last_seq', 'last_hash')) as Row | undefined;
  const firstSeq = lastManifest ? Number(lastManifest.last_seq) + 1 : 1;
  const firstPrevHash = lastManifest ? String(lastManifest.last_hash) : AUDIT_GENESIS_HASH;
  const cutoff = dateToSqlTimestamp(opts.before);

  // rows in chain order, never past the head (a row past it was not appended by HMS)
  const fetch = (from: number) => trx(LOG_TABLE).where('seq', '>=', from).andWhere('seq', '<=', headSeq).orderBy('seq').limit(opts.batchSize).select('*') as Promise<Row[]>;
  const eligible = (row: Row) => { const ts = tsOf(row); return ts === null || ts < cutoff; };
  let batch = firstSeq <= headSeq ? await fetch(firstSeq) : [];
  if (batch.length === 0 || !eligible(batch[0]!)) return { kind: 'done', removed };

  let expected = firstSeq;
  let prevHash = firstPrevHash;
  let count = 0;
  let minTs: string | null = null;
  let maxTs: string | null = null;
  let more = false; // stopped at rowsPerFile, not at the cutoff or the end
  const broken = (row: Row, why: string) => new AuditArchiveError(
    `The chain is broken at row ${String(row.id)} (seq ${String(row.seq)}): ${why}. Nothing past seq ${expected - 1} is archived; run 'hms audit verify'`, true, Number(row.seq),
  );
  async function* lines(): AsyncGenerator<string> {
    for (;;) {
      const out: string[] = [];
      let stop = false;
      for (const row of batch) {
        if (count >= opts.rowsPerFile) { more = true; stop = true; break; }
        if (!eligible(row)) { stop = true; break; }
        const seq = Number(row.seq);
        if (seq !== expected) throw broken(row, `seq ${expected} was expected (rows missing)`);
        if (securityLogHash(row) !== row.hash) throw broken(row, 'its content does not match its hash');
        if (row.prev_hash !== prevHash) throw broken(row, 'it does not link to the row before it');
        out.push(`${JSON.stringify(archiveLine(row))}\n`);
        const ts = tsOf(row);
        if (ts !== null) {
          if (minTs === null || ts < minTs) minTs = ts;
          if (maxTs === null || ts > maxTs) maxTs = ts;
        }
        count += 1;
        expected += 1;
        prevHash = String(row.hash);
      }
      if (out.length) yield out.join('');
      if (stop || batch.length < opts.batchSize) return;
      batch = await fetch(expected);
      if (batch.length === 0) return;
    }
  }

  // 1. write the temp file, fsync it
  const temp = join(opts.archiveDir, `.security-log-${randomUUID()}.tmp`);
  const written = createHash('sha256');
  let bytes = 0;
  const stages: Transform[] = [createGzip(), ...(opts.key ? [encryptStream(opts.key)] : [])];
  await pipeline([
    Readable.from(lines()),
    ...stages,
    new Transform({ transform(chunk: Buffer, _enc, cb) { written.update(chunk); bytes += chunk.length; cb(null, chunk); } }),
    createWriteStream(temp, { flags: 'wx', mode: 0o600 }),
  ]);
  const fh = await open(temp, 'r+');
  try { await fh.sync(); } finally { await fh.close(); }
  const sha256 = written.digest('hex');
  const lastSeq = expected - 1;
  const lastHash = prevHash;
  await opts.hooks?.afterWrite?.(temp);

  // 2. rename into place (never over another file), fsync the directory
  const fileName = archiveFileName(firstSeq, lastSeq);
  const path = join(opts.archiveDir, fileName);
  const exists = await stat(path).then(() => true, (e: unknown) => { if (errCode(e) === 'ENOENT') return false; throw e; });
  if (exists) throw new AuditArchiveError(`${path} exists already and is not named by the manifest; it is kept: move it away to archive seq ${firstSeq}-${lastSeq}`, true);
  await rename(temp, path);
  await fsyncDir(opts.archiveDir);

  // 3. read it back: bytes, count, and the chain of its rows
  let seq = firstSeq;
  let link = firstPrevHash;
  const back = await readArchiveFile(path, (line, n) => {
    if (Number(line.seq) !== seq || securityLogHash(line) !== line.hash || line.prev_hash !== link) {
      throw new AuditArchiveError(`${path}: line ${n} does not read back as written (seq ${seq})`, false);
    }
    seq += 1;
    link = String(line.hash);
  }, opts.key ? [opts.key] : []);
  if (back.sha256 !== sha256 || back.bytes !== bytes || back.rows !== count || link !== lastHash) {
    throw new AuditArchiveError(`${path} does not read back as written (sha256 ${back.sha256} vs ${sha256}, ${back.bytes} vs ${bytes} bytes, ${back.rows} vs ${count} rows)`, false);
  }
  await opts.hooks?.afterVerify?.(path);

  // 4. the manifest row and exactly those rows out, in this one transaction
  const manifest: ArchiveManifest = {
    id: uuidv7(), fileName, firstSeq, lastSeq, rowCount: count, minTimestamp: minTs, maxTimestamp: maxTs, firstPrevHash, lastHash,
    sha256, bytes, createdAt: dateToSqlTimestamp(new Date()), createdBy: by.slice(0, 200),
  };
  await trx(AUDIT_ARCHIVES_TABLE).insert({
    id: manifest.id, file_name: fileName, first_seq: firstSeq, last_seq: lastSeq, row_count: count, min_timestamp: minTs, max_timestamp: maxTs,
    first_prev_hash: firstPrevHash, last_hash: lastHash, sha256, bytes, created_at: manifest.createdAt, created_by: manifest.createdBy,
  });
  let deleted = 0;
  for (let from = firstSeq; from <= lastSeq; from += opts.deleteBatch) {
    deleted += Number(await trx(LOG_TABLE).whereBetween('seq', [from, Math.min(lastSeq, from + opts.deleteBatch - 1)]).delete());
  }
  if (deleted !== count) {
    throw new AuditArchiveError(`Deleting seq ${firstSeq}-${lastSeq} removed ${deleted} rows, not the ${count} archived: rolled back (the rows changed meanwhile)`, false);
  }
  await opts.hooks?.beforeCommit?.(manifest);
  return { kind: 'file', manifest, more, removed };
}

/**
 * Moves every security_logs row older than `before` (in seq order, up to the first row in seq
 * order that is not) to archive files, one transaction per file. Returns what moved; a run that
 * finds another one holding the lock stops with `busy`. Throws AuditArchiveError with `permanent`
 * when the chain is broken where archiving would start (nothing past the break is archived).
 */
export async function archiveAuditLog(db: Knex, options: ArchiveOptions): Promise<ArchiveResult> {
  const opts = {
    ...options,
    rowsPerFile: Math.max(1, options.rowsPerFile ?? DEFAULT_ROWS_PER_FILE[dialectOf(db)]),
    batchSize: Math.max(1, options.batchSize ?? 1000),
    deleteBatch: Math.max(1, options.deleteBatch ?? 5000),
  };
  if (Number.isNaN(opts.before.getTime())) throw new AuditArchiveError('The archive cutoff is not a valid instant', true);
  const by = options.createdBy ?? `${hostname()}:${process.pid}`;
  await mkdir(opts.archiveDir, { recursive: true });
  const result: ArchiveResult = { files: 0, rows: 0, firstSeq: null, lastSeq: null, fileNames: [], removed: [] };
  const config: Knex.TransactionConfig | undefined = dialectOf(db) === 'mysql' ? { isolationLevel: 'read committed' } : undefined;
  let cleaned = false;
  while (!opts.signal?.aborted) {
    const step = await db.transaction((trx) => archiveStep(trx, opts, !cleaned, by), config);
    if (step.kind === 'busy') { result.busy = true; break; }
    cleaned = true;
    result.removed.push(...step.removed);
    if (step.kind === 'done') break;
    const m = step.manifest;
    result.files += 1;
    result.rows += m.rowCount;
    result.firstSeq ??= m.firstSeq;
    result.lastSeq = m.lastSeq;
    result.fileNames.push(m.fileName);
    opts.log?.info({ file: m.fileName, rows: m.rowCount, firstSeq: m.firstSeq, lastSeq: m.lastSeq, bytes: m.bytes }, 'audit archive: file written and rows moved');
    if (!step.more) break;
  }
  return result;
}

/** Which rows to export: timestamps from `from` to `to`, both inclusive ('YYYY-MM-DD HH:MM:SS', UTC); absent: unbounded. */
export interface ExportOptions {
  archiveDir: string;
  /** HMS_BACKUP_KEYS, for encrypted archive files. */
  keys?: BackupKey[];
  from?: string;
  to?: string;
}

export interface ExportResult { rows: number; archived: number; online: number; files: number }

/**
 * Every chained row of a time range, archived and online, in seq order, as archive lines: the
 * files whose manifest range of timestamps meets the range (each checked against its manifest's
 * SHA-256 before any of its rows is given out), then the table. Reads one snapshot, so a run of
 * the archiver meanwhile neither hides nor repeats rows.
 */
export async function exportAuditLog(db: Knex, opts: ExportOptions, onRow: (row: ArchiveRow) => void | Promise<void>): Promise<ExportResult> {
  const inRange = (ts: unknown): boolean => {
    if (opts.from === undefined && opts.to === undefined) return true;
    if (ts === null || ts === undefined) return false;
    const t = String(ts);
    return (opts.from === undefined || t >= opts.from) && (opts.to === undefined || t <= opts.to);
  };
  const config: Knex.TransactionConfig = dialectOf(db) === 'mysql' ? { isolationLevel: 'repeatable read' } : {};
  return db.transaction(async (trx) => {
    const result: ExportResult = { rows: 0, archived: 0, online: 0, files: 0 };
    // the first read takes the snapshot: the manifests and the table as of one moment
    const q = trx(AUDIT_ARCHIVES_TABLE).orderBy('first_seq').select('*');
    if (opts.from !== undefined) q.where('max_timestamp', '>=', opts.from);
    if (opts.to !== undefined) q.where('min_timestamp', '<=', opts.to);
    const manifests = ((await q) as Row[]).map(manifestFromRow);
    for (const m of manifests) {
      const path = join(opts.archiveDir, m.fileName);
      const stats = await readArchiveFile(path, undefined, opts.keys);
      if (stats.sha256 !== m.sha256 || stats.bytes !== m.bytes || stats.rows !== m.rowCount) {
        throw new AuditArchiveError(`${path} does not match its manifest (SHA-256, size or rows): it was changed; run 'hms audit verify'`, true, m.firstSeq);
      }
      result.files += 1;
      await readArchiveFile(path, async (line) => {
        if (!inRange(line.timestamp)) return;
        result.archived += 1;
        await onRow(line);
      }, opts.keys);
    }
    for (let cursor = 0; ;) {
      const q2 = trx(LOG_TABLE).where('seq', '>', cursor).orderBy('seq').limit(1000).select('*');
      if (opts.from !== undefined) q2.where('timestamp', '>=', opts.from);
      if (opts.to !== undefined) q2.where('timestamp', '<=', opts.to);
      const rows = (await q2) as Row[];
      for (const row of rows) {
        result.online += 1;
        await onRow(archiveLine(row));
      }
      if (rows.length < 1000) break;
      cursor = Number(rows[rows.length - 1]!.seq);
    }
    result.rows = result.archived + result.online;
    return result;
  }, config);
}
