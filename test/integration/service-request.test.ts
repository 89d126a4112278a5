import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { makeClinician, makePatient } from '../helpers/world.js';

t.test('ServiceRequest is a read-only view of lab_results', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);
  const visit = randomUUID();
  await h.db('visits').insert({ id: visit, patient_id: patient, doctor_id: doctor, visit_date: '2020-01-01', visit_time: '10:00:00', visit_type: 'routine' });
  const ordered = randomUUID();
  const done = randomUUID();
  await h.db('lab_results').insert([
    { id: ordered, patient_id: patient, visit_id: visit, ordered_by: doctor, test_name: 'Lipid panel', test_code: '57698-3', test_category: 'blood', status: 'ordered', ordered_date: '2021-05-01' },
    { id: done, patient_id: patient, ordered_by: doctor, test_name: 'Urinalysis', test_code: 'UA-1', test_category: 'urine', status: 'completed', ordered_date: '2021-04-01', result_value: 'clear' },
  ]);
  const read = await h.fhir({ method: 'GET', url: `/fhir/ServiceRequest/${ordered}` });
  t.equal(read.statusCode, 200, read.body);
  t.match(read.json(), {
    status: 'active', intent: 'order', code: { coding: [{ system: 'http://loinc.org', code: '57698-3' }], text: 'Lipid panel' },
    subject: { reference: `Patient/${patient}` }, encounter: { reference: `Encounter/${visit}` }, requester: { reference: `Practitioner/${doctor}` }, authoredOn: '2021-05-01',
  });
  t.match((await h.fhir({ method: 'GET', url: `/fhir/ServiceRequest/${done}` })).json(), { status: 'completed', code: { coding: [{ system: 'http://hms.example.org/fhir/CodeSystem/lab-test', code: 'UA-1' }] } });
  const ids = async (q: string) => ((await h.fhir({ method: 'GET', url: `/fhir/ServiceRequest?${q}` })).json().entry ?? []).map((e: { resource: { id: string } }) => e.resource.id).sort();
  t.same(await ids(`patient=${patient}`), [ordered, done].sort());
  t.same(await ids(`subject=Patient/${patient}&status=active`), [ordered]);
  t.same(await ids(`patient=${patient}&status=completed`), [done]);
  t.same(await ids(`patient=${patient}&code=http://loinc.org|57698-3`), [ordered]);
  t.same(await ids(`patient=${patient}&code=http://other|57698-3`), []);
  t.same(await ids(`patient=${patient}&authored=ge2021-04-15`), [ordered]);
  t.same(await ids(`requester=Practitioner/${doctor}&authored=2021-04-01`), [done]);
  t.same(await ids(`encounter=Encounter/${visit}`), [ordered]);
  const sorted = (await h.fhir({ method: 'GET', url: `/fhir/ServiceRequest?patient=${patient}&_sort=authored` })).json().entry.map((e: { resource: { id: string } }) => e.resource.id);
  t.same(sorted, [done, ordered]);
  const create = await h.fhir({ method: 'POST', url: '/fhir/ServiceRequest', payload: { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${patient}` } } });
  t.equal(create.statusCode, 405);
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/ServiceRequest/${randomUUID()}` })).statusCode, 404);
});
