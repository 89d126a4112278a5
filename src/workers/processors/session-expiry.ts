/**
 * Session expiry (queue session-expiry, every minute by default; docs/jobs.md).
 *
 * 1. Ends (is_active = false) the active user_sessions rows the API already refuses: past their
 *    absolute expiry (expires_at <= now) or idle for HMS_SESSION_IDLE seconds (last_activity <=
 *    now - idle), with one security_logs row per session ended (action session-expired, the
 *    session's user, role system, additional_data { sessionId, reason: absolute | idle }; never
 *    the token or its hash), appended in the same transaction as the change: a session is ended
 *    and audited once, or neither.
 * 2. Purges ended sessions whose expires_at lies more than HMS_SESSION_RETENTION_DAYS in the
 *    past. expires_at, not last_activity: it is fixed when the session starts (at most 24 h
 *    later), so a session is kept at least the retention period after it could last have been
 *    used however it ended, and MySQL's ON UPDATE CURRENT_TIMESTAMP on last_activity (which a
 *    logout's UPDATE moves) does not make the two databases differ.
 *
 * The API's own check (findLiveSession) stays authoritative: this job only tidies what the API
 * refuses already, so a run that is late never keeps a session alive. Batches of `batch` rows
 * per transaction; rows are locked (FOR UPDATE SKIP LOCKED on MySQL/MariaDB, SQLite's write
 * lock) and the condition checked on what was locked, so concurrent runs end each session once.
 * The run stops between batches when deps.signal is aborted.
 */
import type { Knex } from 'knex';
import type { JobDeps, JobResult } from '../jobs.js';
import { dialectOf } from '../../db/dialect.js';
import { inTransaction } from '../../db/transactions.js';
import { supportsSkipLocked } from '../../db/row-locks.js';
import { dateToSqlTimestamp } from '../../mappers/datatypes.js';
import type { SecurityLogEntry } from '../../db/audit-log.js';

const TABLE = 'user_sessions';
/** Sessions per transaction. */
export const SESSION_BATCH = 500;

export interface SessionExpiryOptions {
  /** Sessions per transaction (default SESSION_BATCH). */
  batch?: number;
}

type Rows = Record<string, unknown>[];
const rowsOf = (db: Knex, res: unknown): Rows => (dialectOf(db) === 'mysql' ? (res as [Rows])[0] : (res as Rows));

/** The lock a batch's SELECT takes: skipping rows another run holds where the server can; none on SQLite (its write lock serialises). */
async function lockClause(db: Knex): Promise<string> {
  if (dialectOf(db) === 'sqlite') return '';
  return (await supportsSkipLocked(db)) ? ' FOR UPDATE SKIP LOCKED' : ' FOR UPDATE';
}

/** SQLite: the write lock first, so a concurrent run waits for it instead of failing to upgrade a read. */
async function takeWriteLock(trx: Knex.Transaction): Promise<void> {
  if (dialectOf(trx) === 'sqlite') await trx.raw(`UPDATE ${TABLE} SET is_active = is_active WHERE 0`);
}

/** Ends and purges sessions; see the module comment. The queue's processor is {@link sessionExpiry}. */
export async function expireSessions(deps: JobDeps, opts: SessionExpiryOptions = {}): Promise<JobResult> {
  const batch = opts.batch ?? SESSION_BATCH;
  const now = deps.now();
  const nowSql = dateToSqlTimestamp(now);
  const idleSql = dateToSqlTimestamp(new Date(now.getTime() - deps.config.HMS_SESSION_IDLE * 1000));
  const purgeSql = dateToSqlTimestamp(new Date(now.getTime() - deps.config.HMS_SESSION_RETENTION_DAYS * 86_400_000));
  const lock = await lockClause(deps.db);
  const counts = { expired: 0, absolute: 0, idle: 0, purged: 0, batches: 0 };
  let aborted = false;
  const stop = (): boolean => (aborted ||= deps.signal?.aborted === true);

  // 1. end what the API refuses already, keyset by id over the active sessions
  let after = '';
  while (!stop()) {
    const ended = await inTransaction(deps.db, async (trx) => {
      await takeWriteLock(trx);
      const rows = rowsOf(trx, await trx.raw(
        // the negation of the API's check (findLiveSession), NULL last activity included
        `SELECT id, user_id, expires_at FROM ${TABLE} WHERE is_active = ? AND (expires_at <= ? OR last_activity <= ? OR last_activity IS NULL) AND id > ? ORDER BY id LIMIT ?${lock}`,
        [true, nowSql, idleSql, after, batch],
      ));
      if (rows.length === 0) return rows;
      const ids = rows.map((r) => String(r.id));
      // last_activity set to itself: MySQL would otherwise move it to now (ON UPDATE CURRENT_TIMESTAMP)
      const n = await trx(TABLE).whereIn('id', ids).andWhere('is_active', true).update({ is_active: false, last_activity: trx.ref('last_activity') });
      if (n !== ids.length) throw new Error(`${ids.length - n} of ${ids.length} sessions changed while they were being ended`);
      const entries = rows.map((r): SecurityLogEntry => ({
        userId: String(r.user_id), role: 'system', action: 'session-expired', success: true,
        additionalData: { sessionId: String(r.id), reason: String(r.expires_at) <= nowSql ? 'absolute' : 'idle', by: 'session-expiry' },
      }));
      await deps.auditLog.record(entries, trx);
      return rows;
    });
    if (ended.length === 0) break;
    counts.batches++;
    counts.expired += ended.length;
    for (const r of ended) counts[String(r.expires_at) <= nowSql ? 'absolute' : 'idle']++;
    after = String(ended[ended.length - 1]!.id);
    if (ended.length < batch) break;
  }

  // 2. purge ended sessions past the retention, keyset by (expires_at, id) over idx_expires
  let cursor: { expiresAt: string; id: string } | undefined;
  while (!stop()) {
    const seen = await inTransaction(deps.db, async (trx) => {
      await takeWriteLock(trx);
      const bindings: Knex.RawBinding[] = [purgeSql, false];
      let keyset = '';
      if (cursor) {
        keyset = ' AND (expires_at > ? OR (expires_at = ? AND id > ?))';
        bindings.push(cursor.expiresAt, cursor.expiresAt, cursor.id);
      }
      bindings.push(batch);
      const rows = rowsOf(trx, await trx.raw(`SELECT id, expires_at FROM ${TABLE} WHERE expires_at < ? AND is_active = ?${keyset} ORDER BY expires_at, id LIMIT ?${lock}`, bindings));
      if (rows.length === 0) return { rows, deleted: 0 };
      const deleted = await trx(TABLE).whereIn('id', rows.map((r) => String(r.id))).andWhere('is_active', false).andWhere('expires_at', '<', purgeSql).delete();
      return { rows, deleted };
    });
    if (seen.rows.length === 0) break;
    counts.batches++;
    counts.purged += seen.deleted;
    const last = seen.rows[seen.rows.length - 1]!;
    cursor = { expiresAt: String(last.expires_at), id: String(last.id) };
    if (seen.rows.length < batch) break;
  }

  if (counts.expired || counts.purged) deps.log.info({ queue: 'session-expiry', ...counts, aborted }, 'sessions ended and purged');
  return { ...counts, aborted, asOf: now.toISOString() };
}

/** The session-expiry processor (payload {}): {@link expireSessions} with the default batch. */
export async function sessionExpiry(_payload: Record<string, never>, deps: JobDeps): Promise<JobResult> {
  return expireSessions(deps);
}
