/** break_glass_grants rows: emergency access of one clinician to one patient, for a time. */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';
import type { BreakGlassGrant } from '../auth/principal.js';

const sqlTime = (s: unknown): number => Date.parse(String(s).replace(' ', 'T') + 'Z');

/** The grants of a user in force at `now`. */
export async function activeGrants(db: Knex, userId: string, now: Date): Promise<BreakGlassGrant[]> {
  const rows = (await db('break_glass_grants').where('user_id', userId).andWhere('expires_at', '>', dateToSqlTimestamp(now))
    .select('patient_id', 'expires_at')) as { patient_id: string; expires_at: string }[];
  return rows.map((r) => ({ patientId: String(r.patient_id), expiresAt: sqlTime(r.expires_at) }));
}

export interface GrantRecord {
  id: string;
  userId: string;
  patientId: string;
  reason: string;
  grantedAt: string;
  expiresAt: string;
  ipAddress: string | null;
}

/** Records a grant; returns it. */
export async function insertGrant(db: Knex, g: { userId: string; patientId: string; reason: string; now: Date; minutes: number; ip?: string }): Promise<GrantRecord> {
  const row = {
    id: uuidv7(), user_id: g.userId, patient_id: g.patientId, reason: g.reason,
    granted_at: dateToSqlTimestamp(g.now), expires_at: dateToSqlTimestamp(new Date(g.now.getTime() + g.minutes * 60_000)),
    ip_address: g.ip?.slice(0, 45) ?? null,
  };
  await db('break_glass_grants').insert(row);
  return recordOf(row);
}

function recordOf(r: Record<string, unknown>): GrantRecord {
  return {
    id: String(r.id), userId: String(r.user_id), patientId: String(r.patient_id), reason: String(r.reason),
    grantedAt: String(r.granted_at), expiresAt: String(r.expires_at), ipAddress: (r.ip_address as string | null) ?? null,
  };
}

/** Grants for review, newest first, optionally of one user or patient, or only those in force. */
export async function listGrants(db: Knex, opts: { userId?: string; patientId?: string; activeAt?: Date; limit: number; before?: string }): Promise<GrantRecord[]> {
  const q = db('break_glass_grants').orderBy('id', 'desc').limit(opts.limit);
  if (opts.userId) q.where('user_id', opts.userId);
  if (opts.patientId) q.where('patient_id', opts.patientId);
  if (opts.activeAt) q.where('expires_at', '>', dateToSqlTimestamp(opts.activeAt));
  if (opts.before) q.where('id', '<', opts.before);
  return ((await q) as Record<string, unknown>[]).map(recordOf);
}
