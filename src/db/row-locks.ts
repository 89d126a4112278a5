/**
 * Row locks of batch jobs that several workers may run at once: whether the server can skip the
 * rows another transaction holds (SELECT ... FOR UPDATE SKIP LOCKED: MariaDB 10.6+, MySQL
 * 8.0.1+), so that a second runner takes other rows instead of waiting for the first one's.
 * SQLite has no row locks (a writer holds the whole database).
 */
import type { Knex } from 'knex';
import { dialectOf } from './dialect.js';

const known = new WeakMap<Knex, Promise<boolean>>();

/** Whether `db` understands SKIP LOCKED (asked once per knex instance). */
export function supportsSkipLocked(db: Knex): Promise<boolean> {
  if (dialectOf(db) === 'sqlite') return Promise.resolve(false);
  let answer = known.get(db);
  if (!answer) {
    answer = db.raw('SELECT VERSION() AS v').then((res: [Record<string, unknown>[]]) => skipLockedIn(String(res[0][0]?.v ?? '')));
    answer.catch(() => known.delete(db));
    known.set(db, answer);
  }
  return answer;
}

/** Whether a server of this VERSION() has SKIP LOCKED. */
export function skipLockedIn(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = (/^(\d+)\.(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
  const n = major * 10_000 + minor * 100 + patch;
  return /mariadb/i.test(version) ? n >= 100_600 : n >= 80_001;
}
