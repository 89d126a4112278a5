/** users rows: lookup and creation of accounts. */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { UserModel } from './models.js';
import { nowSeconds } from './resource-repository.js';

export type Role = 'admin' | 'doctor' | 'nurse' | 'patient' | 'finance';

export interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  name: string;
  role: Role;
  status: 'active' | 'inactive' | 'suspended';
  deleted_at: string | null;
}

/**
 * The not deleted user with this email (case-insensitive), whatever its status: the login throttle
 * counts attempts against the account, and the login lets only an `active` one in, as
 * findLiveSession lets only sessions of active, not deleted users through.
 */
export async function findLoginUser(db: Knex, email: string): Promise<UserRow | undefined> {
  const row = await UserModel.query(db).whereRaw('LOWER(email) = ?', [email.toLowerCase()]).whereNull('deleted_at').first();
  return row as unknown as UserRow | undefined;
}

/** Inserts a user; returns its id. Throws 'duplicate-email' when the email is taken. */
export async function insertUser(db: Knex, user: { email: string; passwordHash: string; name: string; role: Role }): Promise<string> {
  const existing = await UserModel.query(db).whereRaw('LOWER(email) = ?', [user.email.toLowerCase()]).first();
  if (existing) throw new Error('duplicate-email');
  const id = uuidv7();
  const at = nowSeconds().sql;
  try {
    await UserModel.query(db).insert({
      id, email: user.email, password_hash: user.passwordHash, name: user.name, role: user.role, status: 'active',
      created_at: at, updated_at: at,
    });
  } catch (err) {
    // A concurrent insert of the same email got past the check above; the unique key caught it. The
    // driver's message holds the SQL (with the password hash), so it must not travel further.
    const code = (err as { code?: string; nativeError?: { code?: string } }).nativeError?.code ?? (err as { code?: string }).code;
    if (code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE') throw new Error('duplicate-email');
    throw err;
  }
  return id;
}

/** Records a successful login time. */
export async function touchLastLogin(db: Knex, userId: string): Promise<void> {
  // keep updated_at: MySQL's ON UPDATE would otherwise move the Practitioner's lastUpdated without a new version
  await UserModel.query(db).patch({ last_login: nowSeconds().sql, updated_at: db.raw('??', ['updated_at']) }).where('id', userId);
}

/** Whether a user is a doctor or nurse, not deleted (a Practitioner a clinical record may name). */
export async function isClinicianUser(db: Knex, userId: string): Promise<boolean> {
  return (await db('users').where({ id: userId }).whereIn('role', ['doctor', 'nurse']).whereNull('deleted_at').first('id')) !== undefined;
}
