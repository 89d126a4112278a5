import t from 'tap';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { testApp, type TestApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences, unique } from '../helpers/world.js';
import { observationRowsForVitals } from '../../src/mappers/vitals-mapper.js';
import { observationRowForLab } from '../../src/mappers/lab-result-mapper.js';

const LOINC = 'http://loinc.org';
const VITAL = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }];

async function makeVisit(h: TestApp, patientId: string, doctorId: string): Promise<string> {
  const id = randomUUID();
  await h.db('visits').insert({ id, patient_id: patientId, doctor_id: doctorId, visit_date: '2020-01-01', visit_time: '10:00:00', visit_type: 'routine' });
  return id;
}

const heartRate = (patient: string, value: number, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation', status: 'final', category: VITAL,
  code: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }] },
  subject: { reference: `Patient/${patient}` }, effectiveDateTime: '2020-05-01T10:00:00Z',
  valueQuantity: { value, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' }, ...extra,
});

const synthea = (): Record<string, unknown>[] => {
  const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'synthea');
  return readdirSync(dir).flatMap((f) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { entry: { resource: Record<string, unknown> }[] }).entry
    .map((e) => e.resource).filter((r) => r.resourceType === 'Observation'));
};

t.test('Observation', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);
  const visit = await makeVisit(h, patient, doctor);
  const targets = { Patient: patient, Practitioner: doctor, Encounter: visit };

  for (const { name, resource } of officialExamples('Observation')) {
    t.test(`official example ${name} round-trips`, async (t) => {
      const body = rewriteReferences(resource, targets);
      const created = await h.fhir({ method: 'POST', url: '/fhir/Observation', payload: body });
      t.equal(created.statusCode, 201, created.body);
      const read = await h.fhir({ method: 'GET', url: `/fhir/Observation/${created.json().id}` });
      t.equal(read.statusCode, 200);
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
    });
  }

  t.test('every Synthea Observation is creatable and reads back unchanged', async (t) => {
    let n = 0;
    for (const r of synthea()) {
      const body = rewriteReferences({ ...r, subject: { reference: 'Patient/x' }, encounter: { reference: 'Encounter/x' } }, targets);
      const created = await h.fhir({ method: 'POST', url: '/fhir/Observation', payload: body });
      if (created.statusCode !== 201) { t.fail(`${String((r.code as { text?: string }).text)}: ${created.body}`); continue; }
      const read = await h.fhir({ method: 'GET', url: `/fhir/Observation/${created.json().id}` });
      if (!t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body))) break;
      n++;
    }
    t.ok(n > 1000, `${n} Synthea Observations`);
  });

  t.test('a vital sign writes its vitals row; update and delete follow it', async (t) => {
    const created = await h.fhir({ method: 'POST', url: '/fhir/Observation', payload: heartRate(patient, 72, { note: [{ text: 'rested' }] }) });
    t.equal(created.statusCode, 201, created.body);
    const id = created.json().id;
    const proj = await h.db('observations').where({ id }).first();
    t.match(proj, { source: 'vitals', measure: 'heart-rate', patient_id: patient, code: '8867-4', status: 'final' });
    t.equal(Number(proj.value_quantity), 72);
    const v = await h.db('vitals').where({ id: proj.source_id }).first();
    t.match(v, { heart_rate: 72, recorded_by: h.userId, notes: 'rested', patient_id: patient });
    t.match(String(v.recorded_at), /^2020-05-01 10:00:00/);

    const upd = await h.fhir({ method: 'PUT', url: `/fhir/Observation/${id}`, payload: { ...heartRate(patient, 80), id } });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal((await h.db('vitals').where({ id: proj.source_id }).first()).heart_rate, 80);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Observation/${id}/_history/1` })).json().valueQuantity.value, 72);

    // a native change of the column shows through
    await h.db('vitals').where({ id: proj.source_id }).update({ heart_rate: 90 });
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Observation/${id}` })).json().valueQuantity.value, 90);

    // changing the code moves the observation to another measurement
    const temp = { ...heartRate(patient, 37.2), id, code: { coding: [{ system: LOINC, code: '8310-5' }] }, valueQuantity: { value: 37.2, unit: 'C', system: 'http://unitsofmeasure.org', code: 'Cel' } };
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/Observation/${id}`, payload: temp })).statusCode, 200);
    const moved = await h.db('observations').where({ id }).first();
    t.equal(moved.measure, 'temperature');
    t.notOk(await h.db('vitals').where({ id: proj.source_id }).first(), 'the old vitals row went');
    t.match(await h.db('vitals').where({ id: moved.source_id }).first(), { temperature_unit: 'C' });

    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Observation/${id}` })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Observation/${id}` })).statusCode, 410);
    t.notOk(await h.db('vitals').where({ id: moved.source_id }).first());
    t.notOk(await h.db('observations').where({ id }).first());
    const hist = await h.fhir({ method: 'GET', url: `/fhir/Observation/${id}/_history` });
    t.equal(hist.json().entry.length, 4);
  });

  t.test('a laboratory Observation writes lab_results', async (t) => {
    const body = rewriteReferences(officialExamples('Observation').find((e) => e.name === 'Observation-f001.json')!.resource, targets);
    const created = await h.fhir({ method: 'POST', url: '/fhir/Observation', payload: body });
    t.equal(created.statusCode, 201, created.body);
    const proj = await h.db('observations').where({ id: created.json().id }).first();
    t.match(proj, { source: 'lab', code: '15074-8', code_system: LOINC, unit: 'mmol/L' });
    const lab = await h.db('lab_results').where({ id: proj.source_id }).first();
    t.match(lab, {
      test_code: '15074-8', test_name: 'Glucose [Moles/volume] in Blood', test_category: 'blood', result_value: '6.3', result_unit: 'mmol/L',
      reference_range: '3.1-6.2 mmol/L', status: 'completed', abnormal_flag: 'high', ordered_by: doctor,
    });
    t.match(String(lab.collection_date), /^2013-04-02/);
    t.match(String(lab.result_date), /^2013-04-03/);
    await h.db('lab_results').where({ id: proj.source_id }).update({ status: 'cancelled', abnormal_flag: 'critical' });
    const read = (await h.fhir({ method: 'GET', url: `/fhir/Observation/${proj.id}` })).json();
    t.equal(read.status, 'cancelled');
    t.equal(read.interpretation[0].coding[0].code, 'AA');
  });

  t.test('rows written natively read as Observations', async (t) => {
    const vitalsId = randomUUID();
    const vitals = {
      id: vitalsId, patient_id: patient, visit_id: visit, recorded_by: doctor, recorded_at: '2021-03-04 08:09:10', systolic_bp: 120, diastolic_bp: 80,
      heart_rate: 61, temperature: 98.6, temperature_unit: 'F', weight: 154, weight_unit: 'lbs', height_cm: 175, pain_scale: 3, notes: 'seeded',
    };
    await h.db('vitals').insert(vitals);
    const rows = observationRowsForVitals(vitals, uuidv7);
    t.same(rows.map((r) => r.measure).sort(), ['bmi', 'bp', 'heart-rate', 'height', 'pain', 'temperature', 'weight']);
    await h.db('observations').insert(rows);
    const byMeasure = Object.fromEntries(rows.map((r) => [r.measure, r.id]));
    const bp = (await h.fhir({ method: 'GET', url: `/fhir/Observation/${byMeasure.bp}` })).json();
    t.match(bp, {
      status: 'final', code: { coding: [{ system: LOINC, code: '85354-9' }] }, subject: { reference: `Patient/${patient}` },
      encounter: { reference: `Encounter/${visit}` }, effectiveDateTime: '2021-03-04T08:09:10Z', performer: [{ reference: `Practitioner/${doctor}` }],
      note: [{ text: 'seeded' }],
    });
    t.same(bp.component.map((c: { valueQuantity: { value: number } }) => c.valueQuantity.value), [120, 80]);
    const temp = (await h.fhir({ method: 'GET', url: `/fhir/Observation/${byMeasure.temperature}` })).json();
    t.match(temp.valueQuantity, { value: 98.6, code: '[degF]' });
    const bmi = (await h.fhir({ method: 'GET', url: `/fhir/Observation/${byMeasure.bmi}` })).json();
    t.equal(bmi.valueQuantity.value, 22.8, 'BMI computed from weight and height');

    const labId = randomUUID();
    const lab = {
      id: labId, patient_id: patient, ordered_by: doctor, test_name: 'Hemoglobin', test_code: '718-7', test_category: 'blood', result_value: '13.5',
      result_unit: 'g/dL', reference_range: '12-16 g/dL', status: 'completed', abnormal_flag: 'normal', ordered_date: '2021-03-01', collection_date: '2021-03-02',
    };
    await h.db('lab_results').insert(lab);
    const labRow = observationRowForLab(lab, uuidv7);
    await h.db('observations').insert(labRow);
    const o = (await h.fhir({ method: 'GET', url: `/fhir/Observation/${labRow.id}` })).json();
    t.match(o, {
      status: 'final', code: { coding: [{ system: LOINC, code: '718-7' }], text: 'Hemoglobin' }, valueQuantity: { value: 13.5, code: 'g/dL' },
      effectiveDateTime: '2021-03-02', referenceRange: [{ low: { value: 12 }, high: { value: 16 }, text: '12-16 g/dL' }],
      basedOn: [{ reference: `ServiceRequest/${labId}` }],
    });
    const byDate = (await h.fhir({ method: 'GET', url: `/fhir/Observation?patient=${patient}&date=2021-03-04&category=vital-signs` })).json();
    t.equal(byDate.total, 7);
  });

  t.test('search parameters', async (t) => {
    const p = await makePatient(h);
    const mk = async (body: Record<string, unknown>) => {
      const r = await h.fhir({ method: 'POST', url: '/fhir/Observation', payload: body });
      t.equal(r.statusCode, 201, r.statusCode === 201 ? 'created' : r.body);
      return r.json().id as string;
    };
    const a = await mk(heartRate(p, 60, { effectiveDateTime: '2020-01-01T10:00:00Z', encounter: { reference: `Encounter/${visit}` }, identifier: [{ system: 'urn:t', value: unique() }] }));
    const b = await mk(heartRate(p, 100, { effectiveDateTime: '2020-02-01T10:00:00Z', status: 'preliminary' }));
    const c = await mk(rewriteReferences(officialExamples('Observation').find((e) => e.name === 'Observation-f001.json')!.resource, { ...targets, Patient: p }));
    const d = await mk(rewriteReferences(officialExamples('Observation').find((e) => e.name === 'Observation-blood-pressure.json')!.resource, { ...targets, Patient: p }));
    const ids = async (q: string) => ((await h.fhir({ method: 'GET', url: `/fhir/Observation?${q}` })).json().entry ?? [])
      .map((e: { resource: { id: string } }) => e.resource.id).sort();
    const s = (...x: string[]) => [...x].sort();
    t.same(await ids(`patient=${p}`), s(a, b, c, d));
    t.same(await ids(`subject=Patient/${p}`), s(a, b, c, d));
    t.same(await ids(`patient=${p}&category=vital-signs`), s(a, b, d));
    t.same(await ids(`patient=${p}&category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory`), s(c));
    t.same(await ids(`patient=${p}&code=${LOINC}|8867-4`), s(a, b));
    t.same(await ids(`patient=${p}&code=8867-4`), s(a, b));
    t.same(await ids(`patient=${p}&code=http://other|8867-4`), []);
    t.same(await ids(`patient=${p}&combo-code=8480-6`), s(d));
    t.same(await ids(`patient=${p}&component-code=${LOINC}|8462-4`), s(d));
    t.same(await ids(`patient=${p}&date=ge2020-01-15&date=lt2020-03`), s(b));
    t.same(await ids(`patient=${p}&date=2020-01`), s(a));
    t.same(await ids(`patient=${p}&date=lt2014`), s(c, d));
    t.same(await ids(`patient=${p}&status=preliminary`), s(b));
    t.same(await ids(`patient=${p}&encounter=Encounter/${visit}`), s(a));
    t.same(await ids(`patient=${p}&value-quantity=gt70`), s(b));
    t.same(await ids(`patient=${p}&value-quantity=le60|http://unitsofmeasure.org|/min`), s(a));
    t.same(await ids(`patient=${p}&value-quantity=6.3|http://unitsofmeasure.org|mmol/L`), s(c));
    t.same(await ids(`patient=${p}&value-quantity=6.3||mg/dL`), []);
    t.same(await ids(`patient=${p}&performer=Practitioner/${doctor}`), s(c, d));
    const sorted = (await h.fhir({ method: 'GET', url: `/fhir/Observation?patient=${p}&_sort=-date` })).json().entry.map((e: { resource: { id: string } }) => e.resource.id);
    t.same(sorted, [b, a, c, d]);
    const last = (await h.fhir({ method: 'GET', url: `/fhir/Observation?patient=${p}&_sort=_lastUpdated` })).json().entry.length;
    t.equal(last, 4);
  });

  t.test('business rules refuse with 422 and write nothing', async (t) => {
    const before = Number((await h.db('vitals').count({ n: '*' }))[0]!.n);
    const refuse = async (body: Record<string, unknown>, expression: RegExp) => {
      const r = await h.fhir({ method: 'POST', url: '/fhir/Observation', payload: body });
      t.equal(r.statusCode, 422, r.statusCode === 422 ? 'refused' : r.body);
      t.match(r.json().issue[0].expression[0], expression);
    };
    await refuse(heartRate(patient, 350), /Observation\.valueQuantity\.value/);
    await refuse(heartRate(patient, 10), /valueQuantity\.value/);
    await refuse(heartRate(patient, 70, { valueQuantity: { value: 70, system: 'http://unitsofmeasure.org', code: 'Hz' } }), /valueQuantity\.code/);
    const bpBody = rewriteReferences(officialExamples('Observation').find((e) => e.name === 'Observation-blood-pressure.json')!.resource, targets) as Record<string, unknown> & { component: { valueQuantity: { value: number } }[] };
    bpBody.component[0]!.valueQuantity.value = 310;
    await refuse(bpBody, /Observation\.component\[0\]\.valueQuantity\.value/);
    await refuse({ ...heartRate(patient, 37), code: { coding: [{ system: LOINC, code: '8310-5' }] }, valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: '[degF]' } }, /valueQuantity\.value/);
    await refuse({ ...heartRate(patient, 1), code: { coding: [{ system: LOINC, code: '72514-3' }] }, valueQuantity: { value: 11, system: 'http://unitsofmeasure.org', code: '{score}' } }, /valueQuantity\.value/);
    await refuse({ ...heartRate(patient, 1), code: { coding: [{ system: LOINC, code: '29463-7' }] }, valueQuantity: { value: 800, system: 'http://unitsofmeasure.org', code: 'kg' } }, /valueQuantity\.value/);
    await refuse({ ...heartRate(patient, 70), effectiveDateTime: undefined, effectivePeriod: { start: '2020-02-02', end: '2020-02-01' } }, /Observation\.effectivePeriod/);
    await refuse(heartRate(randomUUID(), 70), /Observation\.subject/);
    await refuse({ ...heartRate(patient, 70), encounter: { reference: `Encounter/${randomUUID()}` } }, /Observation\.encounter/);
    await refuse({ ...heartRate(patient, 70), subject: { reference: 'Group/1' } }, /Observation\.subject/);
    t.equal(Number((await h.db('vitals').count({ n: '*' }))[0]!.n), before);
  });
});
