/** Login sessions: opaque 256-bit bearer tokens, kept only as SHA-256 hashes. */
import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { findLiveSession, insertSession, revokeSession, touchSession, type SessionUser } from '../db/session-repository.js';
import { activeGrants } from '../db/break-glass-repository.js';
import { AuthCache } from './auth-cache.js';
import { CLINICIAN_ROLES, type UserPrincipal } from './principal.js';
import { userSubject } from './revocation.js';

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

/** A session as cached: the principal and the idle clock this process keeps for it. */
export interface CachedSession { principal: UserPrincipal; lastActivity: number }

export type SessionCache = AuthCache<CachedSession>;

/** A cache of session checks: `ttlMs` per entry, used only while `live()` says revocations reach this process. */
export function sessionCache(ttlMs: number, live: () => boolean = () => true, maxEntries?: number): SessionCache {
  return new AuthCache<CachedSession>(ttlMs, live, maxEntries);
}

async function principalOf(db: Knex, session: SessionUser, now: number): Promise<UserPrincipal> {
  const grants = CLINICIAN_ROLES.includes(session.role) ? await activeGrants(db, session.userId, new Date(now)) : [];
  return {
    kind: 'user', userId: session.userId, role: session.role, sessionId: session.sessionId,
    ...(session.patientId ? { patientId: session.patientId } : {}), grants,
  };
}

/**
 * The user behind a live token, refreshing its idle clock; undefined when unknown, expired, idle
 * or revoked. Grants that expire while cached stop counting at their expiry (see fhir/access.ts).
 */
export async function authenticateToken(db: Knex, token: string, idleSeconds: number, cache?: SessionCache): Promise<UserPrincipal | undefined> {
  const now = Date.now();
  const tokenHash = hashToken(token);
  const cached = cache?.get(tokenHash, now);
  if (cached && now - cached.lastActivity < idleSeconds * 1000) {
    if (now - cached.lastActivity >= TOUCH_INTERVAL_MS) {
      await touchSession(db, cached.principal.sessionId, new Date(now));
      cached.lastActivity = now;
    }
    return cached.principal;
  }
  const session = await findLiveSession(db, tokenHash, new Date(now), idleSeconds);
  if (!session) return undefined;
  let lastActivity = sqlTime(session.lastActivity);
  if (!(now - lastActivity < TOUCH_INTERVAL_MS)) {
    await touchSession(db, session.sessionId, new Date(now));
    lastActivity = now;
  }
  const principal = await principalOf(db, session, now);
  cache?.set(tokenHash, { principal, lastActivity }, userSubject(session.userId), now, sqlTime(session.expiresAt));
  return principal;
}

/** Revokes the session of a token; the id of its user when it was live, else undefined. */
export async function endSession(db: Knex, token: string, cache?: SessionCache): Promise<string | undefined> {
  cache?.forget(hashToken(token));
  return revokeSession(db, hashToken(token));
}
