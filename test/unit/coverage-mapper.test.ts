import t from 'tap';
import {
  CLASS_SYSTEM, COPAY_SYSTEM, COVERAGE_EXTENSIONS, coverageFromRow, coverageToRow, RELATIONSHIP_SYSTEM, statusToColumns, type Coverage,
} from '../../src/mappers/coverage-mapper.js';
import { extensionValue } from '../../src/mappers/datatypes.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const examples = officialExamples('Coverage');
const defaults = { userId: 'u1', now: '2024-03-01 10:00:00' };
const stored = (c: Coverage) => ({ ...coverageToRow(c, defaults), id: 'c1', _recorded_by: 'u1', _recorded_at: defaults.now });

t.test('there are three official Coverage examples', async (t) => { t.equal(examples.length, 3); });

for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name}`, async (t) => {
    const c = { ...(resource as Coverage), id: 'c1' };
    t.same(withoutIdAndMeta(coverageFromRow(stored(c), c)), withoutIdAndMeta(c));
  });
}

t.test('maps 7546D onto the insurance columns', async (t) => {
  const c = examples.find((e) => e.name === 'Coverage-7546D.json')!.resource as Coverage;
  t.match(coverageToRow(c, defaults), {
    patient_id: '5', insurance_company: 'Organization/2', policy_number: 'AB98761', group_number: 'WESTAIR', policy_holder_name: 'self',
    relationship_to_patient: 'self', coverage_type: 'secondary', effective_date: '2011-03-17', expiration_date: '2012-03-17',
    copay_amount: 20, deductible_amount: null, deductible_met: 0, status: 'active', pre_auth_required: false, notes: null,
  });
});

t.test('order, relationship, status and policy holder mappings', async (t) => {
  const base: Coverage = { resourceType: 'Coverage', status: 'active', beneficiary: { reference: 'Patient/p' }, payor: [{ display: 'Acme' }], identifier: [{ value: 'P1' }] };
  const row = (extra: Partial<Coverage>) => coverageToRow({ ...base, ...extra }, defaults);
  t.equal(row({}).coverage_type, 'primary', 'no order = primary');
  t.equal(row({ order: 3 }).coverage_type, 'tertiary');
  t.equal(row({ order: 4 }).coverage_type, null, 'beyond 3: no column value (refused by the check)');
  t.equal(row({ relationship: { coding: [{ code: 'common' }] } }).relationship_to_patient, 'spouse');
  t.equal(row({ relationship: { coding: [{ code: 'injured' }] } }).relationship_to_patient, 'other');
  t.equal(row({ status: 'cancelled' }).status, 'inactive');
  t.equal(row({ status: 'cancelled', extension: [{ url: COVERAGE_EXTENSIONS.statusDetail, valueCode: 'expired' }] }).status, 'expired');
  t.equal(row({ policyHolder: { display: 'Jane Doe' }, relationship: { coding: [{ code: 'spouse' }] } }).policy_holder_name, 'Jane Doe');
  t.equal(row({ subscriber: { display: 'Sub Scriber' } }).policy_holder_name, 'Sub Scriber');
  t.equal(row({ relationship: { coding: [{ code: 'child' }] } }).policy_holder_name, null, 'no name and not self: nothing (refused by the check)');
  t.equal(row({}).effective_date, '2024-03-01', 'an absent start is the write day');
  t.same(statusToColumns('cancelled'), ['inactive', 'expired']);
});

t.test('a native row reads as a whole Coverage', async (t) => {
  const c = coverageFromRow({
    id: 'n1', patient_id: 'p1', insurance_company: 'Blue Shield', policy_number: 'POL-1', group_number: 'G-7', policy_holder_name: 'John Smith',
    relationship_to_patient: 'spouse', coverage_type: 'secondary', effective_date: '2023-01-01', expiration_date: '2023-12-31',
    copay_amount: '25.00', deductible_amount: '1000.00', deductible_met: '250.00', status: 'expired', pre_auth_required: 1, notes: 'Call first',
  });
  t.same(c, {
    resourceType: 'Coverage', id: 'n1',
    beneficiary: { reference: 'Patient/p1' },
    payor: [{ display: 'Blue Shield' }],
    identifier: [{ value: 'POL-1' }],
    class: [{ type: { coding: [{ system: CLASS_SYSTEM, code: 'group' }] }, value: 'G-7' }],
    relationship: { coding: [{ system: RELATIONSHIP_SYSTEM, code: 'spouse' }] },
    policyHolder: { display: 'John Smith' },
    order: 2,
    period: { start: '2023-01-01', end: '2023-12-31' },
    costToBeneficiary: [
      { type: { coding: [{ system: COPAY_SYSTEM, code: 'copay' }] }, valueMoney: { value: 25, currency: 'USD' } },
      { type: { coding: [{ system: COPAY_SYSTEM, code: 'deductible' }] }, valueMoney: { value: 1000, currency: 'USD' } },
    ],
    extension: [
      { url: COVERAGE_EXTENSIONS.deductibleMet, valueMoney: { value: 250, currency: 'USD' } },
      { url: COVERAGE_EXTENSIONS.statusDetail, valueCode: 'expired' },
      { url: COVERAGE_EXTENSIONS.preAuthRequired, valueBoolean: true },
      { url: COVERAGE_EXTENSIONS.notes, valueString: 'Call first' },
    ],
    status: 'cancelled',
  });
  // and the read resource implies the same columns again
  t.match(coverageToRow(c, defaults), { status: 'expired', coverage_type: 'secondary', copay_amount: 25, pre_auth_required: true, policy_number: 'POL-1' });
});

t.test('native changes show in an API-written coverage', async (t) => {
  const c = examples.find((e) => e.name === 'Coverage-7546D.json')!.resource as Coverage;
  const read = coverageFromRow({ ...stored(c), copay_amount: '30.00', status: 'inactive', deductible_met: '10.00' }, c);
  t.equal(read.costToBeneficiary![0]!.valueMoney!.value, 30);
  t.same(read.costToBeneficiary![0]!.exception, c.costToBeneficiary![0]!.exception, 'the rest of the entry is kept');
  t.equal(read.status, 'cancelled');
  t.same(extensionValue(read, COVERAGE_EXTENSIONS.deductibleMet, 'valueMoney'), { value: 10, currency: 'USD' });
});
