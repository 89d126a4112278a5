/**
 * Login throttling. Every login attempt is counted, per client IP and per account, BEFORE the
 * password is checked, in one transaction on the shared database: concurrent attempts are counted
 * one after the other (on every API process), so they cannot race past the limit. The account is the
 * user when the email names one (so spelling variants that the database matches to the same user
 * share one counter), else the normalised email: known and unknown emails are counted alike and
 * the throttle does not reveal which accounts exist. The IP has its own, higher limit
 * (HMS_LOGIN_MAX_FAILURES_PER_IP): many users behind one hospital NAT share it. A successful login
 * forgets its account's counter and takes its attempt back from the IP's; a failed one stays counted.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { inTransaction } from '../db/transactions.js';
import { forgetAttempt, purgeExpiredAttempts, registerAttemptWindow, releaseAttempt } from '../db/login-attempt-repository.js';

export interface ThrottleConfig {
  HMS_LOGIN_MAX_FAILURES: number;
  HMS_LOGIN_MAX_FAILURES_PER_IP: number;
  HMS_LOGIN_WINDOW: number;
}

export interface LoginClient {
  ip: string;
  email: string;
  /** The user the email names, when there is one. */
  userId?: string;
}

export interface GateResult {
  /** Both counters are within HMS_LOGIN_MAX_FAILURES. */
  allowed: boolean;
  /** When refused: whole seconds until every exceeded window has ended (0 when allowed). */
  retryAfter: number;
}

/** One expired-counter cleanup per this many gate calls, on average. */
const PURGE_ONE_IN = 100;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Counter key of a client address. */
export const ipKey = (ip: string): string => sha256(`ip:${ip}`);
/** Counter key of an email (trimmed, lower-cased). */
export const emailKey = (email: string): string => sha256(`email:${email.trim().toLowerCase()}`);
/** Counter key of the account an attempt is against: its user when known, else its email. */
export const accountKey = (client: LoginClient): string => (client.userId ? sha256(`user:${client.userId}`) : emailKey(client.email));

/**
 * Counts this attempt against the client's IP and the email, then says whether it may go on.
 * The keys are upserted in a fixed (sorted) order so two gates never wait on each other's rows
 * crosswise; a deadlock victim is retried by inTransaction.
 */
export async function loginGate(db: Knex, client: LoginClient, cfg: ThrottleConfig): Promise<GateResult> {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const window = cfg.HMS_LOGIN_WINDOW;
  const limits = new Map([[ipKey(client.ip), cfg.HMS_LOGIN_MAX_FAILURES_PER_IP], [accountKey(client), cfg.HMS_LOGIN_MAX_FAILURES]]);
  const keys = [...limits.keys()].sort();
  const counts = await inTransaction(db, async (trx) => {
    const out = [];
    for (const key of keys) out.push({ ...(await registerAttemptWindow(trx, key, now, window)), limit: limits.get(key)! });
    return out;
  }, { attempts: 5 });
  if (Math.random() * PURGE_ONE_IN < 1) {
    // housekeeping only: an expired counter behaves like a missing one
    await purgeExpiredAttempts(db, new Date(now.getTime() - window * 1000)).catch(() => undefined);
  }
  const exceeded = counts.filter((c) => c.attempts > c.limit);
  if (exceeded.length === 0) return { allowed: true, retryAfter: 0 };
  // A window that started at S (whole seconds) covers [S, S + window): it is over at S + window.
  const ends = Math.max(...exceeded.map((c) => c.windowStart.getTime() / 1000 + window));
  return { allowed: false, retryAfter: Math.max(1, Math.ceil(ends - now.getTime() / 1000)) };
}

/** After a successful login: forget the account's counter and take this attempt back from the IP's. */
export async function loginSucceeded(db: Knex, client: LoginClient): Promise<void> {
  await forgetAttempt(db, accountKey(client));
  await releaseAttempt(db, ipKey(client.ip));
}
