/** Login sessions: opaque 256-bit bearer tokens, kept only as SHA-256 hashes. */
import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { findLiveSession, insertSession, revokeSession, touchSession, type SessionUser } from '../db/session-repository.js';

/** last_activity is written at most this often per session (it backs the idle timeout). */
const TOUCH_INTERVAL_MS = 30_000;

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Starts a session; returns the token, which is shown once and never stored. */
export async function startSession(db: Knex, userId: string, opts: { ip?: string; userAgent?: string; ttlSeconds: number }): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await insertSession(db, { userId, tokenHash: hashToken(token), ip: opts.ip, userAgent: opts.userAgent, now: new Date(), ttlSeconds: Math.min(opts.ttlSeconds, 86_400) });
  return token;
}

const sqlTime = (s: string): number => Date.parse(String(s).replace(' ', 'T') + 'Z');

interface CachedSession { session: SessionUser; validUntil: number; lastActivity: number }

/**
 * Live sessions this process has checked in the last few seconds, so that a burst of requests
 * with one token costs one session lookup. A logout through this process drops the entry at once;
 * a revocation elsewhere (another process, a suspension in the database) is seen within `ttlMs`.
 */
export class SessionCache {
  private readonly entries = new Map<string, CachedSession>();
  /** Tokens logged out here, kept as long as a cached entry could live, so a lookup already in flight cannot put them back. */
  private readonly revoked = new Map<string, number>();

  constructor(private readonly ttlMs: number, private readonly maxEntries = 10_000) {}

  get(tokenHash: string, now: number): CachedSession | undefined {
    const hit = this.entries.get(tokenHash);
    if (hit && hit.validUntil > now) return hit;
    if (hit) this.entries.delete(tokenHash);
    return undefined;
  }

  set(tokenHash: string, session: SessionUser, now: number): void {
    if (this.ttlMs <= 0) return;
    const revokedUntil = this.revoked.get(tokenHash);
    if (revokedUntil !== undefined) {
      if (revokedUntil > now) return;
      this.revoked.delete(tokenHash);
    }
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    const validUntil = Math.min(now + this.ttlMs, sqlTime(session.expiresAt));
    this.entries.set(tokenHash, { session, validUntil, lastActivity: sqlTime(session.lastActivity) });
  }

  /** Drops a token at once and keeps it out for the cache's lifetime. */
  forget(tokenHash: string, now = Date.now()): void {
    this.entries.delete(tokenHash);
    if (this.ttlMs <= 0) return;
    if (this.revoked.size >= this.maxEntries) this.revoked.delete(this.revoked.keys().next().value!);
    this.revoked.set(tokenHash, now + this.ttlMs);
  }
}

/** The user behind a live token, refreshing its idle clock; undefined when unknown, expired, idle or revoked. */
export async function authenticateToken(db: Knex, token: string, idleSeconds: number, cache?: SessionCache): Promise<SessionUser | undefined> {
  const now = Date.now();
  const tokenHash = hashToken(token);
  const cached = cache?.get(tokenHash, now);
  if (cached && now - cached.lastActivity < idleSeconds * 1000) {
    if (now - cached.lastActivity >= TOUCH_INTERVAL_MS) {
      await touchSession(db, cached.session.sessionId, new Date(now));
      cached.lastActivity = now;
    }
    return cached.session;
  }
  const session = await findLiveSession(db, tokenHash, new Date(now), idleSeconds);
  if (!session) return undefined;
  if (!(now - sqlTime(session.lastActivity) < TOUCH_INTERVAL_MS)) {
    await touchSession(db, session.sessionId, new Date(now));
    session.lastActivity = new Date(now).toISOString().slice(0, 19).replace('T', ' ');
  }
  cache?.set(tokenHash, session, now);
  return session;
}

/** Revokes the session of a token; the id of its user when it was live, else undefined. */
export async function endSession(db: Knex, token: string, cache?: SessionCache): Promise<string | undefined> {
  cache?.forget(hashToken(token));
  return revokeSession(db, hashToken(token));
}
