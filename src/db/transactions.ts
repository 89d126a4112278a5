/** Transactions that are retried when the database aborted them for a lock conflict. */
import type { Knex } from 'knex';
import { dialectOf } from './dialect.js';

const RETRYABLE = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'SQLITE_BUSY']);

/** The driver error code of an error, looking through Objection's wrappers. */
export function dbErrorCode(err: unknown): string | undefined {
  const e = err as { code?: string; nativeError?: { code?: string } } | null;
  return e?.nativeError?.code ?? e?.code;
}

/** Whether the database aborted a transaction for a lock conflict (running it again is safe). */
export const isRetryable = (err: unknown): boolean => RETRYABLE.has(dbErrorCode(err) ?? '');

const DUPLICATE = new Set(['ER_DUP_ENTRY', 'SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT_UNIQUE']);

export interface TransactionOptions {
  /** Tries in all (default 3). */
  attempts?: number;
  /**
   * Also retry when a unique key was taken meanwhile: for work that reads, then inserts if absent
   * (update-as-create), the retry reads the row the other writer committed and updates it instead.
   */
  retryOnDuplicate?: boolean;
}

/**
 * Runs fn in a transaction; when InnoDB picks it as a deadlock victim (or a lock wait times out)
 * the whole transaction is rolled back by the database, so running it again is safe.
 */
export async function inTransaction<T>(db: Knex, fn: (trx: Knex.Transaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  // inside a caller's transaction fn runs in it, with no savepoint of its own: an error goes up
  // to the caller, whose transaction rolls back whole (no caller catches one and goes on; a caller
  // that must, like lab ingestion, opens its savepoint itself). A deadlock has rolled back the
  // whole transaction anyway, so only the outermost caller may run it again.
  if (db.isTransaction) return fn(db as Knex.Transaction);
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      // READ COMMITTED: no gap locks, so concurrent writers of new rows do not deadlock each other
      return await (dialectOf(db) === 'mysql' ? db.transaction(fn, { isolationLevel: 'read committed' }) : db.transaction(fn));
    } catch (err) {
      const code = dbErrorCode(err) ?? '';
      if (attempt >= attempts || !(RETRYABLE.has(code) || (opts.retryOnDuplicate && DUPLICATE.has(code)))) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * attempt));
    }
  }
}
