/**
 * Login throttling counters (table login_attempts, migration 0106): one row per key hash with the
 * start of its current window and the attempts made in it. Keys are SHA-256 hashes, so the table
 * holds no address or email.
 */
import type { Knex } from 'knex';
import { dialectOf } from './dialect.js';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';

export interface AttemptCount {
  /** Attempts in the current window, this one included. */
  attempts: number;
  /** Start of the current window (whole seconds, UTC). */
  windowStart: Date;
}

/** 'YYYY-MM-DD HH:MM:SS' (UTC, as both dialects return it) to a Date. */
function fromSql(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v).replace(' ', 'T') + 'Z');
}

/**
 * Counts one attempt against a key and returns the count with its window, atomically within trx:
 * a new key starts at 1 with the window at now; a key whose window started windowSeconds or more
 * before now (its window, [start, start + windowSeconds), is over) starts over at 1 / now; otherwise attempts + 1. The upsert holds the row lock until
 * trx ends (MySQL), and SQLite serialises writers, so concurrent attempts are counted one after the
 * other and each sees its own number.
 */
export async function registerAttemptWindow(trx: Knex, keyHash: string, now: Date, windowSeconds: number): Promise<AttemptCount> {
  const nowMs = Math.floor(now.getTime() / 1000) * 1000;
  const at = dateToSqlTimestamp(new Date(nowMs));
  const cutoff = dateToSqlTimestamp(new Date(nowMs - windowSeconds * 1000));
  if (dialectOf(trx) === 'mysql') {
    // MySQL/MariaDB apply ON DUPLICATE KEY UPDATE assignments left to right, each seeing the values
    // the previous ones set: attempts must be decided before window_start is moved.
    await trx.raw(
      'INSERT INTO login_attempts (key_hash, window_start, attempts) VALUES (?, ?, 1) ' +
        'ON DUPLICATE KEY UPDATE attempts = IF(window_start <= ?, 1, attempts + 1), window_start = IF(window_start <= ?, ?, window_start)',
      [keyHash, at, cutoff, cutoff, at],
    );
  } else {
    // SQLite evaluates every SET expression against the old row.
    await trx.raw(
      'INSERT INTO login_attempts (key_hash, window_start, attempts) VALUES (?, ?, 1) ' +
        'ON CONFLICT(key_hash) DO UPDATE SET attempts = CASE WHEN window_start <= ? THEN 1 ELSE attempts + 1 END, ' +
        'window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END',
      [keyHash, at, cutoff, cutoff, at],
    );
  }
  // Our own write is visible to this transaction (and nobody else can change the row before it ends).
  const row = await trx('login_attempts').where({ key_hash: keyHash }).first('attempts', 'window_start');
  if (!row) throw new Error('login_attempts row missing after upsert');
  return { attempts: Number(row.attempts), windowStart: fromSql(row.window_start) };
}

/** registerAttemptWindow, returning only the count. */
export async function registerAttempt(trx: Knex, keyHash: string, now: Date, windowSeconds: number): Promise<number> {
  return (await registerAttemptWindow(trx, keyHash, now, windowSeconds)).attempts;
}

/** Drops a key's counter (its next attempt starts a new window). */
export async function forgetAttempt(db: Knex, keyHash: string): Promise<void> {
  await db('login_attempts').where({ key_hash: keyHash }).delete();
}

/** Takes back one attempt of a key (never below 0); the window is left as it is. */
export async function releaseAttempt(db: Knex, keyHash: string): Promise<void> {
  // window_start is assigned explicitly so that no ON UPDATE CURRENT_TIMESTAMP could ever move it.
  await db('login_attempts')
    .where({ key_hash: keyHash })
    .update({ attempts: db.raw('CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END'), window_start: db.ref('window_start') });
}

/**
 * Deletes up to `limit` counters whose window started before `before` (an expired counter counts
 * the same as none). Rows are picked with a plain read and deleted by key, each rechecked, so only
 * those rows are locked. Returns how many were deleted.
 */
export async function purgeExpiredAttempts(db: Knex, before: Date, limit = 500): Promise<number> {
  const cutoff = dateToSqlTimestamp(before);
  const keys = (await db('login_attempts').where('window_start', '<', cutoff).limit(limit).pluck('key_hash')) as string[];
  if (keys.length === 0) return 0;
  return db('login_attempts').whereIn('key_hash', keys).andWhere('window_start', '<', cutoff).delete();
}
