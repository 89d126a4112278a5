import t from 'tap';
import {
  PRESCRIPTION_EXTENSIONS, medicationRequestFromRow, medicationRequestToRow, type MedicationRequest,
} from '../../src/mappers/medication-request-mapper.js';
import { UCUM } from '../../src/mappers/dosage.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const defaults = { userId: 'user-1', now: '2024-03-04 05:06:07' };
const asRead = (row: Record<string, unknown>) => ({ ...row, id: 'm1', _recorded_by: defaults.userId, _recorded_at: defaults.now });
const examples = officialExamples('MedicationRequest');
const example = (name: string) => examples.find((e) => e.name === `MedicationRequest-${name}.json`)!.resource as MedicationRequest;

t.test('there are official MedicationRequest examples', async (t) => { t.ok(examples.length >= 3); });
for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name}`, async (t) => {
    const m = { ...(resource as MedicationRequest), id: 'm1' };
    t.same(withoutIdAndMeta(medicationRequestFromRow(asRead(medicationRequestToRow(m, defaults)), m)), withoutIdAndMeta(m));
  });
}

t.test('medrx0301: dose range, periodic timing as needed, dispense request, contained medication name', async (t) => {
  t.match(medicationRequestToRow(example('medrx0301'), defaults), {
    medication_name: 'Oral Form Oxycodone (product)', dosage: '1-2 TAB', frequency: 'every 4-6 hours as needed', duration: '10 days',
    quantity_prescribed: 30, refills_remaining: 0, start_date: '2015-01-15', end_date: '2016-01-15', status: 'completed',
    instructions: 'Take one to two tablets every four to six hours as needed for rib pain', indication: 'Rib Pain (finding)',
    pharmacy_notes: 'Patient told to take with food', prescribed_date: '2015-01-15', doctor_id: 'f007', visit_id: 'f201', patient_id: 'pat1',
  });
});

t.test('medrx002: dose and frequency read from the dosage text', async (t) => {
  t.match(medicationRequestToRow(example('medrx002'), defaults), { dosage: '1 tablet', frequency: 'once daily', medication_name: 'prescribed medication' });
});

t.test('statuses map to the nearest column value and are kept', async (t) => {
  const m: MedicationRequest = { ...example('medrx0302'), status: 'on-hold' };
  t.equal(medicationRequestToRow(m, defaults).status, 'active');
  t.equal(medicationRequestFromRow(asRead(medicationRequestToRow(m, defaults)), m).status, 'on-hold');
  t.equal(medicationRequestToRow({ ...m, status: 'stopped' }, defaults).status, 'expired');
  t.equal(medicationRequestToRow({ ...m, status: 'entered-in-error' }, defaults).status, 'cancelled');
});

t.test('defaults: prescribed today by the writing user', async (t) => {
  const { authoredOn: _a, requester: _r, ...m } = example('medrx0302');
  t.match(medicationRequestToRow(m as MedicationRequest, defaults), { prescribed_date: '2024-03-04', doctor_id: 'user-1' });
});

t.test('native column changes show in the resource and write back the same', async (t) => {
  const m = example('medrx0302');
  const row = asRead(medicationRequestToRow(m, defaults));
  const back = medicationRequestFromRow({ ...row, dosage: '500 mg', frequency: 'BID', duration: '30 days', status: 'expired', refills_remaining: 3 }, m);
  t.same(back.dosageInstruction?.[0]?.doseAndRate?.[0], { type: m.dosageInstruction![0]!.doseAndRate![0]!.type, doseQuantity: { value: 500, unit: 'mg', system: UCUM, code: 'mg' } });
  t.same(back.dosageInstruction?.[0]?.timing?.repeat, { frequency: 2, period: 1, periodUnit: 'd' });
  t.same(back.dispenseRequest?.expectedSupplyDuration, { value: 30, unit: 'days', system: UCUM, code: 'd' });
  t.equal(back.status, 'stopped');
  t.equal(back.dispenseRequest?.numberOfRepeatsAllowed, 3);
  t.match(medicationRequestToRow(back, defaults), { dosage: '500 mg', frequency: 'twice daily', duration: '30 days', status: 'expired', refills_remaining: 3 });
});

t.test('column text the grammar cannot read is kept in an extension, not lost', async (t) => {
  const m = example('medrx0302');
  const back = medicationRequestFromRow({ ...asRead(medicationRequestToRow(m, defaults)), dosage: 'as directed', frequency: 'per protocol' }, m);
  t.same(back.extension, [
    { url: PRESCRIPTION_EXTENSIONS.dosage, valueString: 'as directed' }, { url: PRESCRIPTION_EXTENSIONS.frequency, valueString: 'per protocol' },
  ]);
  t.notOk(back.dosageInstruction?.[0]?.doseAndRate?.[0]?.doseQuantity);
  t.notOk(back.dosageInstruction?.[0]?.timing);
  t.match(medicationRequestToRow(back, defaults), { dosage: 'as directed', frequency: 'per protocol' });
});

t.test('reads a row written natively with structured dose and timing', async (t) => {
  const m = medicationRequestFromRow({
    id: 'n1', patient_id: 'p1', doctor_id: 'd1', visit_id: null, medication_name: 'Amoxicillin 500 MG Oral Capsule', dosage: '500 mg',
    frequency: 'q8h', duration: '7 days', quantity_prescribed: 21, refills_remaining: 0, instructions: 'Take with water', indication: 'Otitis media',
    status: 'active', prescribed_date: '2024-01-10', start_date: '2024-01-10', end_date: '2024-01-17', pharmacy_notes: null,
  });
  t.same(m, {
    resourceType: 'MedicationRequest', id: 'n1', intent: 'order', status: 'active', subject: { reference: 'Patient/p1' },
    requester: { reference: 'Practitioner/d1' }, medicationCodeableConcept: { text: 'Amoxicillin 500 MG Oral Capsule' },
    dosageInstruction: [{
      patientInstruction: 'Take with water', doseAndRate: [{ doseQuantity: { value: 500, unit: 'mg', system: UCUM, code: 'mg' } }],
      timing: { repeat: { frequency: 1, period: 8, periodUnit: 'h' } },
    }],
    dispenseRequest: {
      expectedSupplyDuration: { value: 7, unit: 'days', system: UCUM, code: 'd' }, quantity: { value: 21 }, numberOfRepeatsAllowed: 0,
      validityPeriod: { start: '2024-01-10', end: '2024-01-17' },
    },
    reasonCode: [{ text: 'Otitis media' }], authoredOn: '2024-01-10',
  });
  t.match(medicationRequestToRow(m, defaults), { dosage: '500 mg', frequency: 'every 8 hours', duration: '7 days' });
});
