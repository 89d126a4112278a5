/**
 * People and their accounts: creation, changes, deletion, passwords and sessions of users rows,
 * independent of HTTP (the admin API and `hms create-user` both call these). A doctor's or nurse's
 * account is its Practitioner and changes through the FHIR write path (practitioner-account.ts).
 * Every change that alters what a user may reach (role, status, deletion, password, patient link)
 * ends the user's sessions in the change's transaction and, after commit, tells every process to
 * drop what it cached for the user. docs/admin-api.md.
 */
import type { Knex } from 'knex';
import { FhirError, badRequest, gone, notFound, unprocessable } from '../fhir/outcome.js';
import { inTransaction } from '../db/transactions.js';
import {
  emailTaken, findAccount, insertAccount, isDuplicate, linkPatient, listAccounts, markAccountDeleted, patchAccount, patientLinkProblem,
  setPasswordHash, unlinkPatients, type AccountColumns, type AccountRow, type AccountStatus,
} from '../db/account-repository.js';
import { listUserSessions, revokeUserSessions } from '../db/session-repository.js';
import { AuditLog } from '../db/audit-log.js';
import { USER_COLUMN_SIZES } from '../mappers/practitioner-mapper.js';
import { sqlToInstant } from '../mappers/datatypes.js';
import { hashPassword, passwordProblem } from './passwords.js';
import { ROLES, type Role } from './principal.js';
import { userSubject, type RevocationBus } from './revocation.js';
import {
  createPractitionerAccount, deletePractitionerAccount, enterPractitionerView, isClinician, leavePractitionerView, updatePractitionerAccount,
  type AccountActor, type AccountAuditEvent,
} from './practitioner-account.js';

export type { AccountActor, AccountAuditEvent, AccountAuditSink } from './practitioner-account.js';

export const ACCOUNT_STATUSES = ['active', 'inactive', 'suspended'] as const satisfies readonly AccountStatus[];

/** What the account service needs from its host (the app or the CLI). */
export interface AccountsDeps {
  db: Knex;
  /** HMS_BCRYPT_COST. */
  bcryptCost: number;
  /** Revocations every process hears; tools that only create accounts need none. */
  revocations?: Pick<RevocationBus, 'publish'>;
  /** HMS_SESSION_IDLE, to tell live sessions from idle ones in listings (default 900). */
  sessionIdleSeconds?: number;
}

/** An account as the admin API answers it (the row's own fields, then links and times in the API's spelling): never a password hash. */
export interface UserView extends Pick<AccountRow, 'id' | 'email' | 'name' | 'role' | 'status' | 'department' | 'specialization' | 'phone'> {
  /** `Patient/{id}` of the record linked to a patient account, else null. */
  patient: string | null;
  /** `Practitioner/{id}` for doctors and nurses (the same row), else null. */
  practitioner: string | null;
  /** false until a password is set (Practitioners created through FHIR): such an account cannot log in. */
  has_password: boolean;
  last_login: string | null;
  created_at: string;
  updated_at: string;
}

export interface NewUser {
  email: string;
  password: string;
  name: string;
  role: string;
  department?: string | null;
  specialization?: string | null;
  phone?: string | null;
  /** `Patient/{id}`: links the account to that record (role patient only). */
  patient?: string;
}

export interface UserChanges {
  name?: string;
  department?: string | null;
  specialization?: string | null;
  phone?: string | null;
  status?: string;
  role?: string;
  /** `Patient/{id}` to link (role patient only), null to release the link. */
  patient?: string | null;
}

export interface UserListQuery {
  role?: string;
  status?: string;
  email?: string;
  /** Page size (1-200, default 50). */
  limit?: number;
  /** The next_cursor of the previous page. */
  cursor?: string;
}

export interface UserPage {
  users: UserView[];
  /** Pass as `cursor` for the next page; null on the last one. */
  next_cursor: string | null;
}

/** A session as listed for an admin (never its token or hash). */
export interface SessionView {
  id: string;
  ip_address: string | null;
  user_agent: string | null;
  created_at: string;
  expires_at: string;
  last_activity: string;
  /** Not revoked (logout, revocation). */
  active: boolean;
  /** Usable now: active, not past expires_at and not idle for longer than HMS_SESSION_IDLE. */
  live: boolean;
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const ID_RE = /^[A-Za-z0-9\-.]{1,36}$/;
const PATIENT_REF = /^Patient\/([A-Za-z0-9\-.]{1,36})$/;
export const MAX_PAGE = 200;
const USER = 'User';

const instant = (v: string | null): string | null => (v ? sqlToInstant(v)! : null);

/** The admin API's view of an account. */
export function userView(a: AccountRow): UserView {
  return {
    id: a.id, email: a.email, name: a.name, role: a.role, status: a.status, department: a.department, specialization: a.specialization,
    phone: a.phone, patient: a.patientId ? `Patient/${a.patientId}` : null, practitioner: isClinician(a.role) ? `Practitioner/${a.id}` : null,
    has_password: a.hasPassword, last_login: instant(a.lastLogin), created_at: instant(a.createdAt)!, updated_at: instant(a.updatedAt)!,
  };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw badRequest(`${field} must be one of ${allowed.join(', ')}, not '${value}'`, field);
  return value as T;
}

function text(value: unknown, field: string, max: number, required: boolean): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) {
    if (required) throw badRequest(`${field} cannot be null`, field);
    return null;
  }
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`${field} must be a non-empty string`, field);
  if (value.length > max) throw badRequest(`${field} must be at most ${max} characters`, field);
  return value;
}

function emailOf(value: unknown): string {
  const email = typeof value === 'string' ? value.trim() : '';
  if (!EMAIL_RE.test(email) || email.length > USER_COLUMN_SIZES.email) throw badRequest(`'${String(value)}' is not a valid email address`, 'email');
  return email;
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string') throw badRequest('password must be a string', 'password');
  const problem = passwordProblem(password);
  if (problem) throw badRequest(problem, 'password');
  return password;
}

function patientIdOf(ref: string): string {
  const m = PATIENT_REF.exec(ref);
  if (!m) throw unprocessable(`patient must be a reference 'Patient/{id}', not '${ref}'`, 'patient', 'value');
  return m[1]!;
}

const duplicateEmail = (): FhirError =>
  new FhirError(409, [{ severity: 'error', code: 'duplicate', diagnostics: 'Another user account already has this email address', expression: ['email'] }]);

async function linkOrRefuse(trx: Knex.Transaction, patientId: string, userId: string): Promise<void> {
  if (await linkPatient(trx, patientId, userId)) return;
  const problem = await patientLinkProblem(trx, patientId);
  throw unprocessable(problem === 'linked'
    ? `Patient/${patientId} is already linked to another user account`
    : `Patient/${patientId} does not exist or has been deleted`, 'patient', problem === 'linked' ? 'business-rule' : 'not-found');
}

/** The live account, or 404 (unknown) / 410 (deleted). */
async function liveAccount(db: Knex, id: string, forUpdate = false): Promise<AccountRow> {
  if (!ID_RE.test(id)) throw notFound(`User ${id} is not known`);
  const a = await findAccount(db, id, forUpdate);
  if (!a) throw notFound(`User ${id} is not known`);
  if (a.deletedAt) throw gone(`User ${id} has been deleted`);
  return a;
}

async function reread(db: Knex, id: string): Promise<UserView> {
  return userView((await findAccount(db, id))!);
}

/** Tells every process to drop what it cached for the user (after the change committed). */
async function announce(deps: AccountsDeps, userId: string): Promise<void> {
  await deps.revocations?.publish(userSubject(userId));
}

const privilegeChange = (id: string, data: Record<string, unknown>, patientId?: string | null): AccountAuditEvent =>
  ({ action: 'privilege-change', resourceType: USER, resourceId: id, patientId: patientId ?? null, success: true, additionalData: data });

/** Creates an account (bcrypt at HMS_BCRYPT_COST); a doctor or nurse as Practitioner version 1. 409 on a taken email, 422 on a bad patient link. */
export async function createUser(deps: AccountsDeps, actor: AccountActor, input: NewUser): Promise<UserView> {
  const email = emailOf(input.email);
  const password = checkPassword(input.password);
  const role = oneOf(String(input.role ?? ''), ROLES, 'role');
  const name = text(input.name, 'name', USER_COLUMN_SIZES.name, true);
  if (!name) throw badRequest('name is required', 'name');
  const columns = {
    name,
    department: text(input.department, 'department', USER_COLUMN_SIZES.department, false),
    specialization: text(input.specialization, 'specialization', USER_COLUMN_SIZES.specialization, false),
    phone: text(input.phone, 'phone', USER_COLUMN_SIZES.phone, false),
  };
  let patientId: string | undefined;
  if (input.patient !== undefined && input.patient !== null) {
    patientId = patientIdOf(input.patient);
    if (role !== 'patient') throw unprocessable(`Only a user with role patient can be linked to a patient record, not a ${role}`, 'patient', 'business-rule');
  }
  // bcrypt is slow on purpose: outside the transaction, so no lock waits for it
  const passwordHash = await hashPassword(password, deps.bcryptCost);
  const id = await inTransaction(deps.db, async (trx) => {
    if (await emailTaken(trx, email)) throw duplicateEmail();
    let userId: string;
    try {
      if (isClinician(role)) {
        userId = await createPractitionerAccount(trx, actor, { email, role, ...columns });
        await setPasswordHash(trx, userId, passwordHash);
      } else {
        userId = await insertAccount(trx, { email, passwordHash, role, ...columns });
      }
    } catch (err) {
      // a concurrent creation of the email got past the check; the driver's message holds the SQL and the hash
      if (isDuplicate(err)) throw duplicateEmail();
      throw err;
    }
    if (patientId) await linkOrRefuse(trx, patientId, userId);
    await actor.audit([{ action: 'user-create', resourceType: USER, resourceId: userId, patientId: patientId ?? null, success: true, additionalData: { role } }], trx);
    return userId;
  });
  return reread(deps.db, id);
}

/** One account; 404 unknown, 410 deleted. */
export async function getUser(deps: AccountsDeps, actor: AccountActor, id: string): Promise<UserView> {
  const a = await liveAccount(deps.db, id);
  await actor.audit([{ action: 'user-read', resourceType: USER, resourceId: id, success: true }]);
  return userView(a);
}

/** Accounts that are not deleted, filtered by role, status and email (whole, any case), paged by id. */
export async function listUsers(deps: AccountsDeps, actor: AccountActor, query: UserListQuery): Promise<UserPage> {
  const limit = query.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw badRequest(`limit must be a whole number from 1 to ${MAX_PAGE}`, 'limit');
  if (query.cursor !== undefined && !ID_RE.test(query.cursor)) throw badRequest('cursor is not one this server handed out', 'cursor');
  const rows = await listAccounts(deps.db, {
    role: query.role === undefined ? undefined : oneOf(query.role, ROLES, 'role'),
    status: query.status === undefined ? undefined : oneOf(query.status, ACCOUNT_STATUSES, 'status'),
    email: query.email, after: query.cursor, limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  const filters = (['role', 'status', 'email'] as const).filter((k) => query[k] !== undefined);
  // filter names only: an email is personal data
  await actor.audit([{ action: 'user-list', resourceType: USER, success: true, additionalData: { filters, count: page.length } }]);
  return { users: page.map(userView), next_cursor: rows.length > limit ? page[page.length - 1]!.id : null };
}

type Field = 'name' | 'department' | 'specialization' | 'phone' | 'status' | 'role';

/**
 * Changes an account. Nobody changes their own role or status (403). A role change, a status other
 * than active or a new patient link ends the user's sessions at once and writes a privilege-change row.
 */
export async function updateUser(deps: AccountsDeps, actor: AccountActor, id: string, changes: UserChanges): Promise<UserView> {
  const wanted: Partial<Record<Field, string | null>> = {};
  const set = (k: Field, v: string | null | undefined): void => { if (v !== undefined) wanted[k] = v; };
  set('name', text(changes.name, 'name', USER_COLUMN_SIZES.name, true));
  set('department', text(changes.department, 'department', USER_COLUMN_SIZES.department, false));
  set('specialization', text(changes.specialization, 'specialization', USER_COLUMN_SIZES.specialization, false));
  set('phone', text(changes.phone, 'phone', USER_COLUMN_SIZES.phone, false));
  if (changes.status !== undefined) wanted.status = oneOf(String(changes.status), ACCOUNT_STATUSES, 'status');
  if (changes.role !== undefined) wanted.role = oneOf(String(changes.role), ROLES, 'role');
  const newPatient = changes.patient === undefined ? undefined : changes.patient === null ? null : patientIdOf(changes.patient);

  const revoked = await inTransaction(deps.db, async (trx) => {
    const before = await liveAccount(trx, id, true);
    const changed = (Object.keys(wanted) as Field[]).filter((k) => wanted[k] !== before[k]);
    if (actor.principal?.userId === id && (changed.includes('role') || changed.includes('status'))) {
      throw new FhirError(403, 'Nobody may change their own role or status: ask another administrator', 'forbidden');
    }
    const role = (changed.includes('role') ? wanted.role : before.role) as Role;
    if (newPatient && role !== 'patient') throw unprocessable(`Only a user with role patient can be linked to a patient record, not a ${role}`, 'patient', 'business-rule');

    const columns: AccountColumns = Object.fromEntries(changed.map((k) => [k, wanted[k]]));
    if (changed.length) {
      const was = isClinician(before.role);
      const will = isClinician(role);
      if (was && will) await updatePractitionerAccount(trx, actor, id, columns);
      else if (was) await leavePractitionerView(trx, actor, id, columns);
      else if (will) await enterPractitionerView(trx, actor, id, columns);
      else await patchAccount(trx, id, columns);
    }

    // the link follows the role: an account that stops being a patient's releases its record
    let linkChanged = false;
    let released: string[] = [];
    const target = newPatient !== undefined ? newPatient : role !== 'patient' ? null : before.patientId;
    if (target !== before.patientId) {
      released = await unlinkPatients(trx, id);
      if (target) await linkOrRefuse(trx, target, id);
      linkChanged = true;
    }

    const statusChanged = changed.includes('status');
    const roleChanged = changed.includes('role');
    const revoke = roleChanged || linkChanged || (statusChanged && wanted.status !== 'active');
    const sessionsRevoked = revoke ? await revokeUserSessions(trx, id) : 0;
    const fields = [...changed, ...(linkChanged ? ['patient'] : [])];
    const events: AccountAuditEvent[] = [{ action: 'user-update', resourceType: USER, resourceId: id, success: true, additionalData: { changed: fields } }];
    if (roleChanged || statusChanged || linkChanged) {
      events.push(privilegeChange(id, {
        changed: fields.filter((f) => ['role', 'status', 'patient'].includes(f)),
        ...(roleChanged ? { role: { from: before.role, to: wanted.role } } : {}),
        ...(statusChanged ? { status: { from: before.status, to: wanted.status } } : {}),
        sessions_revoked: sessionsRevoked,
      }, target ?? released[0] ?? before.patientId));
    }
    await actor.audit(events, trx);
    return revoke;
  });
  if (revoked) await announce(deps, id);
  return reread(deps.db, id);
}

/**
 * Soft-deletes an account (users.deleted_at; a clinician through the FHIR write path, so
 * Practitioner/{id} reads 410). Its sessions end, its patient record is released. Nobody deletes
 * themselves (403). Deleting a deleted account succeeds again.
 */
export async function deleteUser(deps: AccountsDeps, actor: AccountActor, id: string): Promise<void> {
  if (actor.principal?.userId === id) throw new FhirError(403, 'Nobody may delete their own account: ask another administrator', 'forbidden');
  const revoked = await inTransaction(deps.db, async (trx) => {
    const before = ID_RE.test(id) ? await findAccount(trx, id, true) : undefined;
    if (!before) throw notFound(`User ${id} is not known`);
    if (before.deletedAt) {
      await actor.audit([{ action: 'user-delete', resourceType: USER, resourceId: id, success: true, additionalData: { alreadyDeleted: true } }], trx);
      return false;
    }
    if (isClinician(before.role)) await deletePractitionerAccount(trx, actor, id);
    else await markAccountDeleted(trx, id);
    const released = await unlinkPatients(trx, id);
    const sessionsRevoked = await revokeUserSessions(trx, id);
    await actor.audit([
      { action: 'user-delete', resourceType: USER, resourceId: id, success: true, additionalData: { role: before.role } },
      privilegeChange(id, { changed: released.length ? ['deleted', 'patient'] : ['deleted'], role: { from: before.role, to: null }, sessions_revoked: sessionsRevoked }, released[0]),
    ], trx);
    return true;
  });
  if (revoked) await announce(deps, id);
}

/** Sets a new password (the rules of passwords.ts: 400 otherwise), which also gives a Practitioner created through FHIR its login; ends every session of the user. */
export async function setPassword(deps: AccountsDeps, actor: AccountActor, id: string, password: unknown): Promise<void> {
  const checked = checkPassword(password);
  await liveAccount(deps.db, id);
  const passwordHash = await hashPassword(checked, deps.bcryptCost);
  await inTransaction(deps.db, async (trx) => {
    const before = await liveAccount(trx, id, true);
    await setPasswordHash(trx, id, passwordHash);
    const sessionsRevoked = await revokeUserSessions(trx, id);
    await actor.audit([
      { action: 'password-set', resourceType: USER, resourceId: id, success: true, additionalData: { first: !before.hasPassword } },
      privilegeChange(id, { changed: ['password'], sessions_revoked: sessionsRevoked }),
    ], trx);
  });
  await announce(deps, id);
}

const sqlMs = (s: string): number => Date.parse(String(s).replace(' ', 'T') + 'Z');

/** A user's sessions, newest first (at most 100), with whether each is still usable. */
export async function listSessions(deps: AccountsDeps, actor: AccountActor, id: string): Promise<SessionView[]> {
  await liveAccount(deps.db, id);
  const now = Date.now();
  const idleMs = (deps.sessionIdleSeconds ?? 900) * 1000;
  const sessions = (await listUserSessions(deps.db, id)).map((s): SessionView => ({
    id: s.id, ip_address: s.ipAddress, user_agent: s.userAgent, created_at: instant(s.createdAt)!, expires_at: instant(s.expiresAt)!,
    last_activity: instant(s.lastActivity)!, active: s.active, live: s.active && sqlMs(s.expiresAt) > now && now - sqlMs(s.lastActivity) < idleMs,
  }));
  await actor.audit([{ action: 'sessions-list', resourceType: USER, resourceId: id, success: true, additionalData: { count: sessions.length } }]);
  return sessions;
}

/** Ends every session of a user at once, on every process; the number ended. */
export async function revokeSessions(deps: AccountsDeps, actor: AccountActor, id: string): Promise<number> {
  const n = await inTransaction(deps.db, async (trx) => {
    await liveAccount(trx, id, true);
    const ended = await revokeUserSessions(trx, id);
    await actor.audit([{ action: 'sessions-revoke', resourceType: USER, resourceId: id, success: true, additionalData: { sessions_revoked: ended } }], trx);
    return ended;
  });
  await announce(deps, id);
  return n;
}

/** The actor of the server's own tools (`hms create-user`, `hms create-admin`): no principal, audit rows marked `via: cli`. */
export function toolActor(db: Knex): AccountActor {
  const log = new AuditLog(db);
  return {
    audit: (events, trx) => log.record(events.map((e) => ({ ...e, userId: null, additionalData: { ...(e.additionalData ?? {}), via: 'cli' } })), trx),
  };
}
