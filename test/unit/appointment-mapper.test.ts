import t from 'tap';
import {
  APPOINTMENT_EXTENSIONS, appointmentFromRow, appointmentToRow, formatInstant, HMS_APPOINTMENT_TYPE, priorityToColumn, V2_0276, type Appointment,
} from '../../src/mappers/appointment-mapper.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const examples = officialExamples('Appointment');
const ctx = { userId: 'u-writer', now: '2030-01-01 00:00:00' };
/** A row as the write path stores it, read back with the version's defaults. */
const stored = (a: Appointment, extra: Record<string, unknown> = {}) => ({ ...appointmentToRow(a, ctx), id: 'a1', _recorded_by: ctx.userId, _recorded_at: ctx.now, ...extra });

const base = (extra: Partial<Appointment> = {}): Appointment => ({
  resourceType: 'Appointment', status: 'booked', start: '2030-01-02T10:00:00+02:00',
  participant: [{ actor: { reference: 'Patient/p1' }, status: 'accepted' }, { actor: { reference: 'Practitioner/d1' }, status: 'accepted' }],
  ...extra,
});

t.test('there are official Appointment examples to test with', async (t) => {
  t.ok(examples.length >= 2);
});

for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name} (resource -> row -> resource)`, async (t) => {
    const a = { ...(resource as Appointment), id: 'a1' };
    const back = appointmentFromRow(stored(a), a);
    t.same(withoutIdAndMeta(back), withoutIdAndMeta(a));
  });
}

t.test('stores the start in UTC date and time columns; end becomes the duration', async (t) => {
  const row = appointmentToRow(base({ end: '2030-01-02T10:45:00+02:00' }), ctx);
  t.equal(row.appointment_date, '2030-01-02');
  t.equal(row.appointment_time, '08:00:00');
  t.equal(row.duration_minutes, 45);
  t.equal(appointmentToRow(base({ start: '2030-01-02T01:00:00+05:00' }), ctx).appointment_date, '2030-01-01', 'the UTC day, not the local one');
  t.equal(appointmentToRow(base(), ctx).duration_minutes, 30, 'no end: 30 minutes');
  t.equal(appointmentToRow(base({ minutesDuration: 50 }), ctx).duration_minutes, 50, 'no end: minutesDuration');
});

t.test('maps participants, type, priority, status, texts and the room', async (t) => {
  const row = appointmentToRow(base({
    appointmentType: { coding: [{ system: V2_0276, code: 'FOLLOWUP' }] }, priority: 2, status: 'checked-in',
    reasonCode: [{ text: 'Chest pain' }], comment: 'Bring results', cancelationReason: { coding: [{ display: 'unused' }] },
    participant: [...base().participant!, { actor: { reference: 'Location/9', display: 'Room 12' }, status: 'accepted' }],
  }), ctx);
  t.match(row, {
    patient_id: 'p1', doctor_id: 'd1', appointment_type: 'follow_up', priority: 'urgent', status: 'in_progress',
    chief_complaint: 'Chest pain', notes: 'Bring results', room_number: 'Room 12', created_by: 'u-writer', cancelled_by: null,
    cancellation_reason: 'unused',
  });
  t.same([0, 1, 3, 5, 7, 9, 200].map(priorityToColumn), ['medium', 'urgent', 'high', 'medium', 'low', 'low', 'low']);
  t.equal(appointmentToRow(base({ appointmentType: { coding: [{ system: HMS_APPOINTMENT_TYPE, code: 'surgery' }] } }), ctx).appointment_type, 'surgery');
  t.equal(appointmentToRow(base({ appointmentType: { coding: [{ system: 'http://other', code: 'x' }] } }), ctx).appointment_type, 'consultation');
});

t.test('booked is scheduled, or confirmed with the HMS extension; cancelling records the writing user', async (t) => {
  t.equal(appointmentToRow(base(), ctx).status, 'scheduled');
  const confirmed = base({ extension: [{ url: APPOINTMENT_EXTENSIONS.confirmed, valueBoolean: true }] });
  t.equal(appointmentToRow(confirmed, ctx).status, 'confirmed');
  t.same(withoutIdAndMeta(appointmentFromRow(stored(confirmed), confirmed)), withoutIdAndMeta(confirmed));
  const cancelled = base({ status: 'cancelled', cancelationReason: { text: 'Patient ill' } });
  const row = appointmentToRow(cancelled, ctx);
  t.equal(row.cancelled_by, 'u-writer');
  t.equal(row.cancellation_reason, 'Patient ill');
  t.same(withoutIdAndMeta(appointmentFromRow(stored(cancelled), cancelled)), withoutIdAndMeta(cancelled), 'the defaulted canceller is implied on read');
  t.equal(appointmentToRow({ ...cancelled, status: 'noshow' }, ctx).status, 'no_show');
});

t.test('columns are authoritative: native changes show, keeping the client offset', async (t) => {
  const a = base({ end: '2030-01-02T10:30:00+02:00', comment: 'c' });
  const back = appointmentFromRow(stored(a, { appointment_time: '09:15:00', duration_minutes: 60, status: 'completed', priority: 'low', notes: 'changed' }), a);
  t.equal(back.start, '2030-01-02T11:15:00+02:00');
  t.equal(back.end, '2030-01-02T12:15:00+02:00');
  t.equal(back.status, 'fulfilled');
  t.equal(back.priority, 9);
  t.equal(back.comment, 'changed');
  const moved = appointmentFromRow(stored(a, { appointment_date: '2030-02-03', doctor_id: 'd2', status: 'cancelled', cancelled_by: 'u9' }), a);
  t.equal(moved.start, '2030-02-03T10:00:00+02:00');
  t.equal(moved.participant?.[1]?.actor?.reference, 'Practitioner/d2');
  t.same(moved.extension, [{ url: APPOINTMENT_EXTENSIONS.cancelledBy, valueReference: { reference: 'Practitioner/u9' } }]);
  const minutes = base({ minutesDuration: 20 });
  t.equal(appointmentFromRow(stored(minutes, { duration_minutes: 40 }), minutes).minutesDuration, 40, 'only minutesDuration given: it follows the column');
});

t.test('reads a row inserted natively (no kept resource) as an Appointment', async (t) => {
  const back = appointmentFromRow({
    id: 'n1', patient_id: 'p1', doctor_id: 'd1', appointment_date: '2030-03-04', appointment_time: '14:30:00', duration_minutes: 45,
    appointment_type: 'emergency', priority: 'high', status: 'confirmed', chief_complaint: 'Fever', notes: 'Walk-in',
    room_number: 'B-2', created_by: 'u1', cancelled_by: null, cancellation_reason: null,
  });
  t.same(back, {
    resourceType: 'Appointment', id: 'n1',
    participant: [
      { actor: { reference: 'Patient/p1' }, status: 'accepted' },
      { actor: { reference: 'Practitioner/d1' }, status: 'accepted' },
      { actor: { type: 'Location', display: 'B-2' }, status: 'accepted' },
    ],
    start: '2030-03-04T14:30:00Z', end: '2030-03-04T15:15:00Z',
    appointmentType: { coding: [{ system: V2_0276, code: 'EMERGENCY', display: 'Emergency appointment' }] },
    priority: 3, status: 'booked', extension: [{ url: APPOINTMENT_EXTENSIONS.confirmed, valueBoolean: true }],
    reasonCode: [{ text: 'Fever' }], comment: 'Walk-in',
  });
  const again = appointmentToRow(back, { userId: 'u1' });
  t.match(again, { appointment_date: '2030-03-04', appointment_time: '14:30:00', duration_minutes: 45, status: 'confirmed', room_number: 'B-2', priority: 'high', appointment_type: 'emergency' });
});

t.test('formatInstant keeps an offset, or writes Z', async (t) => {
  const ms = Date.parse('2030-01-02T08:00:00Z');
  t.equal(formatInstant(ms, '2030-01-01T00:00:00+02:00'), '2030-01-02T10:00:00+02:00');
  t.equal(formatInstant(ms, '2030-01-01T00:00:00-05:30'), '2030-01-02T02:30:00-05:30');
  t.equal(formatInstant(ms, '2030-01-01'), '2030-01-02T08:00:00Z');
  t.equal(formatInstant(ms), '2030-01-02T08:00:00Z');
});
