/** user_sessions rows: opaque bearer sessions, stored by the SHA-256 of their token only. */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { UserSessionModel } from './models.js';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';
import type { Role } from '../auth/principal.js';

export interface SessionUser {
  sessionId: string;
  userId: string;
  role: Role;
  lastActivity: string;
  expiresAt: string;
  /** patients.id of the record linked to the account (role patient), or null. */
  patientId: string | null;
}

export async function insertSession(db: Knex, s: { userId: string; tokenHash: string; ip?: string; userAgent?: string; now: Date; ttlSeconds: number }): Promise<void> {
  await UserSessionModel.query(db).insert({
    id: uuidv7(),
    user_id: s.userId,
    session_token: s.tokenHash,
    ip_address: s.ip?.slice(0, 45) ?? null,
    user_agent: s.userAgent ?? null,
    created_at: dateToSqlTimestamp(s.now),
    expires_at: dateToSqlTimestamp(new Date(s.now.getTime() + s.ttlSeconds * 1000)),
    last_activity: dateToSqlTimestamp(s.now),
    is_active: true,
  });
}

/** The live session of a token hash: active, not expired, not idle too long, user active. */
export async function findLiveSession(db: Knex, tokenHash: string, now: Date, idleSeconds: number): Promise<SessionUser | undefined> {
  const row = await db('user_sessions as s')
    .join('users as u', 'u.id', 's.user_id')
    .leftJoin('patients as p', (j) => { j.on('p.user_id', '=', 'u.id').andOnNull('p.deleted_at'); })
    .where('s.session_token', tokenHash)
    .andWhere('s.is_active', true)
    .andWhere('s.expires_at', '>', dateToSqlTimestamp(now))
    .andWhere('s.last_activity', '>', dateToSqlTimestamp(new Date(now.getTime() - idleSeconds * 1000)))
    .andWhere('u.status', 'active')
    .whereNull('u.deleted_at')
    .first('s.id as sessionId', 'u.id as userId', 'u.role as role', 's.last_activity as lastActivity', 's.expires_at as expiresAt', 'p.id as patientId');
  return row as SessionUser | undefined;
}

/** Why a token's session is not live (for the security log of a refused request), and whose it was. */
export async function deadSessionReason(db: Knex, tokenHash: string, now: Date, idleSeconds: number): Promise<{ userId: string; action: 'session-expired' | 'session-ended'; reason: string } | undefined> {
  const row = (await db('user_sessions as s').join('users as u', 'u.id', 's.user_id').where('s.session_token', tokenHash)
    .first('s.user_id', 's.is_active', 's.expires_at', 's.last_activity', 'u.status', 'u.deleted_at')) as Record<string, unknown> | undefined;
  if (!row) return undefined;
  const userId = String(row.user_id);
  if (!Number(row.is_active)) return { userId, action: 'session-ended', reason: 'logged out or revoked' };
  if (row.deleted_at !== null || row.status !== 'active') return { userId, action: 'session-ended', reason: `account ${row.deleted_at !== null ? 'deleted' : String(row.status)}` };
  if (String(row.expires_at) <= dateToSqlTimestamp(now)) return { userId, action: 'session-expired', reason: 'absolute expiry' };
  if (String(row.last_activity) <= dateToSqlTimestamp(new Date(now.getTime() - idleSeconds * 1000))) return { userId, action: 'session-expired', reason: 'idle timeout (automatic logoff)' };
  return undefined;
}

export async function touchSession(db: Knex, sessionId: string, now: Date): Promise<void> {
  await db('user_sessions').where('id', sessionId).update({ last_activity: dateToSqlTimestamp(now) });
}

/** Revokes a session; the id of its user when it was live (for the security log), else undefined. */
export async function revokeSession(db: Knex, tokenHash: string): Promise<string | undefined> {
  const row = (await db('user_sessions').where({ session_token: tokenHash, is_active: true }).first('id', 'user_id')) as { id: string; user_id: string } | undefined;
  if (!row) return undefined;
  const n = await db('user_sessions').where({ id: row.id, is_active: true }).update({ is_active: false });
  return n > 0 ? row.user_id : undefined;
}

/** Ends every active session of a user; the number ended. */
export async function revokeUserSessions(db: Knex, userId: string): Promise<number> {
  return db('user_sessions').where({ user_id: userId, is_active: true }).update({ is_active: false });
}

export interface SessionSummary {
  id: string;
  ipAddress: string | null;
  userAgent: string | null;
  createdAt: string;
  expiresAt: string;
  lastActivity: string;
  active: boolean;
}

/** A user's sessions, newest first (never their token hashes). */
export async function listUserSessions(db: Knex, userId: string, limit = 100): Promise<SessionSummary[]> {
  const rows = (await db('user_sessions').where({ user_id: userId }).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit)
    .select('id', 'ip_address', 'user_agent', 'created_at', 'expires_at', 'last_activity', 'is_active')) as Record<string, unknown>[];
  return rows.map((r) => ({
    id: String(r.id), ipAddress: (r.ip_address as string | null) ?? null, userAgent: (r.user_agent as string | null) ?? null,
    createdAt: String(r.created_at), expiresAt: String(r.expires_at), lastActivity: String(r.last_activity), active: Boolean(Number(r.is_active)),
  }));
}
