/**
 * Practitioner <-> users row (role doctor or nurse). https://hl7.org/fhir/R4/practitioner.html
 * Columns hold the primary name (one string), the first email (the login) and phone, the first
 * photo's url, the first qualification's text (specialization), and department, role and status
 * (HMS extensions, `active`). Everything else the client sent is kept beside the row (see
 * column-map.ts). password_hash, last_login and created_at are never exposed.
 */
import type { CodeableConcept, ContactPoint, Extension, HumanName, Identifier, Resource } from '../fhir/types.js';
import { columnsFromResource, resourceFromColumns, type ColumnField, type Row } from './column-map.js';
import { extensionValue, hmsExtensionUrl, primaryName, primaryOf, setExtension, setTelecom, telecomIndex } from './datatypes.js';
import { pathField } from './fields.js';

export interface PractitionerQualification {
  identifier?: Identifier[];
  code?: CodeableConcept;
  [k: string]: unknown;
}

export interface Practitioner extends Resource {
  resourceType: 'Practitioner';
  identifier?: Identifier[];
  active?: boolean;
  name?: HumanName[];
  telecom?: ContactPoint[];
  photo?: { url?: string; [k: string]: unknown }[];
  qualification?: PractitionerQualification[];
  extension?: Extension[];
}

export const PRACTITIONER_EXTENSIONS = {
  department: hmsExtensionUrl('practitioner-department'),
  role: hmsExtensionUrl('practitioner-role'),
  /** valueCode 'suspended' (with active false): the account is suspended rather than inactive. */
  status: hmsExtensionUrl('practitioner-status'),
} as const;

/** users.role values that are Practitioners (the row filter of Practitioner and PractitionerRole). */
export const PRACTITIONER_ROLES = ['doctor', 'nurse'] as const;
export const DEFAULT_ROLE = 'doctor';
export const STATUS_CODES = ['suspended'] as const;

/**
 * password_hash of a user created as a Practitioner: it is not a bcrypt hash, so no password ever
 * matches it and the account cannot log in until an admin sets a password.
 */
export const NO_PASSWORD = '!';

export const USER_COLUMN_SIZES = { name: 255, email: 255, phone: 20, avatar: 500, department: 100, specialization: 100 } as const;

/** The name the users.name column mirrors: the first official, else usual, else not old name. */
export const practitionerName = (p: Practitioner): HumanName | undefined => primaryOf(p.name, primaryName);

/** A HumanName as one string: its text, else "prefix given family". */
export function nameString(n: HumanName | undefined): string {
  if (!n) return '';
  if (n.text) return n.text;
  return [...(n.prefix ?? []), ...(n.given ?? []), n.family].filter(Boolean).join(' ');
}

/** The value of the ContactPoint of a system the column mirrors (lowest rank first). */
export function telecomValue(holder: { telecom?: ContactPoint[] }, system: string): string | undefined {
  const i = telecomIndex(holder.telecom, system);
  return i >= 0 ? holder.telecom![i]!.value : undefined;
}

/** The text of the first qualification: code.text, else the display (or code) of its first coding. */
export function specializationOf(p: Practitioner): string | undefined {
  const code = p.qualification?.[0]?.code;
  if (!code) return undefined;
  return code.text ?? code.coding?.[0]?.display ?? code.coding?.[0]?.code;
}

export function roleOf(p: Practitioner): string {
  return String(extensionValue(p, PRACTITIONER_EXTENSIONS.role, 'valueCode') ?? DEFAULT_ROLE);
}

function statusOf(p: Practitioner): string {
  if (extensionValue(p, PRACTITIONER_EXTENSIONS.status, 'valueCode') === 'suspended') return 'suspended';
  return p.active === false ? 'inactive' : 'active';
}

const telecomField = (column: 'email' | 'phone'): ColumnField<Practitioner> => ({
  column, path: `Practitioner.telecom.where(system='${column}')`, maxLength: USER_COLUMN_SIZES[column],
  toColumn: (p) => telecomValue(p, column),
  fromColumn: (p, v) => setTelecom(p, column, v),
});

const extensionField = (column: string, url: string, kind: string, maxLength?: number): ColumnField<Practitioner> => ({
  column, path: `Practitioner.extension('${url}')`, maxLength,
  toColumn: (p) => extensionValue(p, url, kind),
  fromColumn: (p, v) => setExtension(p, url, kind, v),
});

export const practitionerFields: ColumnField<Practitioner>[] = [
  {
    column: 'name', path: 'Practitioner.name', maxLength: USER_COLUMN_SIZES.name,
    toColumn: (p) => nameString(practitionerName(p)),
    fromColumn: (p, v) => {
      const list = p.name ?? [];
      const i = primaryName(list);
      if (v === null || v === undefined || v === '') { if (i >= 0) list.splice(i, 1); }
      else if (i >= 0) list[i] = { ...(list[i]!.use ? { use: list[i]!.use } : {}), text: String(v) };
      else list.push({ text: String(v) });
      if (list.length) p.name = list; else delete p.name;
    },
  },
  telecomField('email'),
  telecomField('phone'),
  pathField('avatar', 'photo.0.url', { maxLength: USER_COLUMN_SIZES.avatar }),
  {
    column: 'specialization', path: 'Practitioner.qualification[0].code', maxLength: USER_COLUMN_SIZES.specialization,
    toColumn: specializationOf,
    fromColumn: (p, v) => {
      // Qualification.code is required: without a specialization the first qualification goes
      if (v === null || v === undefined || v === '') { p.qualification?.splice(0, 1); if (p.qualification?.length === 0) delete p.qualification; return; }
      const q = (p.qualification ??= [])[0] ?? (p.qualification[0] = {});
      q.code = { ...q.code, text: String(v) };
    },
  },
  extensionField('department', PRACTITIONER_EXTENSIONS.department, 'valueString', USER_COLUMN_SIZES.department),
  {
    column: 'role', path: `Practitioner.extension('${PRACTITIONER_EXTENSIONS.role}')`,
    toColumn: roleOf,
    fromColumn: (p, v) => setExtension(p, PRACTITIONER_EXTENSIONS.role, 'valueCode', v),
  },
  {
    column: 'status', path: 'Practitioner.active',
    toColumn: statusOf,
    fromColumn: (p, v) => {
      const status = v === null || v === undefined ? 'active' : String(v);
      p.active = status === 'active';
      setExtension(p, PRACTITIONER_EXTENSIONS.status, 'valueCode', status === 'suspended' ? 'suspended' : undefined);
    },
  },
];

/** The users columns a Practitioner implies (never password_hash: see NO_PASSWORD). */
export function practitionerToRow(p: Practitioner): Row {
  return columnsFromResource(practitionerFields, p);
}

/**
 * The Practitioner a users row reads as: the kept resource corrected by the columns, or for a row
 * written natively (seeded, created by `hms create-admin` and later given a clinical role ...)
 * the resource every column implies, role and active included.
 */
export function practitionerFromRow(row: Row, kept?: Practitioner): Practitioner {
  if (kept) {
    const base: Practitioner = { ...structuredClone(kept), resourceType: 'Practitioner', id: String(row.id) };
    return resourceFromColumns(practitionerFields, row, base);
  }
  const base: Practitioner = { resourceType: 'Practitioner', id: String(row.id) };
  for (const f of practitionerFields) f.fromColumn(base, row[f.column] ?? null);
  return base;
}
