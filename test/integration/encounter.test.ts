import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp, type TestApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences } from '../helpers/world.js';

const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const VISIT_TYPE = 'http://hms.example.org/fhir/CodeSystem/visit-type';
const EXT = (name: string) => `http://hms.example.org/fhir/StructureDefinition/encounter-${name}`;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const encounter = (patient: string, doctor: string, extra: Json = {}): Json => ({
  resourceType: 'Encounter', status: 'in-progress', class: { system: ACT, code: 'AMB' }, subject: { reference: `Patient/${patient}` },
  participant: [{ individual: { reference: `Practitioner/${doctor}` } }], period: { start: '2024-05-01T09:00:00+02:00' },
  ...extra,
});

async function create(h: TestApp, body: Json): Promise<Json> {
  const res = await h.fhir({ method: 'POST', url: '/fhir/Encounter', payload: body });
  if (res.statusCode !== 201) throw new Error(`create failed ${res.statusCode}: ${res.body}`);
  return res.json();
}

t.test('Encounter', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);

  t.test('create, read, vread, update, delete and history; clinical texts land in their columns', async (t) => {
    const body = encounter(patient, doctor, {
      reasonCode: [{ text: 'Headache' }],
      extension: [
        { url: EXT('history-present-illness'), valueString: 'Three days' },
        { url: EXT('physical-examination'), valueMarkdown: '*normal*' },
        { url: EXT('assessment'), valueString: 'Tension headache' },
        { url: EXT('plan'), valueString: 'Rest' },
        { url: EXT('notes'), valueString: 'Anxious' },
        { url: EXT('discharge-instructions'), valueString: 'Fluids' },
        { url: EXT('follow-up-instructions'), valueString: 'In a week' },
      ],
    });
    const created = await create(h, body);
    t.match(await h.db('visits').where('id', created.id).first(), {
      patient_id: patient, doctor_id: doctor, visit_time: '07:00:00', visit_type: 'routine', status: 'in_progress', chief_complaint: 'Headache',
      history_present_illness: 'Three days', physical_examination: '*normal*', assessment: 'Tension headache', plan: 'Rest', notes: 'Anxious',
      discharge_instructions: 'Fluids', follow_up_instructions: 'In a week',
    });
    const url = `/fhir/Encounter/${created.id}`;
    t.same(withoutIdAndMeta((await h.fhir({ method: 'GET', url })).json()), withoutIdAndMeta(body));
    const upd = await h.fhir({ method: 'PUT', url, payload: { ...body, id: created.id, status: 'finished', period: { start: '2024-05-01T09:00:00+02:00', end: '2024-05-01T09:40:00+02:00' } } });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal((await h.db('visits').where('id', created.id).first()).status, 'completed');
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().status, 'in-progress');
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    t.same((await h.fhir({ method: 'GET', url: `${url}/_history` })).json().entry.map((e: Json) => e.request.method), ['DELETE', 'PUT', 'POST']);
  });

  for (const { name, resource } of officialExamples('Encounter')) {
    t.test(`the official example ${name} reads back unchanged`, async (t) => {
      const body = rewriteReferences(resource, { Patient: patient, Practitioner: doctor });
      const created = await create(h, body);
      t.same(withoutIdAndMeta((await h.fhir({ method: 'GET', url: `/fhir/Encounter/${created.id}` })).json()), withoutIdAndMeta(body));
      const row = await h.db('visits').where('id', created.id).first();
      t.equal(row.patient_id, patient);
      t.ok([doctor, h.userId].includes(row.doctor_id), 'the named practitioner, else the writing user');
    });
  }

  t.test('a row inserted natively reads as an Encounter', async (t) => {
    const id = randomUUID();
    await h.db('visits').insert({
      id, patient_id: patient, doctor_id: doctor, visit_date: '2024-02-03', visit_time: '15:00:00', visit_type: 'emergency', status: 'completed',
      chief_complaint: 'Fall', plan: 'X-ray', created_at: '2024-02-03 15:00:00', updated_at: '2024-02-03 15:00:00',
    });
    const res = await h.fhir({ method: 'GET', url: `/fhir/Encounter/${id}` });
    t.equal(res.statusCode, 200, res.body);
    t.match(res.json(), {
      status: 'finished', class: { code: 'EMER' }, period: { start: '2024-02-03T15:00:00Z' }, subject: { reference: `Patient/${patient}` },
      participant: [{ individual: { reference: `Practitioner/${doctor}` } }], reasonCode: [{ text: 'Fall' }],
      extension: [{ url: EXT('plan'), valueString: 'X-ray' }],
    });
    const found = (await h.fhir({ method: 'GET', url: `/fhir/Encounter?patient=${patient}&status=finished&date=2024-02-03` })).json();
    t.same(found.entry.map((e: Json) => e.resource.id), [id]);
  });

  t.test('search', async (t) => {
    const p = await makePatient(h);
    const d1 = await makeClinician(h);
    const d2 = await makeClinician(h, 'nurse');
    const appt = await h.fhir({
      method: 'POST', url: '/fhir/Appointment', payload: {
        resourceType: 'Appointment', status: 'booked', start: '2031-01-01T09:00:00Z',
        participant: [{ actor: { reference: `Patient/${p}` }, status: 'accepted' }, { actor: { reference: `Practitioner/${d1}` }, status: 'accepted' }],
      },
    });
    t.equal(appt.statusCode, 201, appt.body);
    const apptId = appt.json().id;
    const ids: Record<string, string> = {};
    ids.a = (await create(h, encounter(p, d1, { period: { start: '2024-06-01T08:00:00Z' }, appointment: [{ reference: `Appointment/${apptId}` }] }))).id;
    ids.b = (await create(h, encounter(p, d1, { period: { start: '2024-06-02T08:00:00Z' }, status: 'finished', class: { system: ACT, code: 'EMER' } }))).id;
    ids.c = (await create(h, encounter(p, d2, { period: { start: '2024-06-03T08:00:00Z' }, status: 'cancelled', class: { system: ACT, code: 'IMP' }, type: [{ coding: [{ system: 'http://snomed.info/sct', code: '270427003' }] }] }))).id;
    const keys = async (q: string): Promise<string[]> => {
      const res = await h.fhir({ method: 'GET', url: `/fhir/Encounter?patient=${p}&${q}` });
      t.equal(res.statusCode, 200, res.body);
      return (res.json().entry ?? []).map((e: Json) => Object.keys(ids).find((k) => ids[k] === e.resource.id)).sort();
    };
    t.same(await keys('_count=50'), ['a', 'b', 'c']);
    t.same(await keys(`subject=Patient/${p}`), ['a', 'b', 'c']);
    t.same(await keys(`subject:Patient=${p}&practitioner=${d1}`), ['a', 'b']);
    t.same(await keys(`participant=Practitioner/${d2}`), ['c']);
    t.same(await keys(`appointment=${apptId}`), ['a']);
    t.same(await keys('date=2024-06-02'), ['b']);
    t.same(await keys('date=ge2024-06-02'), ['b', 'c']);
    t.same(await keys('date=lt2024-06-02T08:00:00Z'), ['a']);
    t.same(await keys('date=gt2024-06-02T10:00:00%2B02:00'), ['c']);
    t.same(await keys('status=in-progress'), ['a']);
    t.same(await keys('status=finished,cancelled'), ['b', 'c']);
    t.same(await keys('status:not=cancelled'), ['a', 'b']);
    t.same(await keys('class=EMER'), ['b']);
    t.same(await keys(`class=${encodeURIComponent(ACT + '|IMP')}`), ['c']);
    t.same(await keys('type=270427003'), ['c']);
    t.same(await keys(`type=${encodeURIComponent(VISIT_TYPE + '|emergency')}`), ['b']);
    t.same(await keys(`type=${encodeURIComponent(VISIT_TYPE + '|routine')}`), ['a', 'c']);
    const sorted = (await h.fhir({ method: 'GET', url: `/fhir/Encounter?patient=${p}&_sort=-date` })).json();
    t.same(sorted.entry.map((e: Json) => Object.keys(ids).find((k) => ids[k] === e.resource.id)), ['c', 'b', 'a']);
  });

  t.test('refuses what breaks the rules and writes nothing', async (t) => {
    const p = await makePatient(h);
    const refuse = async (body: Json, pattern: RegExp) => {
      const res = await h.fhir({ method: 'POST', url: '/fhir/Encounter', payload: body });
      t.equal(res.statusCode, 422, res.body);
      t.match(res.json().issue[0].diagnostics, pattern);
      t.equal((await h.db('visits').where('patient_id', p)).length, 0);
    };
    await refuse(encounter(p, doctor, { period: { start: '2024-05-01T09:00:00Z', end: '2024-05-01T08:59:00Z' } }), /end/);
    await refuse({ ...encounter(p, doctor), subject: undefined }, /subject/);
    await refuse({ ...encounter(p, doctor), subject: { reference: 'Group/x' } }, /subject/);
    await refuse(encounter(p, randomUUID()), /Practitioner/);
    const patientUser = randomUUID();
    await h.db('users').insert({ id: patientUser, email: `pt-${patientUser}@test.example.org`, password_hash: '!', name: 'Pat', role: 'patient' });
    await refuse(encounter(p, patientUser), /not a Practitioner/);
    await refuse(encounter(p, doctor, { appointment: [{ reference: `Appointment/${randomUUID()}` }] }), /Appointment/);
    const noSubject = await h.fhir({ method: 'POST', url: '/fhir/Encounter', payload: encounter(randomUUID(), doctor) });
    t.equal(noSubject.statusCode, 422);
  });

  t.test('a missing status (R4 1..1, not in the JSON schema\'s required) is 400 and writes nothing', async (t) => {
    const p = await makePatient(h);
    const { status: _s, ...body } = encounter(p, doctor);
    const res = await h.fhir({ method: 'POST', url: '/fhir/Encounter', payload: body });
    t.equal(res.statusCode, 400, res.body);
    t.equal(res.json().resourceType, 'OperationOutcome');
    t.same(res.json().issue[0].expression, ['Encounter.status']);
    t.equal((await h.db('visits').where('patient_id', p)).length, 0);
    const update = await create(h, encounter(p, doctor));
    const put = await h.fhir({ method: 'PUT', url: `/fhir/Encounter/${update.id}`, payload: { ...update, status: undefined } });
    t.equal(put.statusCode, 400, 'an update without status too');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Encounter/${update.id}` })).json().meta.versionId, '1', 'nothing written');
  });
});
