import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences, unique } from '../helpers/world.js';

const ICD = 'http://hl7.org/fhir/sid/icd-10-cm';
const SCT = 'http://snomed.info/sct';
const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';

t.test('Condition over medical_conditions', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);
  const visit = randomUUID();
  await h.db('visits').insert({ id: visit, patient_id: patient, doctor_id: doctor, visit_date: '2024-01-02', visit_time: '10:00:00', visit_type: 'routine' });
  const condition = (extra: Record<string, unknown> = {}) => ({
    resourceType: 'Condition', subject: { reference: `Patient/${patient}` },
    code: { coding: [{ system: ICD, code: 'J45.909', display: 'Unspecified asthma' }], text: 'Asthma' }, ...extra,
  });
  const post = (body: unknown) => h.fhir({ method: 'POST', url: '/fhir/Condition', payload: body as Record<string, unknown> });
  const count = async () => Number(((await h.db('medical_conditions').count({ n: '*' }))[0] as { n: number }).n);

  for (const { name, resource } of officialExamples('Condition')) {
    t.test(`the official example ${name} reads back unchanged`, async (t) => {
      const body = rewriteReferences(resource, { Patient: patient });
      const created = await post(body);
      t.equal(created.statusCode, 201, created.body);
      const read = await h.fhir({ method: 'GET', url: `/fhir/Condition/${created.json().id}` });
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
    });
  }

  t.test('create, read, vread, update, history and delete', async (t) => {
    const created = await post(condition({ recorder: { reference: `Practitioner/${doctor}` }, encounter: { reference: `Encounter/${visit}` }, onsetDateTime: '2023-05-06' }));
    t.equal(created.statusCode, 201, created.body);
    const id = created.json().id;
    const row = await h.db('medical_conditions').where({ id }).first();
    t.match(row, { patient_id: patient, visit_id: visit, diagnosed_by: doctor, condition_name: 'Asthma', icd_10_code: 'J45.909', status: null });
    t.equal(String(row.diagnosis_date instanceof Date ? row.diagnosis_date.toISOString() : row.diagnosis_date).slice(0, 10), '2023-05-06');
    const url = `/fhir/Condition/${id}`;
    const upd = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: { ...condition({ note: [{ text: 'better' }] }), id } });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal(upd.json().meta.versionId, '2');
    t.equal((await h.db('medical_conditions').where({ id }).first()).notes, 'better');
    t.equal((await h.db('medical_conditions').where({ id }).first()).diagnosed_by, h.userId, 'no recorder: the writing user');
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().recorder.reference, `Practitioner/${doctor}`);
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    t.notOk(await h.db('medical_conditions').where({ id }).first(), 'hard delete');
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.same(hist.entry.map((e: { request: { method: string } }) => e.request.method), ['DELETE', 'PUT', 'POST']);
  });

  t.test('a row inserted natively reads as a Condition', async (t) => {
    const id = randomUUID();
    await h.db('medical_conditions').insert({
      id, patient_id: patient, condition_name: 'Hypertension', icd_10_code: 'I10', diagnosis_date: '2020-01-02', severity: 'mild',
      status: 'chronic', diagnosed_by: doctor, created_at: '2020-01-02 00:00:00', updated_at: '2020-01-02 00:00:00',
    });
    const read = (await h.fhir({ method: 'GET', url: `/fhir/Condition/${id}` })).json();
    t.match(read, {
      code: { coding: [{ system: ICD, code: 'I10' }], text: 'Hypertension' }, onsetDateTime: '2020-01-02', subject: { reference: `Patient/${patient}` },
      clinicalStatus: { coding: [{ system: CLINICAL, code: 'active' }] }, severity: { coding: [{ code: '255604002' }] },
      verificationStatus: { coding: [{ code: 'confirmed' }] }, recorder: { reference: `Practitioner/${doctor}` },
    });
    t.equal(read.extension[0].valueBoolean, true, 'chronic');
  });

  t.test('search', async (t) => {
    const tag = unique();
    const p2 = await makePatient(h);
    const mk = async (key: string, extra: Record<string, unknown>, subject = patient) => {
      const res = await post({ ...condition(extra), subject: { reference: `Patient/${subject}` }, identifier: [{ system: `urn:t:${tag}`, value: key }] });
      t.equal(res.statusCode, 201, res.body);
      return [key, res.json().id] as const;
    };
    const ids = Object.fromEntries([
      await mk('a', { clinicalStatus: { coding: [{ system: CLINICAL, code: 'active' }] }, severity: { coding: [{ system: SCT, code: '24484000' }] }, onsetDateTime: '2021-03-04', recordedDate: '2021-03-10', encounter: { reference: `Encounter/${visit}` }, recorder: { reference: `Practitioner/${doctor}` } }),
      await mk('b', { clinicalStatus: { coding: [{ system: CLINICAL, code: 'resolved' }] }, severity: { coding: [{ system: SCT, code: '255604002' }] }, onsetDateTime: '2022-06-01', code: { coding: [{ system: SCT, code: '38341003' }], text: 'HTN' } }),
      await mk('c', { clinicalStatus: { coding: [{ system: CLINICAL, code: 'remission' }] }, onsetDateTime: '2019-01-01', asserter: { reference: `Practitioner/${doctor}` } }, p2),
    ]);
    const keys = async (q: string) => {
      const res = await h.fhir({ method: 'GET', url: `/fhir/Condition?identifier=urn:t:${tag}|&${q}` });
      t.equal(res.statusCode, 200, q);
      return ((res.json().entry ?? []) as { resource: { id: string } }[]).map((e) => Object.keys(ids).find((k) => ids[k] === e.resource.id)).sort();
    };
    t.same(await keys(`patient=${patient}`), ['a', 'b']);
    t.same(await keys(`subject=Patient/${p2}`), ['c']);
    t.same(await keys(`code=${ICD}|J45.909`), ['a', 'c']);
    t.same(await keys(`code=38341003`), ['b']);
    t.same(await keys('clinical-status=active'), ['a']);
    t.same(await keys('clinical-status=inactive'), [], 'token search is exact: inactive does not subsume resolved and remission');
    t.same(await keys('clinical-status=resolved,remission'), ['b', 'c']);
    t.same(await keys(`clinical-status=${CLINICAL}|remission`), ['c']);
    t.same(await keys(`severity=${SCT}|24484000`), ['a']);
    t.same(await keys('severity=255604002,24484000'), ['a', 'b']);
    t.same(await keys('onset-date=2021-03-04'), ['a']);
    t.same(await keys('onset-date=ge2021'), ['a', 'b']);
    t.same(await keys('onset-date=lt2021-03-04'), ['c']);
    t.same(await keys('recorded-date=2021-03'), ['a']);
    t.same(await keys('recorded-date:missing=true'), ['b', 'c']);
    t.same(await keys(`encounter=Encounter/${visit}`), ['a']);
    t.same(await keys(`recorder=${doctor}`), ['a', 'c'], 'diagnosed_by: the recorder, else the asserter');
    t.same(await keys(`asserter=Practitioner/${doctor}`), ['c']);
    t.same(await keys('verification-status=confirmed'), []);
    t.same(await keys('_sort=-onset-date'), ['a', 'b', 'c']);
    const cs = (await h.fhir({ method: 'GET', url: '/fhir/metadata' })).json();
    const params = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Condition').searchParam as { name: string; definition?: string }[];
    t.equal(params.find((p) => p.name === 'onset-date')!.definition, 'http://hms.example.org/fhir/SearchParameter/Condition-onset-date', 'onset-date is HMS\'s (diagnosis_date)');
    const sp = await h.fhir({ method: 'GET', url: '/fhir/SearchParameter/Condition-onset-date' });
    t.equal(sp.statusCode, 200, sp.body);
    t.match(sp.json().description, /diagnosis_date/);
    const chain = await keys(`patient.family=${(await h.fhir({ method: 'GET', url: `/fhir/Patient/${p2}` })).json().name[0].family}`);
    t.same(chain, ['c'], 'chained');
  });

  t.test('a Condition without subject is refused by the schema (400)', async (t) => {
    const { subject: _s, ...body } = condition();
    const res = await post(body);
    t.equal(res.statusCode, 400);
    t.same(res.json().issue[0].expression, ['Condition.subject']);
  });

  t.test('a day that does not exist is not valid R4: 400', async (t) => {
    const before = await count();
    const res = await post(condition({ onsetDateTime: '2021-02-30' }));
    t.equal(res.statusCode, 400, res.body);
    t.same(res.json().issue[0].expression, ['Condition.onsetDateTime']);
    t.equal(await count(), before);
  });

  t.test('business rules answer 422 and write nothing', async (t) => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['a Group subject', { subject: { reference: 'Group/1' } }, 'Condition.subject'],
      ['no name at all', { code: { coding: [{ system: ICD }] } }, 'Condition.code'],
      ['abatement before onset', { onsetDateTime: '2020-05-01', abatementDateTime: '2020-04-01' }, 'Condition.abatementDateTime'],
      ['onset period ending before it starts', { onsetPeriod: { start: '2020-05-01', end: '2020-04-01' } }, 'Condition.onsetPeriod'],
      ['an unknown patient', { subject: { reference: `Patient/${randomUUID()}` } }, 'Condition.subject'],
      ['an unknown encounter', { encounter: { reference: `Encounter/${randomUUID()}` } }, 'Condition.encounter'],
      ['a recorder who is not a clinician', { recorder: { reference: `Practitioner/${h.userId}` } }, 'Condition.recorder'],
    ];
    for (const [what, extra, expression] of cases) {
      const before = await count();
      const res = await post(condition(extra));
      t.equal(res.statusCode, 422, `${what}: ${res.body}`);
      t.same(res.json().issue[0].expression, [expression], what);
      t.equal(await count(), before, `${what}: nothing written`);
    }
  });
});
