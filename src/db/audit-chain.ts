/**
 * Verification of the security log's hash chain (docs/audit-log.md): a walk over security_logs in
 * `seq` order, in batches (constant memory), that recomputes every row's hash and link and
 * compares the last row with the head (audit_chain). It only reads, inside one read-only snapshot
 * (REPEATABLE READ on MySQL, a read transaction on SQLite), so it runs beside a live server: rows
 * appended meanwhile are simply not part of that walk, and the head and the rows it sees agree.
 */
import type { Knex } from 'knex';
import { dialectOf } from './dialect.js';
import { AUDIT_GENESIS_HASH, securityLogHash } from './audit-hash.js';
import { AUDIT_CHAIN_TABLE } from './audit-log.js';

/** Why the chain is broken at a row (or at its end). */
export type ChainBreakReason =
  /** The row's content (any column but hash) no longer matches its hash: it was edited. */
  | 'content-changed'
  /** The row's prev_hash is not the hash of the row before it: that row was rewritten or replaced. */
  | 'link-broken'
  /** The row's seq skips positions: the rows before it were deleted. */
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
  | 'anchor-mismatch';

/** The first break found. */
export interface ChainBreak {
  reason: ChainBreakReason;
  /** The id of the broken row (absent when there is none to name, e.g. the head is gone). */
  id?: string;
  seq?: number;
  /** One line for people. */
  message: string;
}

/** A position and hash exported earlier (e.g. from a previous verify), that the chain must still hold. */
export interface ChainAnchor { seq: number; hash: string }

/** The answer of a walk: intact with the rows verified, or the first break. */
export interface ChainVerification {
  intact: boolean;
  /** Rows whose content and link were verified (before the break, if any). */
  rows: number;
  /** The head as read at the start of the walk. */
  head?: { seq: number; hash: string };
  /** The first break; absent when intact. */
  break?: ChainBreak;
}

/** How to walk. */
export interface VerifyOptions {
  /** Rows read per query (default 1000). */
  batchSize?: number;
  /** Fail unless the row at anchor.seq still has anchor.hash. */
  anchor?: ChainAnchor;
}

type Row = Record<string, unknown>;

const seqOf = (r: Row): number => Number(r.seq);

/** The walk itself, inside the snapshot. */
async function walk(trx: Knex.Transaction, opts: VerifyOptions): Promise<ChainVerification> {
  const batchSize = Math.max(1, opts.batchSize ?? 1000);
  const headRow = (await trx(AUDIT_CHAIN_TABLE).where({ id: 1 }).first('last_seq', 'last_hash')) as Row | undefined;
  if (!headRow) return { intact: false, rows: 0, break: { reason: 'head-missing', message: `The chain head (${AUDIT_CHAIN_TABLE} id 1) is missing` } };
  const head = { seq: Number(headRow.last_seq), hash: String(headRow.last_hash) };
  const broken = (rows: number, b: ChainBreak): ChainVerification => ({ intact: false, rows, head, break: b });
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
  while (expected <= head.seq) {
    const rows = (await trx('security_logs').where('seq', '>=', expected).andWhere('seq', '<=', head.seq).orderBy('seq').limit(batchSize).select('*')) as Row[];
    if (rows.length === 0) break;
    for (const row of rows) {
      const id = String(row.id);
      const seq = seqOf(row);
      if (seq !== expected) {
        return broken(verified, {
          reason: 'row-missing', id, seq,
          message: `Row ${id} has seq ${seq} where seq ${expected} was expected: ${seq - expected} row(s) before it are missing`,
        });
      }
      if (securityLogHash(row) !== row.hash) {
        return broken(verified, { reason: 'content-changed', id, seq, message: `Row ${id} (seq ${seq}) does not match its hash: its content was changed` });
      }
      if (row.prev_hash !== prevHash) {
        return broken(verified, {
          reason: 'link-broken', id, seq,
          message: `Row ${id} (seq ${seq}) does not link to the row before it${prevId ? ` (${prevId})` : ' (the chain start)'}: that row was rewritten or replaced`,
        });
      }
      if (anchor && anchor.seq === seq && anchor.hash !== row.hash) {
        return broken(verified, { reason: 'anchor-mismatch', id, seq, message: `Row ${id} (seq ${seq}) has another hash than the anchor: the chain was rewritten since the anchor was taken` });
      }
      verified += 1;
      expected += 1;
      prevHash = String(row.hash);
      prevId = id;
      last = row;
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
  return { intact: true, rows: verified, head };
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
