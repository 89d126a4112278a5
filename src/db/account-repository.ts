/**
 * users rows as accounts (the admin API): lookups, listing, plain column changes and the link of a
 * patient account to its patients row. password_hash never leaves this module: reads report only
 * whether the account has a password at all.
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { dialectOf } from './dialect.js';
import { dbErrorCode } from './transactions.js';
import { nowSeconds } from './resource-repository.js';
import { NO_PASSWORD } from '../mappers/practitioner-mapper.js';
import type { Role } from '../auth/principal.js';

export type AccountStatus = 'active' | 'inactive' | 'suspended';

/** A users row as the admin API sees it (no password hash). */
export interface AccountRow {
  id: string;
  email: string;
  name: string;
  role: Role;
  status: AccountStatus;
  department: string | null;
  specialization: string | null;
  phone: string | null;
  /** patients.id of the (not deleted) record linked to the account, if any. */
  patientId: string | null;
  /** Whether a password was ever set (false for Practitioners created through FHIR). */
  hasPassword: boolean;
  lastLogin: string | null;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

/** The columns of users an account change may write. */
export interface AccountColumns {
  name?: string;
  role?: Role;
  status?: AccountStatus;
  department?: string | null;
  specialization?: string | null;
  phone?: string | null;
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function selectAccount(db: Knex, q: Knex.QueryBuilder): Knex.QueryBuilder {
  return q.select(
    'u.id', 'u.email', 'u.name', 'u.role', 'u.status', 'u.department', 'u.specialization', 'u.phone',
    'u.last_login', 'u.created_at', 'u.updated_at', 'u.deleted_at',
    db.raw('CASE WHEN u.password_hash = ? THEN 0 ELSE 1 END AS has_password', [NO_PASSWORD]),
    db('patients as p').min('p.id').where('p.user_id', db.ref('u.id')).whereNull('p.deleted_at').as('patient_id'),
  );
}

function accountOf(r: Record<string, unknown>): AccountRow {
  return {
    id: String(r.id), email: String(r.email), name: String(r.name), role: r.role as Role, status: (r.status ?? 'active') as AccountStatus,
    department: str(r.department), specialization: str(r.specialization), phone: str(r.phone), patientId: str(r.patient_id),
    hasPassword: Number(r.has_password) === 1, lastLogin: str(r.last_login), createdAt: String(r.created_at), updatedAt: String(r.updated_at),
    deletedAt: str(r.deleted_at),
  };
}

/** One account by id (deleted ones included); `forUpdate` locks the row until the transaction ends (MySQL). */
export async function findAccount(db: Knex, id: string, forUpdate = false): Promise<AccountRow | undefined> {
  const q = selectAccount(db, db('users as u').where('u.id', id)).first();
  // the seed's case-insensitive collation would let 'ABC' find 'abc'; ids are exact
  if (dialectOf(db) === 'mysql') q.andWhereRaw('BINARY u.id = BINARY ?', [id]);
  if (forUpdate && dialectOf(db) === 'mysql') q.forUpdate();
  const r = (await q) as Record<string, unknown> | undefined;
  return r ? accountOf(r) : undefined;
}

/** Whether any user (deleted ones too: the unique key covers them) has this email, ignoring case. */
export async function emailTaken(db: Knex, email: string): Promise<boolean> {
  return Boolean(await db('users').whereRaw('LOWER(email) = ?', [email.toLowerCase()]).first('id'));
}

/** Whether an error is the unique key of users.email refusing a second account. */
export const isDuplicate = (err: unknown): boolean => ['ER_DUP_ENTRY', 'SQLITE_CONSTRAINT_UNIQUE'].includes(dbErrorCode(err) ?? '');

/** Inserts a plain (not Practitioner) users row; returns its id. The unique key refuses a taken email. */
export async function insertAccount(trx: Knex, a: { email: string; passwordHash: string } & Required<Pick<AccountColumns, 'name' | 'role'>> & AccountColumns): Promise<string> {
  const id = uuidv7();
  const at = nowSeconds().sql;
  await trx('users').insert({
    id, email: a.email, password_hash: a.passwordHash, name: a.name, role: a.role, status: a.status ?? 'active',
    department: a.department ?? null, specialization: a.specialization ?? null, phone: a.phone ?? null, created_at: at, updated_at: at,
  });
  return id;
}

/**
 * Writes columns of a users row outside the FHIR write path (accounts that are not Practitioners,
 * or the step of a role change that moves a row out of the Practitioner view).
 */
export async function patchAccount(trx: Knex, id: string, columns: AccountColumns & { deleted_at?: string | null; version_id?: number }): Promise<void> {
  await trx('users').where('id', id).update({ ...columns, updated_at: nowSeconds().sql });
}

/** Stores a new password hash without moving updated_at (the Practitioner view does not show it). */
export async function setPasswordHash(trx: Knex, id: string, passwordHash: string): Promise<void> {
  // keep updated_at: MySQL's ON UPDATE would otherwise move the Practitioner's lastUpdated without a new version
  await trx('users').where('id', id).update({ password_hash: passwordHash, updated_at: trx.raw('??', ['updated_at']) });
}

/** Marks a plain users row deleted (Practitioners are deleted through the FHIR write path). */
export async function markAccountDeleted(trx: Knex, id: string): Promise<void> {
  const at = nowSeconds().sql;
  await trx('users').where('id', id).update({ deleted_at: at, updated_at: at });
}

export interface AccountFilter {
  role?: Role;
  status?: AccountStatus;
  email?: string;
  /** Keyset paging: only ids after this one. */
  after?: string;
  limit: number;
}

/** Accounts that are not deleted, by id, at most `limit` of them. */
export async function listAccounts(db: Knex, f: AccountFilter): Promise<AccountRow[]> {
  const q = selectAccount(db, db('users as u').whereNull('u.deleted_at')).orderBy('u.id').limit(f.limit);
  if (f.role) q.where('u.role', f.role);
  if (f.status) q.where('u.status', f.status);
  if (f.email) q.whereRaw('LOWER(u.email) = ?', [f.email.toLowerCase()]);
  if (f.after) q.where('u.id', '>', f.after);
  return ((await q) as Record<string, unknown>[]).map(accountOf);
}

/** Why a patients row cannot be linked to an account, or undefined when it can. */
export async function patientLinkProblem(db: Knex, patientId: string): Promise<'missing' | 'linked' | undefined> {
  const q = db('patients').where('id', patientId).whereNull('deleted_at').first('id', 'user_id');
  if (dialectOf(db) === 'mysql') q.andWhereRaw('BINARY id = BINARY ?', [patientId]);
  const row = (await q) as { id: string; user_id: string | null } | undefined;
  if (!row) return 'missing';
  return row.user_id ? 'linked' : undefined;
}

/**
 * Links a patients row to an account if it is there, not deleted and not linked yet; false
 * otherwise. One conditional UPDATE: of two concurrent links of one patient, the second waits for
 * the first's row lock (MySQL) or its write lock (SQLite) and then finds user_id set.
 */
export async function linkPatient(trx: Knex, patientId: string, userId: string): Promise<boolean> {
  const q = trx('patients').where('id', patientId).whereNull('deleted_at').whereNull('user_id');
  if (dialectOf(trx) === 'mysql') q.andWhereRaw('BINARY id = BINARY ?', [patientId]);
  // keep updated_at: the link is not part of the Patient resource, so its lastUpdated must not move
  const n = await q.update({ user_id: userId, updated_at: trx.raw('??', ['updated_at']) });
  return Number(n) === 1;
}

/** Releases every patients row linked to an account; the ids released. */
export async function unlinkPatients(trx: Knex, userId: string): Promise<string[]> {
  const ids = ((await trx('patients').where('user_id', userId).select('id')) as { id: string }[]).map((r) => String(r.id));
  if (ids.length) await trx('patients').where('user_id', userId).update({ user_id: null, updated_at: trx.raw('??', ['updated_at']) });
  return ids;
}
