/** Practitioner, over the users table (role doctor or nurse). https://hl7.org/fhir/R4/practitioner.html */
import { defineResource, type ColumnSearchParam, type TokenValue } from '../registry.js';
import { ALL_INTERACTIONS, identifierParam } from './common.js';
import {
  NO_PASSWORD, PRACTITIONER_EXTENSIONS, PRACTITIONER_ROLES, STATUS_CODES, USER_COLUMN_SIZES, practitionerFromRow, practitionerToRow,
  telecomValue, type Practitioner,
} from '../../mappers/practitioner-mapper.js';
import { PRACTITIONER_ROLE_SYSTEM } from '../../mappers/practitioner-role-mapper.js';
import { extensionValue, HMS_CANONICAL } from '../../mappers/datatypes.js';
import { checkOneOf } from '../checks.js';
import { FhirError, unprocessable } from '../outcome.js';
import type { ContactPoint, HumanName } from '../types.js';
import { revokeUserSessions } from '../../db/session-repository.js';

const names = (p: Practitioner): HumanName[] => p.name ?? [];
const strings = (list: (string | undefined)[]): string[] => list.filter((s): s is string => typeof s === 'string' && s !== '');
const telecomTokens = (p: Practitioner): TokenValue[] =>
  (p.telecom ?? []).filter((t: ContactPoint) => t.value).map((t) => ({ system: t.system, code: t.value! }));

/** Which users rows are Practitioners (and PractitionerRoles). */
export const PRACTITIONER_ROWS = { role: [...PRACTITIONER_ROLES] };

/**
 * A token parameter over a users column that matches without regard to case on both databases
 * (MySQL's collation ignores case; SQLite compares the lower-cased column).
 */
function caseInsensitiveToken(column: string, match: (system: string | undefined) => boolean): Pick<ColumnSearchParam, 'column' | 'sql' | 'tokenToColumn'> {
  return {
    column,
    sql: { mysql: `t.${column}`, sqlite: `LOWER(t.${column})` },
    tokenToColumn: (system, code) => (match(system) ? [code.toLowerCase()] : []),
  };
}

/**
 * The column-backed parameters Practitioner and PractitionerRole share: they read the users row
 * itself, so they also find users written natively (not through the API).
 */
export function userColumnParams(type: 'Practitioner' | 'PractitionerRole'): ColumnSearchParam[] {
  const own = type === 'Practitioner';
  return [
    {
      name: 'email', source: 'column', type: 'token', expression: `${type}.telecom.where(system='email')`,
      description: 'The email address of the user account (the login; case-insensitive)',
      ...caseInsensitiveToken('email', (s) => !s || s === 'email'),
    },
    {
      name: 'phone', source: 'column', type: 'token', column: 'phone', expression: `${type}.telecom.where(system='phone')`,
      description: 'The phone number of the user account (exact)',
      tokenToColumn: (system, code) => (!system || system === 'phone' ? [code] : []),
    },
    {
      name: 'active', source: 'column', type: 'token', column: 'status', expression: `${type}.active`,
      description: 'Whether the user account is active (false: inactive or suspended)',
      tokenToColumn: (_system, code) => (code === 'true' ? ['active'] : code === 'false' ? ['inactive', 'suspended'] : undefined),
    },
    {
      name: 'role', source: 'column', type: 'token', column: 'role',
      expression: own ? `Practitioner.extension('${PRACTITIONER_EXTENSIONS.role}')` : 'PractitionerRole.code',
      ...(own ? { definition: `${HMS_CANONICAL}/SearchParameter/Practitioner-role` } : {}),
      description: `doctor | nurse (codes of ${PRACTITIONER_ROLE_SYSTEM})`,
      tokenToColumn: (system, code) => ((!system || system === PRACTITIONER_ROLE_SYSTEM) && (PRACTITIONER_ROLES as readonly string[]).includes(code) ? [code] : []),
    },
    {
      name: 'specialty', source: 'column', type: 'token',
      expression: own ? 'Practitioner.qualification[0].code' : 'PractitionerRole.specialty',
      // R4's PractitionerRole specialty matches codings (system|code); HMS holds free text: both are HMS parameters
      definition: `${HMS_CANONICAL}/SearchParameter/${type}-specialty`,
      description: 'The specialization (users.specialization): the whole text, case-insensitive, given without a system (a system|code matches nothing)',
      ...caseInsensitiveToken('specialization', (s) => !s),
    },
  ];
}

export const PractitionerDefinition = defineResource<Practitioner>({
  type: 'Practitioner',
  table: 'users',
  rowFilter: PRACTITIONER_ROWS,
  profile: 'http://hl7.org/fhir/StructureDefinition/Practitioner',
  description: 'A doctor or nurse of the hospital (users table, role doctor or nurse); creating one creates a user account that cannot log in until an admin sets its password',
  interactions: ALL_INTERACTIONS,
  softDelete: true,
  // a new user gets a password no password matches; updates never touch password_hash
  storage: { insertRow: async (trx, _id, row) => { await trx('users').insert({ ...row, password_hash: NO_PASSWORD }); } },
  toRow: practitionerToRow,
  fromRow: practitionerFromRow,
  check(p) {
    const email = telecomValue(p, 'email');
    if (!email) {
      throw unprocessable('A Practitioner needs an email address (a telecom with system email): it is the login of its user account', 'Practitioner.telecom', 'required');
    }
    if (email.length > USER_COLUMN_SIZES.email) throw unprocessable(`The email address is longer than ${USER_COLUMN_SIZES.email} characters`, 'Practitioner.telecom', 'too-long');
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw unprocessable(`'${email}' is not an email address`, 'Practitioner.telecom', 'value');
    checkOneOf(extensionValue(p, PRACTITIONER_EXTENSIONS.role, 'valueCode'), PRACTITIONER_ROLES, `Practitioner.extension('${PRACTITIONER_EXTENSIONS.role}')`);
    const status = extensionValue(p, PRACTITIONER_EXTENSIONS.status, 'valueCode');
    checkOneOf(status, STATUS_CODES, `Practitioner.extension('${PRACTITIONER_EXTENSIONS.status}')`);
    if (status === 'suspended' && p.active === true) throw unprocessable('A suspended Practitioner cannot be active', 'Practitioner.active', 'invariant');
  },
  /**
   * A users row is a login: a role change, a status other than active, a deletion and a revival
   * end the account's sessions at once on every process and are recorded as privilege changes,
   * as through the admin API (which handles them itself: docs/admin-api.md).
   */
  async afterWrite({ trx, id, before, after, audit, afterCommit, revokeUser }) {
    if (!before) return;
    const changes: string[] = [];
    if (!after) changes.push('deleted');
    else {
      if (before.deleted_at !== null && before.deleted_at !== undefined) changes.push('revived (without a password: an admin sets one)');
      if (after.role !== undefined && after.role !== before.role) changes.push(`role ${String(before.role)} -> ${String(after.role)}`);
      if (after.status !== undefined && after.status !== before.status && after.status !== 'active') changes.push(`status ${String(before.status)} -> ${String(after.status)}`);
    }
    if (changes.length === 0) return;
    const sessionsRevoked = await revokeUserSessions(trx, id);
    await audit('privilege-change', { changes, sessionsRevoked });
    afterCommit(() => revokeUser(id));
  },
  async checkStored(_p, { trx, id, columns, current }) {
    // a deleted account brought back through FHIR cannot log in with its old password
    if (current?.deleted) columns.password_hash = NO_PASSWORD;
    if (!current && (await trx('users').where('id', id).first('id'))) {
      throw new FhirError(409, `The id '${id}' belongs to a user account that is not a Practitioner`, 'conflict');
    }
    const email = String(columns.email).toLowerCase();
    if (await trx('users').whereRaw('LOWER(email) = ?', [email]).whereNot('id', id).first('id')) {
      throw new FhirError(409, [{ severity: 'error', code: 'duplicate', diagnostics: 'Another user account already has this email address', expression: ['Practitioner.telecom'] }]);
    }
  },
  references: [],
  summaryElements: ['identifier', 'active', 'name', 'telecom', 'address', 'gender', 'birthDate'],
  searchParams: [
    identifierParam('Practitioner'),
    {
      name: 'name', source: 'index', type: 'string', expression: 'Practitioner.name',
      description: 'Any part of any name: family, given, prefix, suffix or text', sort: ['name'],
      extract: (r) => strings(names(r as Practitioner).flatMap((n) => [n.text, n.family, ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? [])])),
    },
    {
      name: 'family', source: 'index', type: 'string', expression: 'Practitioner.name.family',
      description: 'A family name', extract: (r) => strings(names(r as Practitioner).map((n) => n.family)),
    },
    {
      name: 'given', source: 'index', type: 'string', expression: 'Practitioner.name.given',
      description: 'A given name', extract: (r) => strings(names(r as Practitioner).flatMap((n) => n.given ?? [])),
    },
    {
      name: 'telecom', source: 'index', type: 'token', expression: 'Practitioner.telecom',
      description: 'Any contact point (system|value, system being phone, email, fax ...)', extract: (r) => telecomTokens(r as Practitioner),
    },
    ...userColumnParams('Practitioner'),
  ],
});
