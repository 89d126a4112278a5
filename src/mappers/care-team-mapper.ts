/**
 * CareTeam <-> care_teams row (migration 0113) and its Practitioner members (care_team_members,
 * 0114). The row holds what assignment and search compare (patient, status, name, period); every
 * other element is kept. https://hl7.org/fhir/R4/careteam.html · docs/resources/CareTeam.md · Pure.
 */
import type { CodeableConcept, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, type ColumnField, type Row } from './column-map.js';
import { dateTimeToSql, dateToSql, referenceId } from './datatypes.js';
import { codeField, getPath, pathField, referenceField, setPath } from './fields.js';
import { readRow } from './appointment-mapper.js';

export interface Period { start?: string; end?: string }

export interface CareTeamParticipant {
  role?: CodeableConcept[];
  member?: Reference;
  onBehalfOf?: Reference;
  period?: Period;
  [k: string]: unknown;
}

export interface CareTeam extends Resource {
  resourceType: 'CareTeam';
  status?: string;
  category?: CodeableConcept[];
  name?: string;
  subject?: Reference;
  encounter?: Reference;
  period?: Period;
  participant?: CareTeamParticipant[];
}

/** R4 care-team-status codes; the column holds the code itself. */
export const CARE_TEAM_STATUSES = ['proposed', 'active', 'suspended', 'inactive', 'entered-in-error'] as const;

/**
 * The end of a period as the exclusive SQL bound it stands for: a partial date ("2026-12") lasts
 * to the end of its month, a day to the end of the day; a dateTime is that instant.
 */
export function periodEndToSql(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$/.exec(value);
  if (!m) return dateTimeToSql(value);
  const [, y, mo, d] = m as unknown as [string, string, string | undefined, string | undefined];
  const end = d ? Date.UTC(+y, +mo! - 1, +d + 1) : mo ? Date.UTC(+y, +mo, 1) : Date.UTC(+y + 1, 0, 1);
  return new Date(end).toISOString().slice(0, 19).replace('T', ' ');
}

/** A period start as SQL (a partial date starts at its first instant). */
export const periodStartToSql = (value: string | undefined): string | undefined =>
  value && /^\d{4}(-\d{2}){0,2}$/.test(value) ? `${dateToSql(value)} 00:00:00` : dateTimeToSql(value);

const sqlToDateTime = (v: unknown): string => `${String(v).replace(' ', 'T').slice(0, 19)}Z`;

function periodField(column: string, path: string, toSql: (v: string | undefined) => string | undefined): ColumnField<CareTeam> {
  return {
    column, path: `CareTeam.${path}`,
    toColumn: (r) => toSql(getPath(r, path) as string | undefined),
    fromColumn: (r, v) => setPath(r as unknown as Record<string, unknown>, path, v === null || v === undefined ? undefined : sqlToDateTime(v)),
  };
}

export const careTeamFields: ColumnField<CareTeam>[] = [
  referenceField<CareTeam>('patient_id', 'subject', 'Patient'),
  // a CareTeam without a status counts as active (assignment needs an explicit inactive to end)
  codeField<CareTeam>('status', 'status', Object.fromEntries(CARE_TEAM_STATUSES.map((s) => [s, s])), { absent: 'active' }),
  pathField<CareTeam>('name', 'name', { maxLength: 255 }),
  periodField('period_start', 'period.start', periodStartToSql),
  periodField('period_end', 'period.end', periodEndToSql),
];

/** A care_team_members row (without the team id). */
export interface MemberRow { position: number; user_id: string; period_start: string | null; period_end: string | null }

/** The Practitioner members of a CareTeam, one row per participant whose member is a Practitioner. */
export function careTeamMembers(r: CareTeam): MemberRow[] {
  const out: MemberRow[] = [];
  (r.participant ?? []).forEach((p, position) => {
    const userId = referenceId(p.member, 'Practitioner');
    if (!userId) return;
    out.push({ position, user_id: userId, period_start: periodStartToSql(p.period?.start) ?? null, period_end: periodEndToSql(p.period?.end) ?? null });
  });
  return out;
}

/** The care_teams columns a CareTeam implies, and its members under `members` (written by the storage hooks). */
export function careTeamToRow(r: CareTeam): Row {
  return { ...columnsFromResource(careTeamFields, r), members: careTeamMembers(r) };
}

/** The CareTeam a row reads as, given the resource last written (if any). */
export function careTeamFromRow(row: Row, kept?: CareTeam): CareTeam {
  return readRow(careTeamFields, row, kept, { resourceType: 'CareTeam' });
}
