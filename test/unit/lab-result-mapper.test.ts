import t from 'tap';
import { labSourceFields, parseRange, quantityUnit } from '../../src/mappers/lab-result-mapper.js';
import { serviceRequestFromRow } from '../../src/mappers/service-request-mapper.js';
import type { Observation } from '../../src/mappers/observation-mapper.js';

const UCUM = 'http://unitsofmeasure.org';

t.test('a native unit is a UCUM code only when it is a known one', async (t) => {
  t.same(quantityUnit('mg/dL'), { unit: 'mg/dL', system: UCUM, code: 'mg/dL' });
  t.same(quantityUnit('10*3/uL'), { unit: '10*3/uL', system: UCUM, code: '10*3/uL' });
  t.same(quantityUnit('K/uL'), { unit: 'K/uL' });
  t.same(quantityUnit('cells/hpf'), { unit: 'cells/hpf' });
  t.same(parseRange('70-99 mg/dL').low, { value: 70, unit: 'mg/dL', system: UCUM, code: 'mg/dL' });
  t.same(parseRange('0-5 cells/hpf').high, { value: 5, unit: 'cells/hpf' });
  const field = labSourceFields.find((f) => f.column === 'l_result_unit')!;
  const o = { resourceType: 'Observation', valueQuantity: { value: 3, unit: 'x', system: UCUM, code: 'x' } } as Observation;
  field.fromColumn(o, 'K/uL');
  t.same(o.valueQuantity, { value: 3, unit: 'K/uL' }, 'a native change to free text drops system and code');
  field.fromColumn(o, 'g/dL');
  t.same(o.valueQuantity, { value: 3, unit: 'g/dL', system: UCUM, code: 'g/dL' });
  t.equal(field.toColumn(o, {}), 'g/dL');
});

t.test('ServiceRequest category: imaging rows are SNOMED Imaging', async (t) => {
  const row = { id: '1', patient_id: 'p', ordered_by: 'u', status: 'ordered', test_name: 'Chest X-ray', test_category: 'imaging' };
  const img = serviceRequestFromRow(row) as unknown as { category: { coding: { code: string }[] }[] };
  t.equal(img.category[0]!.coding[0]!.code, '363679005');
  const lab = serviceRequestFromRow({ ...row, test_category: 'blood' }) as unknown as typeof img;
  t.equal(lab.category[0]!.coding[0]!.code, '108252007');
});
