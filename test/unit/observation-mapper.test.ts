import t from 'tap';
import { v7 as uuidv7 } from 'uuid';
import { officialExamples } from '../helpers/fixtures.js';
import { observationFromRow, observationToRow } from '../../src/fhir/resources/Observation.js';
import { computeBmi, observationRowsForVitals, checkVital, measureOf } from '../../src/mappers/vitals-mapper.js';
import { observationRowForLab } from '../../src/mappers/lab-result-mapper.js';
import type { Observation } from '../../src/mappers/observation-mapper.js';

const defaults = { userId: 'u1', now: '2024-01-02 03:04:05' };
/** The row a read sees: projection + source columns, with the version's recorded_by / recorded_at. */
const stored = (o: Observation) => ({ id: 'x', ...observationToRow(o, defaults), _recorded_by: 'u1', _recorded_at: defaults.now });

t.test('every official example round-trips through toRow/fromRow', async (t) => {
  for (const { name, resource } of officialExamples('Observation')) {
    const o = { ...resource, subject: { reference: 'Patient/p1' } } as Observation;
    t.same(observationFromRow(stored(o), o), { ...o, id: 'x' }, name);
  }
});

t.test('vital signs map to their vitals columns', async (t) => {
  const bp = officialExamples('Observation').find((e) => e.name === 'Observation-blood-pressure.json')!.resource as Observation;
  t.match(observationToRow(bp, defaults), { source: 'vitals', measure: 'bp', v_systolic_bp: 107, v_diastolic_bp: 60, v_recorded_by: 'example', v_recorded_at: '2012-09-17 00:00:00' });
  const height = officialExamples('Observation').find((e) => e.name === 'Observation-body-height.json')!.resource as Observation;
  t.match(observationToRow(height, defaults), { v_height_cm: 170, v_height_feet: 5, v_height_inches: 7, unit: '[in_i]' });
  const weight = officialExamples('Observation').find((e) => e.name === 'Observation-example.json')!.resource as Observation;
  t.match(observationToRow(weight, defaults), { v_weight: 185, v_weight_unit: 'lbs', value_quantity: 185 });
  const lab = officialExamples('Observation').find((e) => e.name === 'Observation-f001.json')!.resource as Observation;
  t.match(observationToRow(lab, defaults), { source: 'lab', measure: null, l_test_code: '15074-8', l_abnormal_flag: 'high', l_status: 'completed', l_ordered_by: 'f005', l_ordered_date: '2013-04-02' });
});

t.test('a stored column that changed wins over the kept resource', async (t) => {
  const hr = officialExamples('Observation').find((e) => e.name === 'Observation-heart-rate.json')!.resource as Observation;
  const row = { ...stored(hr), v_heart_rate: 51 };
  t.same(observationFromRow(row, hr).valueQuantity, { ...hr.valueQuantity, value: 51 });
});

t.test('native rows read sensibly', async (t) => {
  const vitals = { id: 'v1', patient_id: 'p1', recorded_by: 'd1', recorded_at: '2021-01-01 10:00:00', weight: 70, weight_unit: 'kg', height_feet: 5, height_inches: 9, oxygen_saturation: 97 };
  t.equal(computeBmi(vitals), 22.8);
  const rows = observationRowsForVitals(vitals, uuidv7);
  t.same(rows.map((r) => r.measure), ['spo2', 'weight', 'height', 'bmi']);
  const height = rows.find((r) => r.measure === 'height')!;
  const joined = { ...height, ...Object.fromEntries(Object.entries(vitals).map(([k, v]) => [`v_${k}`, v])) };
  t.match(observationFromRow(joined), { valueQuantity: { value: 69, code: '[in_i]' }, performer: [{ reference: 'Practitioner/d1' }], effectiveDateTime: '2021-01-01T10:00:00Z', status: 'final' });
  const lab = { id: 'l1', patient_id: 'p1', ordered_by: 'd1', test_name: 'Culture', test_code: 'C-1', test_category: 'microbiology', result_value: 'no growth', status: 'in_progress', abnormal_flag: 'normal', ordered_date: '2021-01-01' };
  const proj = observationRowForLab(lab, uuidv7);
  t.match(proj, { status: 'preliminary', value_quantity: null, code: 'C-1' });
  const o = observationFromRow({ ...proj, ...Object.fromEntries(Object.entries(lab).map(([k, v]) => [`l_${k}`, v])) });
  t.match(o, { status: 'preliminary', valueString: 'no growth', code: { text: 'Culture' }, basedOn: [{ reference: 'ServiceRequest/l1' }] });
});

t.test('realistic ranges', async (t) => {
  const q = (code: string, value: number, unit: string) => ({ resourceType: 'Observation', code: { coding: [{ system: 'http://loinc.org', code }] }, valueQuantity: { value, system: 'http://unitsofmeasure.org', code: unit } }) as Observation;
  const check = (o: Observation) => checkVital(o, measureOf(o)!);
  t.notOk(check(q('8310-5', 98.6, '[degF]')));
  t.ok(check(q('8310-5', 46, 'Cel')));
  t.notOk(check(q('8302-2', 1.8, 'm')));
  t.ok(check(q('8302-2', 300, 'cm')));
  t.notOk(check(q('29463-7', 1500, '[lb_av]')));
  t.ok(check(q('29463-7', 1600, '[lb_av]')));
  t.ok(check(q('2708-6', 40, '%')));
  t.ok(check(q('9279-1', 3, '/min')));
});
