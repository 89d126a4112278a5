/** Appointment, over the appointments table. https://hl7.org/fhir/R4/appointment.html */
import type { Knex } from 'knex';
import { defineResource } from '../registry.js';
import { ALL_INTERACTIONS, identifierParam, literalRefs, statusParam } from './common.js';
import {
  APPOINTMENT_EXTENSIONS, appointmentFromRow, appointmentToRow, appointmentTypeOf, type Appointment, APPOINTMENT_STATUS_TO_COLUMN,
} from '../../mappers/appointment-mapper.js';
import { referenceId, setExtension } from '../../mappers/datatypes.js';
import { checkPeriod } from '../checks.js';
import { conflict, unprocessable } from '../outcome.js';
import { keepElements } from '../views.js';
import { dialectOf } from '../../db/dialect.js';
import type { Row } from '../../mappers/column-map.js';
import type { Reference } from '../types.js';

/** Statuses of appointments that do not hold the doctor's time. */
const NOT_BLOCKING = ['cancelled', 'no_show'];

const startSql = { mysql: 'TIMESTAMP(t.appointment_date, t.appointment_time)', sqlite: "(t.appointment_date || ' ' || t.appointment_time)" };
const endSql = {
  mysql: `${startSql.mysql} + INTERVAL COALESCE(t.duration_minutes, 30) MINUTE`,
  sqlite: "datetime(t.appointment_date || ' ' || t.appointment_time, '+' || COALESCE(t.duration_minutes, 30) || ' minutes')",
};
const PRIORITY_SQL = "CASE t.priority WHEN 'urgent' THEN 1 WHEN 'high' THEN 3 WHEN 'medium' THEN 5 WHEN 'low' THEN 9 END";

/** The start and end of the columns as SQL timestamps (UTC). */
function slotOf(columns: Row): { start: string; end: string } {
  const start = `${String(columns.appointment_date).slice(0, 10)} ${String(columns.appointment_time).slice(0, 8)}`;
  const ms = Date.parse(`${start.replace(' ', 'T')}Z`) + Number(columns.duration_minutes ?? 30) * 60_000;
  return { start, end: new Date(ms).toISOString().slice(0, 19).replace('T', ' ') };
}

/**
 * Refuses a booking that overlaps another appointment of the same doctor that still holds its time.
 * The doctor's users row is locked first (MySQL; SQLite runs one writer at a time), so two
 * concurrent bookings of one doctor are checked one after the other.
 */
async function checkDoubleBooking(trx: Knex.Transaction, id: string, columns: Row, visible: (type: string, ids: string[]) => Promise<Set<string>>): Promise<void> {
  const doctor = String(columns.doctor_id);
  const mysql = dialectOf(trx) === 'mysql';
  if (mysql) await trx('users').where('id', doctor).forUpdate().first('id');
  const { start, end } = slotOf(columns);
  const clash = await trx('appointments as t').first('t.id')
    .where('t.doctor_id', doctor).whereNot('t.id', id).whereNotIn('t.status', NOT_BLOCKING)
    .andWhere('t.appointment_date', '<=', end.slice(0, 10))
    .andWhereRaw(`${mysql ? startSql.mysql : startSql.sqlite} < ?`, [end])
    .andWhereRaw(`${mysql ? endSql.mysql : endSql.sqlite} > ?`, [start]);
  if (clash) {
    // the clashing appointment is named only to a caller who may read it (it may be another patient's)
    const named = (await visible('Appointment', [String(clash.id)])).size ? ` (Appointment/${String(clash.id)})` : '';
    throw conflict(`Practitioner/${doctor} is already booked between ${start.replace(' ', 'T')}Z and ${end.replace(' ', 'T')}Z${named}`);
  }
}

const participants = (a: Appointment) => a.participant ?? [];
const actorRefs = (a: Appointment): string[] => literalRefs(participants(a).map((p) => p.actor));

export const AppointmentDefinition = defineResource<Appointment>({
  type: 'Appointment',
  table: 'appointments',
  profile: 'http://hl7.org/fhir/StructureDefinition/Appointment',
  description: 'A booked meeting of a patient and a practitioner (appointments table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  assigns: true,
  views: {
    // finance: the booking without its clinical content (reason, description, comments, instructions, extensions, narrative)
    administrative: keepElements<Appointment>([
      'identifier', 'status', 'serviceCategory', 'serviceType', 'specialty', 'appointmentType', 'priority', 'start', 'end',
      'minutesDuration', 'slot', 'created', 'participant', 'requestedPeriod',
    ]),
  },
  toRow: (a, ctx) => appointmentToRow(a, ctx),
  fromRow: appointmentFromRow,
  check(a) {
    if (!participants(a).some((p) => referenceId(p.actor, 'Patient'))) {
      throw unprocessable('An appointment needs a participant whose actor is a Patient', 'Appointment.participant', 'required');
    }
    if (!participants(a).some((p) => referenceId(p.actor, 'Practitioner'))) {
      throw unprocessable('An appointment needs a participant whose actor is a Practitioner (the doctor)', 'Appointment.participant', 'required');
    }
    if (!a.start) throw unprocessable('An appointment needs a start', 'Appointment.start', 'required');
    checkPeriod(a.start, a.end, 'Appointment.end');
  },
  async checkStored(a, ctx) {
    const { columns, current } = ctx;
    const before = current?.row;
    if (before) {
      columns.created_by = before.created_by; // the creator stays the creator
      // an appointment that stays cancelled keeps who cancelled it
      const explicit = a.extension?.some((e) => e.url === APPOINTMENT_EXTENSIONS.cancelledBy);
      if (before.status === 'cancelled' && columns.status === 'cancelled' && before.cancelled_by && !explicit && before.cancelled_by !== columns.cancelled_by) {
        columns.cancelled_by = before.cancelled_by;
        setExtension(a, APPOINTMENT_EXTENSIONS.cancelledBy, 'valueReference', { reference: `Practitioner/${String(before.cancelled_by)}` } satisfies Reference);
      }
    }
    if (columns.created_by === null || columns.created_by === undefined) {
      throw unprocessable('No user to record as the appointment\'s creator', 'Appointment', 'required');
    }
    const slot = slotOf(columns);
    const moved = !before || slotOf(before).start !== slot.start;
    if (moved && Date.parse(`${slot.start.replace(' ', 'T')}Z`) < Date.now()) {
      throw unprocessable(`Appointment.start ${a.start} is in the past: an appointment cannot be ${before ? 'moved' : 'booked'} into the past`, 'Appointment.start', 'business-rule');
    }
    const blocking = !NOT_BLOCKING.includes(String(columns.status));
    const changed = !before || NOT_BLOCKING.includes(String(before.status)) || before.doctor_id !== columns.doctor_id
      || slotOf(before).start !== slot.start || slotOf(before).end !== slot.end;
    if (blocking && changed) await checkDoubleBooking(ctx.trx, ctx.id, columns, ctx.visible);
  },
  references: [
    { column: 'patient_id', expression: 'Appointment.participant.actor', targetType: 'Patient', table: 'patients', softDelete: true },
    {
      column: 'doctor_id', expression: 'Appointment.participant.actor', targetType: 'Practitioner', table: 'users',
      where: { role: ['doctor', 'nurse'] }, softDelete: true,
    },
    {
      column: 'cancelled_by', expression: `Appointment.extension('${APPOINTMENT_EXTENSIONS.cancelledBy}')`, targetType: 'Practitioner',
      table: 'users', softDelete: true,
    },
  ],
  // isSummary in R4, plus participant: mandatory (1..*) and its type, actor, required and status are
  // summary, so a summary without it would be invalid (a top-level pick cannot take only the children)
  summaryElements: [
    'identifier', 'status', 'cancelationReason', 'serviceCategory', 'serviceType', 'specialty', 'appointmentType', 'reasonCode',
    'start', 'end', 'participant',
  ],
  // the R4 Patient CompartmentDefinition's parameters HMS can search (OR-ed by Patient/$everything)
  compartment: ['patient', 'actor'],
  searchParams: [
    identifierParam('Appointment'),
    {
      name: 'patient', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'],
      expression: "Appointment.participant.actor.where(resolve() is Patient)", description: 'The patient taking part',
    },
    {
      name: 'practitioner', source: 'column', type: 'reference', column: 'doctor_id', targets: ['Practitioner'],
      expression: 'Appointment.participant.actor.where(resolve() is Practitioner).first()',
      // R4's practitioner matches every Practitioner participant; doctor_id holds the first one only
      definition: 'http://hms.example.org/fhir/SearchParameter/Appointment-practitioner',
      description: 'The doctor of the appointment (doctor_id: the first Practitioner participant only; `actor` finds the others)',
    },
    {
      name: 'actor', source: 'index', type: 'reference', expression: 'Appointment.participant.actor',
      targets: ['Patient', 'Practitioner', 'PractitionerRole', 'RelatedPerson', 'Device', 'HealthcareService', 'Location'],
      description: 'Any participant (written through the API)', extract: (r) => actorRefs(r as Appointment),
    },
    {
      name: 'date', source: 'column', type: 'date', column: 'appointment_date', sql: startSql, dateKind: 'timestamp',
      expression: 'Appointment.start', description: 'When the appointment starts (UTC, to the second)', sort: ['appointment_date', 'appointment_time'],
    },
    statusParam('Appointment', 'http://hl7.org/fhir/appointmentstatus', 'The status as stated: proposed | pending | booked | arrived | fulfilled | cancelled | noshow | entered-in-error | checked-in | waitlist', 'status',
      (code) => { const col = APPOINTMENT_STATUS_TO_COLUMN[code]; return col === undefined ? undefined : code === 'booked' ? ['scheduled', 'confirmed'] : [col]; }),
    {
      name: 'appointment-type', source: 'column', type: 'token', column: 'appointment_type', expression: 'Appointment.appointmentType',
      description: 'The kind of appointment: v2-0276 ROUTINE/CHECKUP/WALKIN (consultation), FOLLOWUP, EMERGENCY, or HMS surgery/diagnostic',
      sort: ['CAST(t.appointment_type AS CHAR)'],
      tokenToColumn: (system, code) => { const v = appointmentTypeOf(system, code); return v ? [v] : undefined; },
    },
    {
      name: 'priority', source: 'column', type: 'number', column: 'priority', sql: { mysql: PRIORITY_SQL, sqlite: PRIORITY_SQL },
      expression: 'Appointment.priority', description: 'Priority as a number: urgent 1, high 3, medium 5, low 9 (prefixes compare these)',
      definition: 'http://hms.example.org/fhir/SearchParameter/Appointment-priority', sort: [PRIORITY_SQL],
    },
  ],
});
