/**
 * Appointment <-> appointments row. https://hl7.org/fhir/R4/appointment.html
 * See docs/resources/Appointment.md for the element <-> column table. Also home of the column
 * fields the Encounter mapper shares (an instant split into UTC date + time columns, a
 * participant reference, the text of a CodeableConcept, native-row reading). Pure, no I/O.
 */
import type { CodeableConcept, Coding, Extension, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, resourceFromColumns, TEXT_BYTES, type ColumnField, type Row, type WriteDefaults } from './column-map.js';
import { dateTimeToSql, extensionValue, HMS_CANONICAL, hmsExtensionUrl, referenceId, setExtension } from './datatypes.js';
import { getPath, setPath } from './fields.js';

type Obj = Record<string, unknown>;

export interface AppointmentParticipant { actor?: Reference; status?: string; type?: CodeableConcept[]; [k: string]: unknown }

export interface Appointment extends Resource {
  resourceType: 'Appointment';
  status?: string;
  cancelationReason?: CodeableConcept;
  appointmentType?: CodeableConcept;
  reasonCode?: CodeableConcept[];
  priority?: number;
  start?: string;
  end?: string;
  minutesDuration?: number;
  comment?: string;
  participant?: AppointmentParticipant[];
  extension?: Extension[];
}

export const APPOINTMENT_EXTENSIONS = {
  /** valueBoolean true: a booked appointment the patient confirmed (status column 'confirmed'). */
  confirmed: hmsExtensionUrl('appointment-confirmed'),
  /** valueReference: the user who cancelled the appointment (cancelled_by). */
  cancelledBy: hmsExtensionUrl('appointment-cancelled-by'),
} as const;

export const V2_0276 = 'http://terminology.hl7.org/CodeSystem/v2-0276';
export const HMS_APPOINTMENT_TYPE = `${HMS_CANONICAL}/CodeSystem/appointment-type`;

// ---------------------------------------------------------------------------------------------
// Shared column fields (also used by the Encounter mapper)
// ---------------------------------------------------------------------------------------------

const MINUTE = 60_000;

/** Milliseconds of a FHIR date/dateTime/instant (a bare date is its UTC midnight), or undefined. */
export function instantMs(value: string | undefined): number | undefined {
  const sql = dateTimeToSql(value);
  return sql === undefined ? undefined : Date.parse(`${sql.replace(' ', 'T')}Z`);
}

/** The UTC offset, in minutes, a dateTime is written in (0 for Z or a bare date). */
function offsetMinutes(value: string | undefined): number {
  const m = value && value.length > 10 ? /([+-])(\d{2}):(\d{2})$/.exec(value) : null;
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

/** An instant written in the same UTC offset as `like` (Z when it has none), seconds precision. */
export function formatInstant(ms: number, like?: string): string {
  const off = offsetMinutes(like);
  const local = new Date(ms + off * MINUTE).toISOString().slice(0, 19);
  if (off === 0 && !/[+-]00:00$/.test(like ?? '')) return `${local}Z`;
  const abs = Math.abs(off);
  return `${local}${off < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * Two fields for an instant at `path` stored as a DATE and a TIME column in UTC. With `defaultToNow`
 * an absent value stores the write's time. A native change of either column moves the instant
 * and keeps the offset the client wrote it in.
 */
export function instantFields<R extends Resource>(dateColumn: string, timeColumn: string, path: string, fhirPath: string, opts: { defaultToNow?: boolean } = {}): ColumnField<R>[] {
  const sqlOf = (r: R, d: WriteDefaults): string | undefined => dateTimeToSql(getPath(r, path) as string | undefined) ?? (opts.defaultToNow ? d.now : undefined);
  const move = (r: R, v: unknown, part: 'date' | 'time'): void => {
    if (v === null || v === undefined) return; // NOT NULL columns: nothing to mirror
    const current = getPath(r, path) as string | undefined;
    const sql = dateTimeToSql(current) ?? '1970-01-01 00:00:00';
    const next = part === 'date' ? `${String(v).slice(0, 10)} ${sql.slice(11, 19)}` : `${sql.slice(0, 10)} ${String(v).slice(0, 8)}`;
    setPath(r as unknown as Obj, path, formatInstant(Date.parse(`${next.replace(' ', 'T')}Z`), current));
  };
  return [
    { column: dateColumn, path: fhirPath, toColumn: (r, d) => sqlOf(r, d)?.slice(0, 10), fromColumn: (r, v) => move(r, v, 'date') },
    { column: timeColumn, path: fhirPath, toColumn: (r, d) => sqlOf(r, d)?.slice(11, 19), fromColumn: (r, v) => move(r, v, 'time') },
  ];
}

/** Text of a CodeableConcept: its text, else the first coding's display. */
export const conceptText = (c: CodeableConcept | undefined): string | undefined => c?.text ?? c?.coding?.find((x) => x.display)?.display;

/** A TEXT column holding the text of the CodeableConcept at `path` (written back as its text). */
export function conceptTextField<R extends Resource>(column: string, path: string, fhirPath: string): ColumnField<R> {
  return {
    column, path: fhirPath, maxBytes: TEXT_BYTES,
    toColumn: (r) => conceptText(getPath(r, path) as CodeableConcept | undefined),
    fromColumn: (r, v) => setPath(r as unknown as Obj, `${path}.text`, v === null || v === undefined ? undefined : String(v)),
  };
}

/**
 * A column holding the id of the first participant whose `key` (actor / individual) refers to
 * `type`. A native change replaces that reference, or adds a participant (`fresh` gives its other
 * elements). With `defaultToUser` a resource without one stores the writing user.
 */
export function participantField<R extends Resource & { participant?: Obj[] }>(
  column: string, key: string, type: string, fhirPath: string, opts: { defaultToUser?: boolean; fresh?: Obj } = {},
): ColumnField<R> {
  const index = (r: R): number => (r.participant ?? []).findIndex((p) => referenceId(p[key] as Reference | undefined, type));
  return {
    column, path: fhirPath,
    toColumn: (r, d) => {
      const i = index(r);
      return i >= 0 ? referenceId(r.participant![i]![key] as Reference, type) : opts.defaultToUser ? d.userId : undefined;
    },
    fromColumn: (r, v) => {
      const list = r.participant ?? [];
      const i = index(r);
      if (v === null || v === undefined) { if (i >= 0) list.splice(i, 1); }
      else if (i >= 0) list[i]![key] = { reference: `${type}/${String(v)}` };
      else list.push({ [key]: { reference: `${type}/${String(v)}` }, ...opts.fresh });
      if (list.length) r.participant = list; else delete r.participant;
    },
  };
}

/**
 * The resource a row reads as. With a kept resource: kept content corrected by the columns (the
 * overlay). Without one (a row inserted natively): every column is written into `base`.
 */
export function readRow<R extends Resource>(fields: ColumnField<R>[], row: Row, kept: R | undefined, base: R): R {
  if (kept) {
    const r = structuredClone(kept);
    r.resourceType = base.resourceType;
    r.id = String(row.id);
    return resourceFromColumns(fields, row, r);
  }
  base.id = String(row.id);
  for (const f of fields) f.fromColumn(base, row[f.column] ?? null);
  return base;
}

/** A status field whose column value maps onto one FHIR code each way, with extra codes mapped in. */
export function statusField<R extends Resource & { status?: string }>(
  column: string, fhirPath: string, toCode: Record<string, string>, fromCode: Record<string, string>, absent: string,
): ColumnField<R> {
  return {
    column, path: fhirPath,
    toColumn: (r) => (r.status === undefined ? absent : fromCode[r.status] ?? absent),
    fromColumn: (r, v) => { r.status = toCode[String(v ?? absent)] ?? toCode[absent]; },
  };
}

// ---------------------------------------------------------------------------------------------
// Appointment
// ---------------------------------------------------------------------------------------------

/** FHIR status -> appointments.status (booked is 'confirmed' when the HMS confirmed extension says so). */
export const APPOINTMENT_STATUS_TO_COLUMN: Record<string, string> = {
  proposed: 'scheduled', pending: 'scheduled', booked: 'scheduled', waitlist: 'scheduled',
  arrived: 'in_progress', 'checked-in': 'in_progress', fulfilled: 'completed',
  cancelled: 'cancelled', 'entered-in-error': 'cancelled', noshow: 'no_show',
};
const APPOINTMENT_STATUS_FROM_COLUMN: Record<string, string> = {
  scheduled: 'booked', confirmed: 'booked', in_progress: 'arrived', completed: 'fulfilled', cancelled: 'cancelled', no_show: 'noshow',
};

const isConfirmed = (a: Appointment): boolean => extensionValue(a, APPOINTMENT_EXTENSIONS.confirmed, 'valueBoolean') === true;

export function appointmentStatusToColumn(a: Appointment): string {
  const col = APPOINTMENT_STATUS_TO_COLUMN[a.status ?? 'booked'] ?? 'scheduled';
  return col === 'scheduled' && a.status === 'booked' && isConfirmed(a) ? 'confirmed' : col;
}

/** appointments.appointment_type <-> a coding: v2-0276 where one fits, else the HMS code system. */
const TYPE_TO_CODING: Record<string, Coding> = {
  consultation: { system: V2_0276, code: 'ROUTINE', display: 'Routine appointment - default if not valued' },
  follow_up: { system: V2_0276, code: 'FOLLOWUP', display: 'A follow up visit from a previous appointment' },
  emergency: { system: V2_0276, code: 'EMERGENCY', display: 'Emergency appointment' },
  surgery: { system: HMS_APPOINTMENT_TYPE, code: 'surgery', display: 'Surgery' },
  diagnostic: { system: HMS_APPOINTMENT_TYPE, code: 'diagnostic', display: 'Diagnostic' },
};
export const APPOINTMENT_TYPES = Object.keys(TYPE_TO_CODING);
const V2_TO_TYPE: Record<string, string> = { ROUTINE: 'consultation', CHECKUP: 'consultation', WALKIN: 'consultation', FOLLOWUP: 'follow_up', EMERGENCY: 'emergency' };

/** The appointment_type a coding (system, code) stands for, or undefined. */
export function appointmentTypeOf(system: string | undefined, code: string): string | undefined {
  if (system === V2_0276) return V2_TO_TYPE[code];
  if (system === HMS_APPOINTMENT_TYPE) return APPOINTMENT_TYPES.includes(code) ? code : undefined;
  if (system === undefined) return V2_TO_TYPE[code] ?? (APPOINTMENT_TYPES.includes(code) ? code : undefined);
  return undefined;
}

/** appointments.priority <-> Appointment.priority (unsignedInt, lower = more urgent; 0 = not given). */
export const PRIORITY_TO_NUMBER: Record<string, number> = { urgent: 1, high: 3, medium: 5, low: 9 };
export function priorityToColumn(n: number | undefined): string {
  if (!n) return 'medium';
  return n <= 2 ? 'urgent' : n <= 4 ? 'high' : n <= 6 ? 'medium' : 'low';
}

const isLocation = (p: AppointmentParticipant): boolean => p.actor?.type === 'Location' || /^(?:.*\/)?Location\//.test(p.actor?.reference ?? '');

export const appointmentFields: ColumnField<Appointment>[] = [
  participantField<Appointment>('patient_id', 'actor', 'Patient', 'Appointment.participant.actor', { fresh: { status: 'accepted' } }),
  participantField<Appointment>('doctor_id', 'actor', 'Practitioner', 'Appointment.participant.actor', { fresh: { status: 'accepted' } }),
  ...instantFields<Appointment>('appointment_date', 'appointment_time', 'start', 'Appointment.start'),
  {
    // after the start: a native change moves the end (or minutesDuration when only that was given)
    column: 'duration_minutes', path: 'Appointment.end', numeric: 'int',
    toColumn: (a) => {
      const start = instantMs(a.start);
      const end = instantMs(a.end);
      return start !== undefined && end !== undefined ? Math.ceil((end - start) / MINUTE) : a.minutesDuration ?? 30;
    },
    fromColumn: (a, v) => {
      const start = instantMs(a.start);
      if (v === null || v === undefined || start === undefined) return;
      if (a.end === undefined && a.minutesDuration !== undefined) a.minutesDuration = Number(v);
      else a.end = formatInstant(start + Number(v) * MINUTE, a.end ?? a.start);
    },
  },
  {
    column: 'appointment_type', path: 'Appointment.appointmentType',
    toColumn: (a) => a.appointmentType?.coding?.map((c) => (c.code ? appointmentTypeOf(c.system, c.code) : undefined)).find(Boolean) ?? 'consultation',
    fromColumn: (a, v) => { a.appointmentType = { coding: [{ ...TYPE_TO_CODING[String(v)] ?? TYPE_TO_CODING.consultation! }] }; },
  },
  {
    column: 'priority', path: 'Appointment.priority',
    toColumn: (a) => priorityToColumn(a.priority),
    fromColumn: (a, v) => { a.priority = PRIORITY_TO_NUMBER[String(v ?? 'medium')] ?? 5; },
  },
  {
    column: 'status', path: 'Appointment.status',
    toColumn: appointmentStatusToColumn,
    fromColumn: (a, v) => {
      a.status = APPOINTMENT_STATUS_FROM_COLUMN[String(v ?? 'scheduled')] ?? 'booked';
      setExtension(a, APPOINTMENT_EXTENSIONS.confirmed, 'valueBoolean', v === 'confirmed' ? true : undefined);
    },
  },
  conceptTextField<Appointment>('chief_complaint', 'reasonCode.0', 'Appointment.reasonCode[0].text'),
  { column: 'notes', path: 'Appointment.comment', maxBytes: TEXT_BYTES, toColumn: (a) => a.comment, fromColumn: (a, v) => setPath(a, 'comment', v ?? undefined) },
  {
    column: 'room_number', path: "Appointment.participant.actor.where(type='Location').display", maxLength: 20,
    toColumn: (a) => a.participant?.find(isLocation)?.actor?.display,
    fromColumn: (a, v) => {
      const p = a.participant?.find(isLocation);
      if (p) setPath(p, 'actor.display', v ?? undefined);
      else if (v) (a.participant ??= []).push({ actor: { type: 'Location', display: String(v) }, status: 'accepted' });
    },
  },
  {
    // not an element of R4 Appointment: the writing user, or the doctor when a system writes
    column: 'created_by', path: 'Appointment',
    toColumn: (a, d) => d.userId ?? a.participant?.map((p) => referenceId(p.actor, 'Practitioner')).find(Boolean),
    fromColumn: () => undefined,
  },
  {
    column: 'cancelled_by', path: `Appointment.extension('${APPOINTMENT_EXTENSIONS.cancelledBy}')`,
    toColumn: (a, d) => {
      const explicit = referenceId(extensionValue(a, APPOINTMENT_EXTENSIONS.cancelledBy, 'valueReference') as Reference | undefined, 'Practitioner');
      return explicit ?? (appointmentStatusToColumn(a) === 'cancelled' ? d.userId : undefined);
    },
    fromColumn: (a, v) => setExtension(a, APPOINTMENT_EXTENSIONS.cancelledBy, 'valueReference', v === null || v === undefined ? undefined : { reference: `Practitioner/${String(v)}` }),
  },
  conceptTextField<Appointment>('cancellation_reason', 'cancelationReason', 'Appointment.cancelationReason.text'),
];

/** The appointments columns an Appointment implies. */
export function appointmentToRow(a: Appointment, ctx: { userId?: string; now?: string } = {}): Row {
  return columnsFromResource(appointmentFields, a, { userId: ctx.userId, now: ctx.now });
}

/** The Appointment an appointments row reads as, given the resource last written (if any). */
export function appointmentFromRow(row: Row, kept?: Appointment): Appointment {
  return readRow(appointmentFields, row, kept, { resourceType: 'Appointment' });
}
