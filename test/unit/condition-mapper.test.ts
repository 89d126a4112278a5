import t from 'tap';
import { CHRONIC_EXTENSION, ICD10CM, SNOMED, conditionFromRow, conditionToRow, type Condition } from '../../src/mappers/condition-mapper.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const defaults = { userId: 'user-1', now: '2024-03-04 05:06:07' };
const asRead = (row: Record<string, unknown>) => ({ ...row, id: 'c1', _recorded_by: defaults.userId, _recorded_at: defaults.now });
const base: Condition = { resourceType: 'Condition', subject: { reference: 'Patient/p1' }, code: { text: 'Asthma' } };

const examples = officialExamples('Condition');
t.test('there are official Condition examples', async (t) => { t.ok(examples.length >= 2); });
for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name}`, async (t) => {
    const c = { ...(resource as Condition), id: 'c1' };
    t.same(withoutIdAndMeta(conditionFromRow(asRead(conditionToRow(c, defaults)), c)), withoutIdAndMeta(c));
  });
}

t.test('maps name, ICD-10-CM code, dates, severity, status, notes and people to columns', async (t) => {
  const row = conditionToRow({
    ...base,
    code: { coding: [{ system: SNOMED, code: '195967001', display: 'Asthma' }, { system: ICD10CM, code: 'J45.909' }] },
    severity: { coding: [{ system: SNOMED, code: '442452003' }] },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'remission' }] },
    onsetDateTime: '2020-02-03T10:00:00Z', recordedDate: '2020-02-05', note: [{ text: 'n1' }, { text: 'n2' }],
    encounter: { reference: 'Encounter/v1' }, asserter: { reference: 'Practitioner/d2' },
  }, defaults);
  t.match(row, {
    patient_id: 'p1', visit_id: 'v1', condition_name: 'Asthma', icd_10_code: 'J45.909', diagnosis_date: '2020-02-03', recorded_date: '2020-02-05',
    severity: 'critical', status: 'in_remission', notes: 'n1', diagnosed_by: 'd2',
  });
});

t.test('defaults: the name from a code alone, the diagnosis date from recordedDate or the write, the writing user', async (t) => {
  const row = conditionToRow({ ...base, code: { coding: [{ system: ICD10CM, code: 'E11.9' }] }, recordedDate: '2019-01-01' }, defaults);
  t.equal(row.condition_name, 'E11.9');
  t.equal(row.diagnosis_date, '2019-01-01');
  t.equal(row.diagnosed_by, 'user-1');
  t.equal(row.status, null, 'no clinical status stores NULL');
  t.equal(conditionToRow(base, defaults).diagnosis_date, '2024-03-04');
});

t.test('clinical statuses map to the nearest column value; chronic is an HMS extension', async (t) => {
  const withStatus = (code: string, chronic = false): Condition => ({
    ...base, clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code }] },
    ...(chronic ? { extension: [{ url: CHRONIC_EXTENSION, valueBoolean: true }] } : {}),
  });
  const status = (c: Condition) => conditionToRow(c, defaults).status;
  t.equal(status(withStatus('active')), 'active');
  t.equal(status(withStatus('active', true)), 'chronic');
  t.equal(status(withStatus('relapse')), 'active');
  t.equal(status(withStatus('recurrence')), 'active');
  t.equal(status(withStatus('inactive')), 'resolved');
  t.equal(status(withStatus('resolved')), 'resolved');
  const relapse = withStatus('relapse');
  t.same(conditionFromRow(asRead(conditionToRow(relapse, defaults)), relapse).clinicalStatus, relapse.clinicalStatus, 'relapse is kept');
});

t.test('native column changes show in the resource', async (t) => {
  const c: Condition = { ...base, code: { coding: [{ system: SNOMED, code: '195967001' }], text: 'Asthma' }, onsetString: 'childhood' };
  const row = asRead(conditionToRow(c, defaults));
  const back = conditionFromRow({ ...row, status: 'chronic', severity: 'mild', icd_10_code: 'J45.20', diagnosis_date: '2021-06-07', notes: 'new' }, c);
  t.equal(back.extension?.[0]?.url, CHRONIC_EXTENSION);
  t.equal(back.clinicalStatus?.coding?.[0]?.code, 'active');
  t.same(back.severity, { coding: [{ system: SNOMED, code: '255604002', display: 'Mild' }] });
  t.same(back.code?.coding, [{ system: ICD10CM, code: 'J45.20' }, { system: SNOMED, code: '195967001' }], 'SNOMED coding kept');
  t.equal(back.onsetDateTime, '2021-06-07');
  t.notOk('onsetString' in back, 'the changed date replaces the other onset');
  t.equal(back.note?.[0]?.text, 'new');
  const again = conditionToRow(back, defaults);
  t.match(again, { status: 'chronic', severity: 'mild', icd_10_code: 'J45.20', diagnosis_date: '2021-06-07', notes: 'new' }, 'and write back the same');
});

t.test('reads a row written natively as a confirmed Condition with an ICD-10-CM coding', async (t) => {
  const c = conditionFromRow({
    id: 'n1', patient_id: 'p9', visit_id: 'v9', condition_name: 'Type 2 diabetes', icd_10_code: 'E11.9', diagnosis_date: '2018-04-05',
    recorded_date: null, severity: 'moderate', status: 'in_remission', notes: null, diagnosed_by: 'd9',
  });
  t.same(c, {
    resourceType: 'Condition', id: 'n1',
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
    subject: { reference: 'Patient/p9' }, encounter: { reference: 'Encounter/v9' },
    code: { coding: [{ system: ICD10CM, code: 'E11.9' }], text: 'Type 2 diabetes' }, onsetDateTime: '2018-04-05',
    severity: { coding: [{ system: SNOMED, code: '6736007', display: 'Moderate' }] },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'remission' }] },
    recorder: { reference: 'Practitioner/d9' },
  });
});
