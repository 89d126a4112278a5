import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences, unique } from '../helpers/world.js';

const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const UCUM = 'http://unitsofmeasure.org';

t.test('MedicationRequest over prescriptions', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);
  const nurse = await makeClinician(h, 'nurse');
  const visit = randomUUID();
  await h.db('visits').insert({ id: visit, patient_id: patient, doctor_id: doctor, visit_date: '2024-01-02', visit_time: '10:00:00', visit_type: 'routine' });
  const rx = (extra: Record<string, unknown> = {}) => ({
    resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${patient}` },
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: '308182', display: 'Amoxicillin 250 MG Oral Capsule' }] },
    dosageInstruction: [{ doseAndRate: [{ doseQuantity: { value: 250, unit: 'mg', system: UCUM, code: 'mg' } }], timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd' } } }],
    ...extra,
  });
  const post = (body: unknown) => h.fhir({ method: 'POST', url: '/fhir/MedicationRequest', payload: body as Record<string, unknown> });
  const count = async () => Number(((await h.db('prescriptions').count({ n: '*' }))[0] as { n: number }).n);
  const day = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v)).slice(0, 10);

  for (const { name, resource } of officialExamples('MedicationRequest')) {
    t.test(`the official example ${name} reads back unchanged`, async (t) => {
      const body = rewriteReferences(resource, { Patient: patient, Practitioner: doctor, Encounter: visit });
      const created = await post(body);
      t.equal(created.statusCode, 201, created.body);
      const read = await h.fhir({ method: 'GET', url: `/fhir/MedicationRequest/${created.json().id}` });
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
    });
  }

  t.test('medrx002 has only a dosage text: its dose and frequency are read from it', async (t) => {
    const body = rewriteReferences(officialExamples('MedicationRequest').find((e) => e.name.includes('medrx002'))!.resource, { Patient: patient, Practitioner: doctor, Encounter: visit });
    const id = (await post(body)).json().id;
    t.match(await h.db('prescriptions').where({ id }).first(), { dosage: '1 tablet', frequency: 'once daily', medication_name: 'prescribed medication' });
  });

  t.test('create, read, vread, update, history and delete', async (t) => {
    const created = await post(rx({ requester: { reference: `Practitioner/${doctor}` }, encounter: { reference: `Encounter/${visit}` }, authoredOn: '2024-02-03', dispenseRequest: { quantity: { value: 21 }, numberOfRepeatsAllowed: 2, expectedSupplyDuration: { value: 7, unit: 'days', system: UCUM, code: 'd' }, validityPeriod: { start: '2024-02-03', end: '2024-03-03' } }, reasonCode: [{ text: 'Otitis' }], note: [{ text: 'generic ok' }] }));
    t.equal(created.statusCode, 201, created.body);
    const id = created.json().id;
    const row = await h.db('prescriptions').where({ id }).first();
    t.match(row, {
      patient_id: patient, doctor_id: doctor, visit_id: visit, medication_name: 'Amoxicillin 250 MG Oral Capsule', dosage: '250 mg', frequency: '3 times daily',
      duration: '7 days', quantity_prescribed: 21, refills_remaining: 2, indication: 'Otitis', status: 'active', pharmacy_notes: 'generic ok',
    });
    t.same([day(row.prescribed_date), day(row.start_date), day(row.end_date)], ['2024-02-03', '2024-02-03', '2024-03-03']);
    const url = `/fhir/MedicationRequest/${id}`;
    const upd = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: { ...rx({ status: 'stopped' }), id } });
    t.equal(upd.statusCode, 200, upd.body);
    const row2 = await h.db('prescriptions').where({ id }).first();
    t.match(row2, { status: 'expired', doctor_id: h.userId });
    t.equal(day(row2.prescribed_date), new Date().toISOString().slice(0, 10), 'no authoredOn: today');
    t.equal((await h.fhir({ method: 'GET', url })).json().status, 'stopped');
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().status, 'active');
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.same(hist.entry.map((e: { request: { method: string } }) => e.request.method), ['DELETE', 'PUT', 'POST']);
  });

  t.test('a native change (a worker expiring the prescription) shows on read', async (t) => {
    const id = (await post(rx())).json().id;
    await h.db('prescriptions').where({ id }).update({ status: 'expired', frequency: 'BID', dosage: '500 mg' });
    const read = (await h.fhir({ method: 'GET', url: `/fhir/MedicationRequest/${id}` })).json();
    t.equal(read.status, 'stopped');
    t.same(read.dosageInstruction[0].timing.repeat, { frequency: 2, period: 1, periodUnit: 'd' });
    t.equal(read.dosageInstruction[0].doseAndRate[0].doseQuantity.value, 500);
  });

  t.test('a row inserted natively reads as a MedicationRequest with structured dose and timing', async (t) => {
    const id = randomUUID();
    await h.db('prescriptions').insert({
      id, patient_id: patient, doctor_id: doctor, medication_name: 'Lisinopril 10 mg', dosage: '10 mg', frequency: 'once daily',
      prescribed_date: '2023-01-01', status: 'active', created_at: '2023-01-01 00:00:00', updated_at: '2023-01-01 00:00:00',
    });
    const read = (await h.fhir({ method: 'GET', url: `/fhir/MedicationRequest/${id}` })).json();
    t.match(read, {
      intent: 'order', status: 'active', medicationCodeableConcept: { text: 'Lisinopril 10 mg' }, authoredOn: '2023-01-01',
      subject: { reference: `Patient/${patient}` }, requester: { reference: `Practitioner/${doctor}` },
      dosageInstruction: [{ doseAndRate: [{ doseQuantity: { value: 10, unit: 'mg', system: UCUM, code: 'mg' } }], timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } } }],
    });
    const put = await h.fhir({ method: 'PUT', url: `/fhir/MedicationRequest/${id}`, payload: read });
    t.equal(put.statusCode, 200, 'what was read can be written back');
    t.match(await h.db('prescriptions').where({ id }).first(), { dosage: '10 mg', frequency: 'once daily' });
  });

  t.test('search', async (t) => {
    const tag = unique();
    const p2 = await makePatient(h);
    const mk = async (key: string, extra: Record<string, unknown>) => {
      const res = await post(rx({ identifier: [{ system: `urn:t:${tag}`, value: key }], ...extra }));
      t.equal(res.statusCode, 201, res.body);
      return [key, res.json().id] as const;
    };
    // the medication is a stored Medication (generic store): a reference to one that does not exist is refused
    await h.fhir({ method: 'PUT', url: '/fhir/Medication/m1', payload: { resourceType: 'Medication', id: 'm1', code: { text: 'Aspirin' } } });
    const ids = Object.fromEntries([
      await mk('a', { authoredOn: '2024-01-10', requester: { reference: `Practitioner/${doctor}` }, encounter: { reference: `Encounter/${visit}` } }),
      await mk('b', { status: 'completed', intent: 'plan', authoredOn: '2024-02-10', requester: { reference: `Practitioner/${nurse}` }, medicationCodeableConcept: { coding: [{ system: RXNORM, code: '197361' }], text: 'Amlodipine' } }),
      await mk('c', { status: 'stopped', subject: { reference: `Patient/${p2}` }, authoredOn: '2023-12-31', medicationCodeableConcept: undefined, medicationReference: { reference: 'Medication/m1', display: 'Aspirin' } }),
    ]);
    const keys = async (q: string) => {
      const res = await h.fhir({ method: 'GET', url: `/fhir/MedicationRequest?identifier=urn:t:${tag}|&${q}` });
      t.equal(res.statusCode, 200, q);
      return ((res.json().entry ?? []) as { resource: { id: string } }[]).map((e) => Object.keys(ids).find((k) => ids[k] === e.resource.id)).sort();
    };
    t.same(await keys(`patient=${patient}`), ['a', 'b']);
    t.same(await keys(`subject=Patient/${p2}`), ['c']);
    t.same(await keys('status=active'), ['a']);
    t.same(await keys('status=completed,stopped'), ['b', 'c']);
    t.same(await keys('status:not=active'), ['b', 'c']);
    t.same(await keys('intent=order'), ['a', 'c']);
    t.same(await keys('intent=http://hl7.org/fhir/CodeSystem/medicationrequest-intent|plan'), ['b']);
    t.same(await keys(`code=${RXNORM}|308182`), ['a']);
    t.same(await keys('code=197361'), ['b']);
    t.same(await keys('medication=Medication/m1'), ['c']);
    t.same(await keys('authoredon=2024-01-10'), ['a']);
    t.same(await keys('authoredon=ge2024-01'), ['a', 'b']);
    t.same(await keys('authoredon=lt2024'), ['c']);
    t.same(await keys(`requester=Practitioner/${nurse}`), ['b']);
    t.same(await keys(`encounter=${visit}`), ['a']);
    t.same(await keys('encounter:missing=true'), ['b', 'c']);
    t.same(await keys('_sort=authoredon'), ['a', 'b', 'c']);
  });

  t.test('the prescription rules answer 422 with a clear message and write nothing', async (t) => {
    const dose = (doseAndRate: unknown, timing: unknown = { repeat: { frequency: 2, period: 1, periodUnit: 'd' } }, text?: string) =>
      ({ dosageInstruction: [{ ...(text ? { text } : {}), ...(doseAndRate ? { doseAndRate } : {}), ...(timing ? { timing } : {}) }] });
    const DOSE = 'MedicationRequest.dosageInstruction[0].doseAndRate[0].doseQuantity';
    const TIMING = 'MedicationRequest.dosageInstruction[0].timing';
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ['a timing without a dose', dose(undefined), DOSE, /amount and a unit/],
      ['a text without a dose', dose(undefined, undefined, 'as directed by your doctor'), DOSE, /dose/],
      ['no frequency', dose([{ doseQuantity: { value: 2, unit: 'TAB' } }], null), TIMING, /frequency/],
      ['a timing without period', dose([{ doseQuantity: { value: 2, unit: 'TAB' } }], { repeat: { frequency: 2 } }), TIMING, /frequency/],
      ['a validity period ending before it starts', { dispenseRequest: { validityPeriod: { start: '2024-02-01', end: '2024-01-01' } } }, 'MedicationRequest.dispenseRequest.validityPeriod', /before the start/],
      ['an RxNorm code that is no RxCUI', { medicationCodeableConcept: { coding: [{ system: RXNORM, code: 'amoxi' }] } }, 'MedicationRequest.medicationCodeableConcept.coding', /RxCUI/],
      ['no medication name', { medicationCodeableConcept: { coding: [{ system: RXNORM }] } }, 'MedicationRequest.medication', /medication name/],
      ['a Group subject', { subject: { reference: 'Group/g' } }, 'MedicationRequest.subject', /Patient/],
      ['an unknown encounter', { encounter: { reference: `Encounter/${randomUUID()}` } }, 'MedicationRequest.encounter', /does not exist/],
      ['a requester who is not a clinician', { requester: { reference: `Practitioner/${h.userId}` } }, 'MedicationRequest.requester', /doctor or nurse/],
    ];
    for (const [what, extra, expression, message] of cases) {
      const before = await count();
      const res = await post(rx(extra));
      t.equal(res.statusCode, 422, `${what}: ${res.body}`);
      t.same(res.json().issue[0].expression, [expression], what);
      t.match(res.json().issue[0].diagnostics, message, what);
      t.equal(await count(), before, `${what}: nothing written`);
    }
    t.equal((await post(rx(dose(undefined, undefined, 'Take 2 tablets q8h')))).statusCode, 201, 'a text naming dose and frequency is enough');
    const counted = await post(rx(dose([{ doseQuantity: { value: 2 } }])));
    t.equal(counted.statusCode, 201, 'a bare number is that many doses');
    t.equal((await h.db('prescriptions').where({ id: counted.json().id }).first()).dosage, '2 dose');
    const none = await post(rx({ dosageInstruction: undefined }));
    t.equal(none.statusCode, 201, 'a MedicationRequest that states no dosage at all is accepted');
    t.match(await h.db('prescriptions').where({ id: none.json().id }).first(), { dosage: 'not stated', frequency: 'not stated' });
    const back = await h.fhir({ method: 'GET', url: `/fhir/MedicationRequest/${none.json().id}` });
    t.notOk(back.json().dosageInstruction, 'and reads back without one');
    t.equal((await post(rx(dose([{ doseQuantity: { value: 1, unit: 'TAB' } }], { code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation', code: 'BID' }] } })))).statusCode, 201, 'a timing code is enough');
  });
});
