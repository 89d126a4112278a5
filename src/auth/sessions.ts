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

/** The user behind a live token, refreshing its idle clock; undefined when unknown, expired, idle or revoked. */
export async function authenticateToken(db: Knex, token: string, idleSeconds: number): Promise<SessionUser | undefined> {
  const now = new Date();
  const session = await findLiveSession(db, hashToken(token), now, idleSeconds);
  if (!session) return undefined;
  const last = Date.parse(String(session.lastActivity).replace(' ', 'T') + 'Z');
  if (!(now.getTime() - last < TOUCH_INTERVAL_MS)) await touchSession(db, session.sessionId, now);
  return session;
}

/** Revokes the session of a token; the id of its user when it was live, else undefined. */
export async function endSession(db: Knex, token: string): Promise<string | undefined> {
  return revokeSession(db, hashToken(token));
}
