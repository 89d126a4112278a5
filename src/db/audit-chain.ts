/**
 * Verification of the security log's hash chain (docs/audit-log.md): a walk in `seq` order over
 * the archive files first (audit_archives, in manifest order: each file's rows, and the file
 * against its manifest row) and then over security_logs from where the last archive ended, in
 * batches (constant memory), that recomputes every row's hash and link and compares the last row
 * with the head (audit_chain). It only reads, inside one read-only snapshot (REPEATABLE READ on
 * MySQL, a read transaction on SQLite), so it runs beside a live server and beside an archive run:
 * rows appended or archived meanwhile are simply not part of that walk (archive files are never
 * changed once named by a manifest), and the head, the manifests and the rows it sees agree.
 */
import type { Knex } from 'knex';
import { join } from 'node:path';
import { dialectOf } from './dialect.js';
import { AUDIT_GENESIS_HASH, securityLogHash } from './audit-hash.js';
import { AUDIT_CHAIN_TABLE } from './audit-log.js';
import { ArchiveFileError, AUDIT_ARCHIVES_TABLE, manifestFromRow, readArchiveFile, type ArchiveFileStats, type ArchiveManifest } from './audit-archive.js';
import type { BackupKey } from '../backup/crypt.js';

/** Why the chain is broken at a row (or at its end). */
export type ChainBreakReason =
  /** The row's content (any column but hash) no longer matches its hash: it was edited. */
  | 'content-changed'
  /** The row's prev_hash is not the hash of the row before it: that row was rewritten or replaced. */
  | 'link-broken'
  /** The row's seq skips positions: the rows before it were deleted (or no archive holds them). */
  | 'row-missing'
  /** A row with no place in the chain (seq NULL or below 1): inserted by hand. */
  | 'outside-chain'
  /** A row past the head's position: inserted by hand with a forged seq. */
  | 'beyond-head'
  /** The last row is not the head's: rows were removed at the end (or the head was changed). */
  | 'head-mismatch'
  /** The head row (audit_chain id 1) is gone. */
  | 'head-missing'
  /** The row at an exported anchor position has another hash: the chain was rewritten since. */
  | 'anchor-mismatch'
  /** A manifest row names a file that is not in the archive directory. */
  | 'archive-missing'
  /** An archive file is not gzip, or holds a line that is not a JSON object. */
  | 'archive-unreadable'
  /** An archive file's bytes are not those its manifest row recorded (SHA-256 or size), though its rows verify. */
  | 'archive-changed'
  /** A manifest row disagrees with its file or with the manifest before it (range, count, end hashes). */
  | 'manifest-mismatch'
  /** A row that an archive holds is in security_logs too: put back (or never removed) by hand. */
  | 'archived-row-online';

/** The first break found. */
export interface ChainBreak {
  reason: ChainBreakReason;
  /** The id of the broken row (absent when there is none to name, e.g. the head is gone). */
  id?: string;
  seq?: number;
  /** The archive file the break is in (absent for a break in security_logs). */
  archive?: string;
  /** One line for people. */
  message: string;
}

/** A position and hash exported earlier (e.g. from a previous verify), that the chain must still hold. */
export interface ChainAnchor { seq: number; hash: string }

/** The answer of a walk: intact with the rows verified, or the first break. */
export interface ChainVerification {
  intact: boolean;
  /** Rows whose content and link were verified (before the break, if any), archived and online. */
  rows: number;
  /** The head as read at the start of the walk. */
  head?: { seq: number; hash: string };
  /** The archive files walked and the rows verified in them (present only when there are archives). */
  archived?: { files: number; rows: number };
  /** The first break; absent when intact. */
  break?: ChainBreak;
}

/** How to walk. */
export interface VerifyOptions {
  /** Rows read per query (default 1000). */
  batchSize?: number;
  /** Fail unless the row at anchor.seq still has anchor.hash. */
  anchor?: ChainAnchor;
  /** The directory of the archive files (HMS_AUDIT_ARCHIVE_DIR): needed once there are archives. */
  archiveDir?: string;
  /** HMS_BACKUP_KEYS, for encrypted archive files. */
  keys?: BackupKey[];
}

type Row = Record<string, unknown>;

const seqOf = (r: Row): number => Number(r.seq);

/** Stops reading an archive file at the first break. */
class Broken {
  constructor(readonly chainBreak: ChainBreak) {}
}

/** The walk itself, inside the snapshot. */
async function walk(trx: Knex.Transaction, opts: VerifyOptions): Promise<ChainVerification> {
  const batchSize = Math.max(1, opts.batchSize ?? 1000);
  const headRow = (await trx(AUDIT_CHAIN_TABLE).where({ id: 1 }).first('last_seq', 'last_hash')) as Row | undefined;
  if (!headRow) return { intact: false, rows: 0, break: { reason: 'head-missing', message: `The chain head (${AUDIT_CHAIN_TABLE} id 1) is missing` } };
  const head = { seq: Number(headRow.last_seq), hash: String(headRow.last_hash) };
  const manifests: ArchiveManifest[] = (await trx.schema.hasTable(AUDIT_ARCHIVES_TABLE))
    ? ((await trx(AUDIT_ARCHIVES_TABLE).orderBy('first_seq').select('*')) as Row[]).map(manifestFromRow)
    : [];
  const archived = { files: 0, rows: 0 };
  const broken = (rows: number, b: ChainBreak): ChainVerification => ({ intact: false, rows, head, ...(manifests.length ? { archived } : {}), break: b });
  const anchor = opts.anchor;
  if (anchor && anchor.seq === 0 && anchor.hash !== AUDIT_GENESIS_HASH) {
    return broken(0, { reason: 'anchor-mismatch', seq: 0, message: `An anchor at seq 0 must be the genesis hash ${AUDIT_GENESIS_HASH}` });
  }
  if (anchor && anchor.seq > head.seq) {
    return broken(0, { reason: 'anchor-mismatch', seq: anchor.seq, message: `The anchor is at seq ${anchor.seq} but the head is at seq ${head.seq}: rows were removed since it was taken` });
  }

  let expected = 1;
  let prevHash = AUDIT_GENESIS_HASH;
  let prevId: string | undefined;
  let verified = 0;
  let last: Row | undefined;

  /** The first break at this row (the next in the chain), or undefined when it verifies; then it becomes the last verified row. */
  const check = (row: Row, archive?: string): ChainBreak | undefined => {
    const id = String(row.id);
    const seq = seqOf(row);
    const at = archive ? { archive } : {};
    const where = archive ? ` in archive ${archive}` : '';
    if (seq !== expected) {
      return {
        reason: 'row-missing', id, seq, ...at,
        message: `Row ${id}${where} has seq ${seq} where seq ${expected} was expected: ${seq > expected ? `${seq - expected} row(s) before it are missing` : 'the rows are out of order'}`,
      };
    }
    if (archive && seq > head.seq) {
      return { reason: 'beyond-head', id, seq, ...at, message: `Row ${id}${where} has seq ${seq}, past the head (seq ${head.seq}): it was not appended by HMS` };
    }
    if (securityLogHash(row) !== row.hash) {
      return { reason: 'content-changed', id, seq, ...at, message: `Row ${id} (seq ${seq})${where} does not match its hash: its content was changed` };
    }
    if (row.prev_hash !== prevHash) {
      return {
        reason: 'link-broken', id, seq, ...at,
        message: `Row ${id} (seq ${seq})${where} does not link to the row before it${prevId ? ` (${prevId})` : ' (the chain start)'}: that row was rewritten or replaced`,
      };
    }
    if (anchor && anchor.seq === seq && anchor.hash !== row.hash) {
      return { reason: 'anchor-mismatch', id, seq, ...at, message: `Row ${id} (seq ${seq})${where} has another hash than the anchor: the chain was rewritten since the anchor was taken` };
    }
    verified += 1;
    expected += 1;
    prevHash = String(row.hash);
    prevId = id;
    last = row;
    return undefined;
  };

  // 1. the archives, in chain order: each file's rows, then the file against its manifest row
  for (const m of manifests) {
    const archive = m.fileName;
    const at = { archive, seq: m.firstSeq };
    if (m.firstSeq > expected) {
      return broken(verified, {
        reason: 'row-missing', ...at,
        message: `No archive and no row holds seq ${expected} to ${m.firstSeq - 1}: the archive before ${archive} is missing from the manifest, or those rows were deleted`,
      });
    }
    if (m.firstSeq < expected) {
      return broken(verified, { reason: 'manifest-mismatch', ...at, message: `The manifest of ${archive} starts at seq ${m.firstSeq}, inside the archive before it (which ends at seq ${expected - 1})` });
    }
    if (!opts.archiveDir) throw new Error(`The security log has ${manifests.length} archive file(s): verifying needs the archive directory (HMS_AUDIT_ARCHIVE_DIR)`);
    const path = join(opts.archiveDir, archive);
    const linkIn = prevHash;
    let firstPrev: unknown;
    let stats: ArchiveFileStats;
    try {
      stats = await readArchiveFile(path, (line, n) => {
        if (n === 1) firstPrev = line.prev_hash;
        const b = check(line, archive);
        if (b) throw new Broken(b);
      }, opts.keys);
    } catch (err) {
      if (err instanceof Broken) return broken(verified, err.chainBreak);
      if (err instanceof ArchiveFileError) {
        return broken(verified, err.kind === 'missing'
          ? { reason: 'archive-missing', ...at, message: `The archive file ${archive} (seq ${m.firstSeq} to ${m.lastSeq}) is not in ${opts.archiveDir}: put it back to verify the chain` }
          : { reason: 'archive-unreadable', ...at, message: `The archive file ${archive} cannot be read: ${err.message}` });
      }
      throw err;
    }
    const problems: string[] = [];
    if (stats.rows !== m.rowCount) problems.push(`it holds ${stats.rows} rows, the manifest says ${m.rowCount}`);
    if (expected - 1 !== m.lastSeq) problems.push(`it ends at seq ${expected - 1}, the manifest says ${m.lastSeq}`);
    if (firstPrev !== m.firstPrevHash || m.firstPrevHash !== linkIn) problems.push("its first link is not the manifest's first_prev_hash");
    if (prevHash !== m.lastHash) problems.push("its last hash is not the manifest's last_hash");
    if (problems.length) {
      return broken(verified, { reason: 'manifest-mismatch', ...at, message: `The archive file ${archive} and its manifest row disagree: ${problems.join('; ')}` });
    }
    if (stats.sha256 !== m.sha256 || stats.bytes !== m.bytes) {
      return broken(verified, {
        reason: 'archive-changed', ...at,
        message: `The archive file ${archive} is not the file that was archived: SHA-256 ${stats.sha256} (${stats.bytes} bytes), the manifest says ${m.sha256} (${m.bytes} bytes)`,
      });
    }
    archived.files += 1;
    archived.rows += stats.rows;
  }
  if (manifests.length) {
    const again = (await trx('security_logs').where('seq', '>=', 1).andWhere('seq', '<', expected).orderBy('seq').first('id', 'seq')) as Row | undefined;
    if (again) {
      return broken(verified, {
        reason: 'archived-row-online', id: String(again.id), seq: seqOf(again),
        message: `Row ${String(again.id)} (seq ${seqOf(again)}) is in security_logs although an archive holds its position: it was put back by hand`,
      });
    }
  }

  // 2. the table, from where the archives ended
  while (expected <= head.seq) {
    const rows = (await trx('security_logs').where('seq', '>=', expected).andWhere('seq', '<=', head.seq).orderBy('seq').limit(batchSize).select('*')) as Row[];
    if (rows.length === 0) break;
    for (const row of rows) {
      const b = check(row);
      if (b) return broken(verified, b);
    }
  }

  if (verified < head.seq || (last && last.hash !== head.hash) || (!last && head.hash !== AUDIT_GENESIS_HASH)) {
    const end = last ? `the last row is ${String(last.id)} (seq ${seqOf(last)})` : 'there is no row';
    return broken(verified, {
      reason: 'head-mismatch', ...(last ? { id: String(last.id), seq: seqOf(last) } : {}),
      message: verified < head.seq
        ? `The head is at seq ${head.seq} but ${end}: rows were removed at the end`
        : `The head's hash is not the hash of the last row (${end}): the head was changed`,
    });
  }
  const beyond = (await trx('security_logs').where('seq', '>', head.seq).orderBy('seq').first('id', 'seq')) as Row | undefined;
  if (beyond) {
    return broken(verified, {
      reason: 'beyond-head', id: String(beyond.id), seq: seqOf(beyond),
      message: `Row ${String(beyond.id)} has seq ${seqOf(beyond)}, past the head (seq ${head.seq}): it was not appended by HMS`,
    });
  }
  const outside = trx('security_logs').where((w) => w.whereNull('seq').orWhere('seq', '<', 1));
  const [count] = (await outside.clone().count({ n: '*' })) as Row[];
  if (Number(count!.n) > 0) {
    const first = (await outside.clone().orderBy([{ column: 'timestamp' }, { column: 'id' }]).first('id')) as Row;
    return broken(verified, {
      reason: 'outside-chain', id: String(first.id),
      message: `Row ${String(first.id)} has no place in the chain (seq NULL or below 1): it was inserted by hand (${Number(count!.n)} such row(s))`,
    });
  }
  return { intact: true, rows: verified, head, ...(manifests.length ? { archived } : {}) };
}

/**
 * Walks the whole chain and reports the rows verified or the first break. Reads only; safe while
 * API processes append.
 */
export async function verifyAuditChain(db: Knex, opts: VerifyOptions = {}): Promise<ChainVerification> {
  // REPEATABLE READ: every statement reads the snapshot the first one (the head) took. (Not READ
  // ONLY: knex 3 spells 'ISOLATION LEVEL ... READ ONLY' without the comma MariaDB requires.)
  const config: Knex.TransactionConfig = dialectOf(db) === 'mysql' ? { isolationLevel: 'repeatable read' } : {};
  return db.transaction((trx) => walk(trx, opts), config);
}

/** Parses `seq:hash` (as verify prints them) into an anchor; undefined when malformed. */
export function parseAnchor(text: string): ChainAnchor | undefined {
  const m = /^(\d+):([0-9a-f]{64})$/.exec(text.trim());
  return m ? { seq: Number(m[1]), hash: m[2]! } : undefined;
}
