/**
 * Appends to security_logs, the tamper-evident security log (docs/audit-log.md). Every row takes
 * the next position (`seq`) of one chain per database and carries the hash of its content and of
 * the row before it (src/db/audit-hash.ts). The chain's head (table audit_chain, row id 1) holds
 * the last position and hash; an append reads it under a row lock, inserts its rows and moves it,
 * all in one transaction, so any number of API processes append one gap-free chain in order.
 *
 * Entries from concurrent requests of one process are appended together in one locked append and
 * one multi-row INSERT (group commit): each caller still waits until its rows are committed.
 * Entries given a transaction (data changes) are appended inside it and commit or roll back with
 * the change; the head update rolls back too, so a rollback leaves no gap.
 *
 * The application only ever inserts here: no code updates a security_logs row, and the one code
 * that deletes any is the archiver (src/db/audit-archive.ts), which removes only rows whose
 * verified copy is already on disk and named by a manifest row in the same transaction.
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { dialectOf } from './dialect.js';
import { inTransaction } from './transactions.js';
import { nowSeconds } from './resource-repository.js';
import { insertRows } from './write-buffer.js';
import { securityLogHash } from './audit-hash.js';
import { wellFormed } from '../characters.js';

/** One event to record: who acted, on what, from where, with what outcome. */
export interface SecurityLogEntry {
  /** The acting user (users.id), for people. */
  userId?: string | null;
  /** The acting system (api_clients.id), for SMART Backend Services clients. */
  clientId?: string | null;
  /** The role the actor acted in (admin, doctor, nurse, patient, finance, system). */
  role?: string | null;
  action: string;
  resourceType?: string | null;
  resourceId?: string | null;
  /**
   * The patient whose data was accessed (one row per patient: the accounting of disclosures).
   * When absent (or null) on an entry about a Patient resource: that patient.
   */
  patientId?: string | null;
  ipAddress?: string | null;
  userAgent?: string | null;
  success: boolean;
  failureReason?: string | null;
  /** The request id (Fastify's), to tie the rows of one request together. */
  requestId?: string | null;
  /** The access was made under a break-glass grant. */
  breakGlass?: boolean;
  additionalData?: Record<string, unknown> | null;
}

/** The table holding the head of the chain (one row, id 1). */
export const AUDIT_CHAIN_TABLE = 'audit_chain';

type Row = Record<string, unknown>;

interface Pending { rows: Row[]; resolve: () => void; reject: (e: unknown) => void }

/** Rows appended together at most (callers are never split: one caller's rows may exceed it). */
const MAX_BATCH = 500;

// A lone UTF-16 surrogate cannot be stored as utf8mb4 (the driver writes U+FFFD instead), which
// would make the stored row differ from the hashed one: wellFormed replaces it before hashing.

/** A string cut to a VARCHAR(n): n characters (code points, as MySQL counts them, not UTF-16 units). */
function cut(s: string | null | undefined, n: number): string | null {
  if (s === null || s === undefined) return null;
  const w = wellFormed(s);
  return w.length <= n ? w : Array.from(w).slice(0, n).join('');
}

const text = (s: string | null | undefined): string | null => (s === null || s === undefined ? null : wellFormed(s));

/**
 * The security_logs row of an entry, before it takes its place in the chain (columns cut to their
 * widths). An entry about a Patient resource is about that patient unless it names another.
 */
export function securityLogRow(entry: SecurityLogEntry): Row {
  const resourceType = cut(entry.resourceType, 50);
  const resourceId = cut(entry.resourceId, 36);
  const patientId = entry.patientId ?? (resourceType === 'Patient' ? resourceId : null);
  return {
    id: uuidv7(),
    user_id: entry.userId ?? null,
    client_id: cut(entry.clientId, 36),
    role: cut(entry.role, 20),
    action: cut(entry.action, 100),
    resource_type: resourceType,
    resource_id: resourceId,
    patient_id: cut(patientId, 36),
    ip_address: cut(entry.ipAddress, 45),
    user_agent: text(entry.userAgent),
    timestamp: nowSeconds().sql,
    success: entry.success,
    failure_reason: text(entry.failureReason),
    request_id: cut(entry.requestId, 36),
    break_glass: entry.breakGlass ?? false,
    additional_data: entry.additionalData
      ? JSON.stringify(entry.additionalData, (_k, v: unknown) => (typeof v === 'string' ? wellFormed(v) : v))
      : null,
  };
}

/** The head of the chain: the last position taken and its hash (0 and the genesis hash when empty). */
export interface ChainHead { seq: number; hash: string }

function headOf(row: Row | undefined): ChainHead {
  if (!row) throw new Error(`The security log's chain head (${AUDIT_CHAIN_TABLE} id 1) is missing: nothing can be appended`);
  const seq = Number(row.last_seq);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`The security log's chain head holds an invalid position: ${String(row.last_seq)}`);
  return { seq, hash: String(row.last_hash) };
}

/**
 * Locks the head for this transaction and returns it. On MySQL the users rows the new rows refer
 * to are share-locked first: inserting a row takes that lock anyway (foreign key user_id), and a
 * data transaction may hold one of them exclusively (double booking locks the doctor's row) while
 * it waits for the head, so every append takes users before the head: one lock order, no deadlock.
 */
async function lockHead(trx: Knex.Transaction, rows: Row[]): Promise<ChainHead> {
  if (dialectOf(trx) === 'mysql') {
    const users = [...new Set(rows.map((r) => r.user_id).filter((u): u is string => typeof u === 'string'))].sort();
    if (users.length) await trx.raw(`SELECT id FROM users WHERE id IN (${users.map(() => '?').join(', ')}) LOCK IN SHARE MODE`, users);
    const [found] = (await trx.raw(`SELECT last_seq, last_hash FROM ${AUDIT_CHAIN_TABLE} WHERE id = 1 FOR UPDATE`)) as [Row[]];
    return headOf(found[0]);
  }
  // SQLite: writing first takes the database's write lock (a read first could later fail to
  // upgrade when another process wrote meanwhile); writers are serialised from here on
  const found = (await trx.raw(`UPDATE ${AUDIT_CHAIN_TABLE} SET updated_at = ? WHERE id = 1 RETURNING last_seq, last_hash`, [nowSeconds().sql])) as Row[];
  return headOf(found[0]);
}

/**
 * Appends rows (from {@link securityLogRow}) at the head of the chain inside `trx`: locks the head,
 * gives each row its position, previous hash and hash, inserts them and moves the head. The head
 * stays locked until `trx` ends, so call it as late in a transaction as possible.
 */
export async function appendToChain(trx: Knex.Transaction, rows: Row[]): Promise<ChainHead> {
  const head = await lockHead(trx, rows);
  if (rows.length === 0) return head;
  let { seq, hash } = head;
  const chained = rows.map((row) => {
    seq += 1;
    const withLink = { ...row, seq, prev_hash: hash };
    hash = securityLogHash(withLink);
    return { ...withLink, hash };
  });
  await insertRows(trx, 'security_logs', chained);
  await trx(AUDIT_CHAIN_TABLE).where({ id: 1 }).update({ last_seq: seq, last_hash: hash, updated_at: nowSeconds().sql });
  return { seq, hash };
}

/** The security log of one process: chained appends, group-committed across concurrent callers. */
export class AuditLog {
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly db: Knex) {}

  /**
   * Stores entries; resolves once they are committed, rejects when they are not stored. Given a
   * transaction, they are appended in it, so a data change and its audit rows commit (or roll
   * back) together; an error there (a deadlock victim) rejects, and the caller's transaction is
   * rolled back as a whole (inTransaction may run it again).
   */
  record(entries: SecurityLogEntry | SecurityLogEntry[], trx?: Knex.Transaction): Promise<void> {
    const rows = (Array.isArray(entries) ? entries : [entries]).map(securityLogRow);
    if (rows.length === 0) return Promise.resolve();
    const stored = trx
      ? appendToChain(trx, rows).then(() => undefined)
      : new Promise<void>((resolve, reject) => {
        this.pending.push({ rows, resolve, reject });
        this.flushing ??= this.drain();
      });
    const observe = this.onRecorded;
    if (!observe) return stored;
    const t0 = performance.now();
    return stored.then(
      () => observe(rows, (performance.now() - t0) / 1000, true),
      (err: unknown) => { observe(rows, (performance.now() - t0) / 1000, false); throw err; },
    );
  }

  /**
   * Told of each record() once it is stored (ok) or refused, with the seconds the caller waited
   * (the metrics: audit write latency, login failures). Rows as stored, before the chain.
   */
  onRecorded?: (rows: readonly Row[], seconds: number, ok: boolean) => void;

  /** Resolves when everything recorded so far is stored. */
  async settle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** One locked append in its own transaction, retried when the database picks it as a deadlock victim. */
  private append(rows: Row[]): Promise<ChainHead> {
    return inTransaction(this.db, (trx) => appendToChain(trx, rows));
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length) {
        // let the callers that are ready in this turn of the event loop join the batch (a caller
        // whose previous entry was just stored records its next one in the same turn)
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.takeBatch();
        try {
          await this.append(batch.flatMap((p) => p.rows));
          for (const p of batch) p.resolve();
        } catch (err) {
          if (batch.length === 1) { batch[0]!.reject(err); continue; }
          // one caller's bad row (a user id deleted meanwhile) must not fail its neighbours: alone, each either stores or fails
          for (const p of batch) await this.append(p.rows).then(() => p.resolve(), (e: unknown) => p.reject(e));
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** The next callers whose rows fit in one batch (at least one caller). */
  private takeBatch(): Pending[] {
    let n = 0;
    let rows = 0;
    while (n < this.pending.length && (n === 0 || rows + this.pending[n]!.rows.length <= MAX_BATCH)) rows += this.pending[n++]!.rows.length;
    return this.pending.splice(0, n);
  }
}
