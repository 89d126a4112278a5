import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp, type TestApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences } from '../helpers/world.js';
import { startSession } from '../../src/auth/sessions.js';

const V2 = 'http://terminology.hl7.org/CodeSystem/v2-0276';
const HMS_TYPE = 'http://hms.example.org/fhir/CodeSystem/appointment-type';
const CONFIRMED = 'http://hms.example.org/fhir/StructureDefinition/appointment-confirmed';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const appointment = (patient: string, doctor: string, extra: Json = {}): Json => ({
  resourceType: 'Appointment', status: 'booked', start: '2031-03-10T10:00:00+02:00', end: '2031-03-10T10:30:00+02:00',
  participant: [{ actor: { reference: `Patient/${patient}` }, status: 'accepted' }, { actor: { reference: `Practitioner/${doctor}` }, status: 'accepted' }],
  ...extra,
});

async function create(h: TestApp, body: Json): Promise<Json> {
  const res = await h.fhir({ method: 'POST', url: '/fhir/Appointment', payload: body });
  if (res.statusCode !== 201) throw new Error(`create failed ${res.statusCode}: ${res.body}`);
  return res.json();
}
const rowsOf = async (h: TestApp, doctor: string): Promise<number> => (await h.db('appointments').where('doctor_id', doctor)).length;

t.test('Appointment', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);

  t.test('create, read, vread, update, delete and history', async (t) => {
    const doctor = await makeClinician(h);
    const created = await create(h, appointment(patient, doctor));
    t.match(created.id, /^[0-9a-f-]{36}$/);
    const row = await h.db('appointments').where('id', created.id).first();
    t.match(row, { patient_id: patient, doctor_id: doctor, appointment_time: '08:00:00', duration_minutes: 30, status: 'scheduled', created_by: h.userId });
    t.equal(String(row.appointment_date).slice(0, 10), '2031-03-10');
    const url = `/fhir/Appointment/${created.id}`;
    const read = await h.fhir({ method: 'GET', url });
    t.equal(read.statusCode, 200);
    t.equal(read.json().start, '2031-03-10T10:00:00+02:00', 'the client offset is kept');
    const upd = await h.fhir({ method: 'PUT', url, payload: { ...appointment(patient, doctor, { status: 'arrived' }), id: created.id } });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal(upd.json().meta.versionId, '2');
    t.equal((await h.db('appointments').where('id', created.id).first()).status, 'in_progress');
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().status, 'booked');
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    t.notOk(await h.db('appointments').where('id', created.id).first(), 'delete removes the row');
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.same(hist.entry.map((e: Json) => e.request.method), ['DELETE', 'PUT', 'POST']);
  });

  for (const { name, resource } of officialExamples('Appointment')) {
    t.test(`the official example ${name} reads back unchanged (dates moved from 2013 to 2031)`, async (t) => {
      const doctor = await makeClinician(h);
      const moved = JSON.parse(JSON.stringify(resource).replace(/"2013-/g, '"2031-')) as Json;
      const body = rewriteReferences(moved, { Patient: patient, Practitioner: doctor });
      const created = await create(h, body);
      const read = await h.fhir({ method: 'GET', url: `/fhir/Appointment/${created.id}` });
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
      t.match(await h.db('appointments').where('id', created.id).first(), { doctor_id: doctor, duration_minutes: 120, priority: 'medium', status: 'scheduled' });
    });
  }

  t.test('a row inserted natively reads as an Appointment', async (t) => {
    const doctor = await makeClinician(h);
    const id = randomUUID();
    await h.db('appointments').insert({
      id, patient_id: patient, doctor_id: doctor, appointment_date: '2031-05-06', appointment_time: '07:30:00', duration_minutes: 20,
      appointment_type: 'surgery', priority: 'urgent', status: 'confirmed', chief_complaint: 'Knee', room_number: 'OR-1', created_by: doctor,
      created_at: '2030-01-01 00:00:00', updated_at: '2030-01-01 00:00:00',
    });
    const res = await h.fhir({ method: 'GET', url: `/fhir/Appointment/${id}` });
    t.equal(res.statusCode, 200, res.body);
    t.match(res.json(), {
      start: '2031-05-06T07:30:00Z', end: '2031-05-06T07:50:00Z', status: 'booked', priority: 1, reasonCode: [{ text: 'Knee' }],
      appointmentType: { coding: [{ system: HMS_TYPE, code: 'surgery' }] }, extension: [{ url: CONFIRMED, valueBoolean: true }],
    });
    const found = (await h.fhir({ method: 'GET', url: `/fhir/Appointment?practitioner=${doctor}&status=booked&priority=1` })).json();
    t.same(found.entry.map((e: Json) => e.resource.id), [id]);
  });

  t.test('search', async (t) => {
    const doctor = await makeClinician(h);
    const other = await makeClinician(h);
    const p2 = await makePatient(h);
    const ids: Record<string, string> = {};
    const add = async (key: string, body: Json) => { ids[key] = (await create(h, body)).id; };
    await add('a', appointment(patient, doctor, { start: '2031-06-01T09:00:00Z', end: '2031-06-01T09:30:00Z', priority: 1, appointmentType: { coding: [{ system: V2, code: 'FOLLOWUP' }] } }));
    await add('b', appointment(p2, doctor, { start: '2031-06-01T14:00:00Z', end: '2031-06-01T14:20:00Z', priority: 9, appointmentType: { coding: [{ system: V2, code: 'EMERGENCY' }] } }));
    await add('c', appointment(patient, doctor, { start: '2031-06-02T09:00:00Z', end: undefined, status: 'cancelled', appointmentType: { coding: [{ system: HMS_TYPE, code: 'surgery' }] } }));
    await add('d', appointment(p2, other, { start: '2031-06-03T09:00:00+02:00', end: undefined, status: 'fulfilled', priority: 4 }));
    const keys = async (q: string): Promise<string[]> => {
      const res = await h.fhir({ method: 'GET', url: `/fhir/Appointment?${q}&_count=50` });
      t.equal(res.statusCode, 200, res.body);
      return (res.json().entry ?? []).map((e: Json) => Object.keys(ids).find((k) => ids[k] === e.resource.id)).filter(Boolean).sort();
    };
    const scope = `actor=Practitioner/${doctor},Practitioner/${other}`;
    t.same(await keys(`practitioner=${doctor}`), ['a', 'b', 'c']);
    t.same(await keys(`practitioner=Practitioner/${other}`), ['d']);
    t.same(await keys(`patient=${p2}&${scope}`), ['b', 'd']);
    t.same(await keys(`actor=Patient/${patient}&${scope}`), ['a', 'c']);
    t.same(await keys(`actor:Practitioner=${other}`), ['d']);
    t.same(await keys(`${scope}&date=2031-06-01`), ['a', 'b']);
    t.same(await keys(`${scope}&date=ge2031-06-02`), ['c', 'd']);
    t.same(await keys(`${scope}&date=lt2031-06-01T14:00:00Z`), ['a']);
    t.same(await keys(`${scope}&date=gt2031-06-01T09:00:00Z&date=le2031-06-03T07:00:00Z`), ['b', 'c', 'd']);
    t.same(await keys(`${scope}&date=2031-06-03T07:00:00Z`), ['d'], 'a time in another offset is the same instant');
    t.same(await keys(`${scope}&status=booked`), ['a', 'b']);
    t.same(await keys(`${scope}&status=fulfilled,cancelled`), ['c', 'd']);
    t.same(await keys(`${scope}&status:not=booked`), ['c', 'd']);
    t.same(await keys(`${scope}&appointment-type=FOLLOWUP`), ['a']);
    t.same(await keys(`${scope}&appointment-type=${encodeURIComponent(V2 + '|EMERGENCY')}`), ['b']);
    t.same(await keys(`${scope}&appointment-type=${encodeURIComponent(HMS_TYPE + '|surgery')}`), ['c']);
    t.same(await keys(`${scope}&appointment-type=ROUTINE`), ['d'], 'no type stored as consultation (ROUTINE)');
    t.same(await keys(`${scope}&priority=1`), ['a']);
    t.same(await keys(`${scope}&priority=5`), ['c']);
    t.same(await keys(`${scope}&priority=lt5`), ['a', 'd']);
    t.same(await keys(`${scope}&priority=ge5`), ['b', 'c']);
    const sorted = (await h.fhir({ method: 'GET', url: `/fhir/Appointment?${scope}&_sort=-date` })).json();
    t.same(sorted.entry.map((e: Json) => Object.keys(ids).find((k) => ids[k] === e.resource.id)), ['d', 'c', 'b', 'a']);
    const byPriority = (await h.fhir({ method: 'GET', url: `/fhir/Appointment?${scope}&_sort=priority` })).json();
    t.same(byPriority.entry.map((e: Json) => Object.keys(ids).find((k) => ids[k] === e.resource.id)), ['a', 'd', 'c', 'b']);
  });

  t.test('refuses what breaks the rules and writes nothing', async (t) => {
    const doctor = await makeClinician(h);
    const refuse = async (body: Json, status: number, pattern: RegExp) => {
      const res = await h.fhir({ method: 'POST', url: '/fhir/Appointment', payload: body });
      t.equal(res.statusCode, status, res.body);
      t.match(res.json().issue[0].diagnostics, pattern);
      t.equal(await rowsOf(h, doctor), 0);
    };
    const base = appointment(patient, doctor);
    await refuse({ ...base, participant: [base.participant[1]] }, 422, /Patient/);
    await refuse({ ...base, participant: [base.participant[0]] }, 422, /Practitioner/);
    await refuse({ ...base, start: undefined, end: undefined }, 422, /start/);
    await refuse({ ...base, end: '2031-03-10T09:59:00+02:00' }, 422, /end/);
    await refuse({ ...base, start: '2020-01-01T10:00:00Z', end: '2020-01-01T10:30:00Z' }, 422, /past/);
    await refuse(appointment(randomUUID(), doctor), 422, /Patient/);
    t.equal((await h.fhir({ method: 'POST', url: '/fhir/Appointment', payload: appointment(patient, randomUUID()) })).statusCode, 422);
  });

  t.test('an appointment cannot be moved into the past; a past one may still be updated in place', async (t) => {
    const doctor = await makeClinician(h);
    const a = await create(h, appointment(patient, doctor));
    const moved = await h.fhir({ method: 'PUT', url: `/fhir/Appointment/${a.id}`, payload: { ...appointment(patient, doctor, { start: '2021-03-10T10:00:00Z', end: undefined }), id: a.id } });
    t.equal(moved.statusCode, 422, moved.body);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Appointment/${a.id}` })).json().meta.versionId, '1', 'nothing written');
    const id = randomUUID();
    await h.db('appointments').insert({
      id, patient_id: patient, doctor_id: doctor, appointment_date: '2021-01-01', appointment_time: '09:00:00', appointment_type: 'consultation',
      created_by: doctor, created_at: '2021-01-01 00:00:00', updated_at: '2021-01-01 00:00:00',
    });
    const past = (await h.fhir({ method: 'GET', url: `/fhir/Appointment/${id}` })).json();
    const done = await h.fhir({ method: 'PUT', url: `/fhir/Appointment/${id}`, payload: { ...past, status: 'fulfilled' } });
    t.equal(done.statusCode, 200, done.body);
    t.match(await h.db('appointments').where('id', id).first(), { status: 'completed', created_by: doctor });
  });

  t.test('a doctor cannot be double-booked (409); cancelled ones, other doctors and adjacent slots do not clash', async (t) => {
    const doctor = await makeClinician(h);
    const other = await makeClinician(h);
    const first = await create(h, appointment(patient, doctor, { start: '2031-07-01T10:00:00Z', end: '2031-07-01T11:00:00Z' }));
    const clash = await h.fhir({ method: 'POST', url: '/fhir/Appointment', payload: appointment(patient, doctor, { start: '2031-07-01T12:30:00+02:00', end: '2031-07-01T12:45:00+02:00' }) });
    t.equal(clash.statusCode, 409, clash.body);
    t.equal(clash.json().issue[0].code, 'conflict');
    t.equal(await rowsOf(h, doctor), 1, 'nothing written');
    await create(h, appointment(patient, doctor, { start: '2031-07-01T11:00:00Z', end: undefined })); // starts when the first ends
    await create(h, appointment(patient, other, { start: '2031-07-01T10:15:00Z', end: undefined }));
    const noEnd = await h.fhir({ method: 'POST', url: '/fhir/Appointment', payload: appointment(patient, doctor, { start: '2031-07-01T11:20:00Z', end: undefined }) });
    t.equal(noEnd.statusCode, 409, 'without an end the slot lasts 30 minutes');
    const self = await h.fhir({ method: 'PUT', url: `/fhir/Appointment/${first.id}`, payload: { ...appointment(patient, doctor, { start: '2031-07-01T10:00:00Z', end: '2031-07-01T10:50:00Z', comment: 'shorter' }), id: first.id } });
    t.equal(self.statusCode, 200, 'an appointment does not clash with itself');
    const cancel = await h.fhir({ method: 'PUT', url: `/fhir/Appointment/${first.id}`, payload: { ...(self.json() as Json), status: 'cancelled', cancelationReason: { text: 'sick' } } });
    t.equal(cancel.statusCode, 200, cancel.body);
    t.match(await h.db('appointments').where('id', first.id).first(), { status: 'cancelled', cancelled_by: h.userId, cancellation_reason: 'sick' });
    await create(h, appointment(patient, doctor, { start: '2031-07-01T10:00:00Z', end: '2031-07-01T10:30:00Z' })); // the cancelled one frees the slot
    const revive = await h.fhir({ method: 'PUT', url: `/fhir/Appointment/${first.id}`, payload: { ...(cancel.json() as Json), status: 'booked' } });
    t.equal(revive.statusCode, 409, 'un-cancelling into a taken slot clashes');
  });

  t.test('an update by another user keeps who cancelled the appointment', async (t) => {
    const doctor = await makeClinician(h);
    // the doctor reaches the patient as its primary doctor (a cancelled appointment assigns no one)
    const patient = await makePatient(h, undefined, { generalPractitioner: [{ reference: `Practitioner/${doctor}` }] });
    const a = await create(h, appointment(patient, doctor, { status: 'cancelled' }));
    t.equal((await h.db('appointments').where('id', a.id).first()).cancelled_by, h.userId);
    const token = await startSession(h.db, doctor, { ttlSeconds: 600 });
    const res = await h.fhir({ method: 'PUT', url: `/fhir/Appointment/${a.id}`, token, payload: { ...appointment(patient, doctor, { status: 'cancelled', comment: 'later' }), id: a.id } });
    t.equal(res.statusCode, 200, res.body);
    t.match(await h.db('appointments').where('id', a.id).first(), { cancelled_by: h.userId, created_by: h.userId });
    t.same(res.json().extension, [{ url: 'http://hms.example.org/fhir/StructureDefinition/appointment-cancelled-by', valueReference: { reference: `Practitioner/${h.userId}` } }]);
    t.same((await h.fhir({ method: 'GET', url: `/fhir/Appointment/${a.id}` })).json().extension, res.json().extension);
  });

  t.test('concurrent bookings of one slot: exactly one wins, the others get 409', async (t) => {
    const doctor = await makeClinician(h);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      h.fhir({ method: 'POST', url: '/fhir/Appointment', payload: appointment(patient, doctor, { start: `2031-08-01T10:0${i}:00Z`, end: '2031-08-01T10:30:00Z' }) })));
    const statuses = results.map((r) => r.statusCode).sort();
    t.equal(statuses.filter((s) => s === 201).length, 1, statuses.join(','));
    t.equal(statuses.filter((s) => s === 409).length, 7, statuses.join(','));
    t.equal(await rowsOf(h, doctor), 1);
  });
});
