import t from 'tap';
import {
  CPT_SYSTEM, ICD10CM_SYSTEM, INVOICE_EXTENSIONS, INVOICE_NUMBER_SYSTEM, invoiceFromRow, invoiceToRow, statusToColumns, type Invoice,
} from '../../src/mappers/invoice-mapper.js';
import { extensionValue } from '../../src/mappers/datatypes.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const examples = officialExamples('Invoice');
const defaults = { userId: 'u1', now: '2024-03-01 10:00:00' };
/** A row as the database returns it after a write with `defaults` (amount_due computed as the DB does). */
const stored = (inv: Invoice) => {
  const row = invoiceToRow(inv, defaults);
  return { ...row, id: 'x1', amount_due: Number(row.amount_charged) - Number(row.amount_paid), _recorded_by: 'u1', _recorded_at: defaults.now };
};

t.test('there is an official Invoice example', async (t) => { t.ok(examples.length >= 1); });

for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name}`, async (t) => {
    const inv = { ...(resource as Invoice), id: 'x1' };
    t.same(withoutIdAndMeta(invoiceFromRow(stored(inv), inv)), withoutIdAndMeta(inv));
  });
}

const full: Invoice = {
  resourceType: 'Invoice', id: 'x1', status: 'issued', subject: { reference: 'Patient/p1' },
  identifier: [{ system: 'urn:other', value: 'OTHER' }, { system: INVOICE_NUMBER_SYSTEM, value: 'INV-1' }],
  date: '2024-02-10', totalGross: { value: 150, currency: 'USD' },
  lineItem: [{ chargeItemCodeableConcept: { coding: [{ system: CPT_SYSTEM, code: '99213' }], text: 'Office visit' } }, { chargeItemCodeableConcept: { coding: [{ system: CPT_SYSTEM, code: '93000' }] } }],
  note: [{ text: 'first' }, { text: 'second' }],
  extension: [
    { url: INVOICE_EXTENSIONS.paymentStatus, valueCode: 'partial' },
    { url: INVOICE_EXTENSIONS.amountPaid, valueMoney: { value: 50, currency: 'USD' } },
    { url: INVOICE_EXTENSIONS.serviceDate, valueDate: '2024-02-09' },
    { url: INVOICE_EXTENSIONS.dueDate, valueDate: '2024-03-10' },
    { url: INVOICE_EXTENSIONS.paymentMethod, valueCode: 'credit_card' },
    { url: INVOICE_EXTENSIONS.paymentDate, valueDate: '2024-02-20' },
    { url: INVOICE_EXTENSIONS.diagnosis, valueCoding: { system: ICD10CM_SYSTEM, code: 'I10', display: 'Hypertension' } },
    { url: INVOICE_EXTENSIONS.diagnosis, valueCoding: { system: ICD10CM_SYSTEM, code: 'E11.9' } },
    { url: INVOICE_EXTENSIONS.encounter, valueReference: { reference: 'Encounter/v1' } },
  ],
};

t.test('maps every column and never writes amount_due', async (t) => {
  const row = invoiceToRow(full, defaults);
  t.match(row, {
    patient_id: 'p1', invoice_number: 'INV-1', payment_status: 'partial', amount_charged: 150, amount_paid: 50, billing_date: '2024-02-10',
    service_date: '2024-02-09', due_date: '2024-03-10', procedure_codes: '99213, 93000', diagnosis_codes: 'I10, E11.9', notes: 'first',
    service_description: 'Office visit', payment_method: 'credit_card', payment_date: '2024-02-20', visit_id: 'v1', appointment_id: null, created_by: 'u1',
  });
  t.notOk('amount_due' in row);
  t.same(withoutIdAndMeta(invoiceFromRow(stored(full), full)), withoutIdAndMeta(full), 'and reads back unchanged');
});

t.test('defaults: invoice date = the write day, service date = invoice date, due 30 days later, description "Invoice"', async (t) => {
  const row = invoiceToRow({ resourceType: 'Invoice', status: 'issued', subject: { reference: 'Patient/p' }, totalGross: { value: 1 } }, defaults);
  t.match(row, { billing_date: '2024-03-01', service_date: '2024-03-01', due_date: '2024-03-31', service_description: 'Invoice', amount_paid: 0, payment_status: 'pending' });
  const noted = invoiceToRow({ resourceType: 'Invoice', note: [{ text: 'Consultation' }], totalGross: { value: 1 } }, defaults);
  t.equal(noted.service_description, 'Consultation', 'the first note when no line item has a text');
});

t.test('status mapping both ways', async (t) => {
  const col = (status: string, detail?: string) => invoiceToRow({
    resourceType: 'Invoice', status, totalGross: { value: 1 }, ...(detail ? { extension: [{ url: INVOICE_EXTENSIONS.paymentStatus, valueCode: detail }] } : {}),
  }, defaults).payment_status;
  t.equal(col('issued'), 'pending');
  t.equal(col('issued', 'overdue'), 'overdue');
  t.equal(col('balanced'), 'paid');
  t.equal(col('cancelled'), 'written_off');
  t.equal(col('draft'), 'pending');
  t.equal(col('entered-in-error'), 'written_off');
  t.same(statusToColumns('issued'), ['pending', 'partial', 'overdue']);
  t.equal(statusToColumns('draft'), undefined);
});

t.test('a native row reads as a whole Invoice built from its columns', async (t) => {
  const inv = invoiceFromRow({
    id: 'n1', patient_id: 'p9', visit_id: null, appointment_id: 'a1', invoice_number: 'N-100', service_date: '2024-01-02', service_description: 'Lab work',
    procedure_codes: '80053,85025', diagnosis_codes: 'R73.9', amount_charged: '200.00', amount_paid: '200.00', amount_due: '0.00', payment_status: 'paid',
    billing_date: '2024-01-03', due_date: '2024-02-02', payment_date: '2024-01-10', payment_method: 'insurance', notes: null, created_by: 'u2',
  });
  t.equal(inv.status, 'balanced');
  t.same(inv.subject, { reference: 'Patient/p9' });
  t.same(inv.identifier, [{ system: INVOICE_NUMBER_SYSTEM, value: 'N-100' }]);
  t.same(inv.totalGross, { value: 200, currency: 'USD' });
  t.equal(inv.date, '2024-01-03');
  t.same(inv.lineItem, [
    { chargeItemCodeableConcept: { coding: [{ system: CPT_SYSTEM, code: '80053' }], text: 'Lab work' } },
    { chargeItemCodeableConcept: { coding: [{ system: CPT_SYSTEM, code: '85025' }] } },
  ]);
  t.same(extensionValue(inv, INVOICE_EXTENSIONS.amountPaid, 'valueMoney'), { value: 200, currency: 'USD' });
  t.same(extensionValue(inv, INVOICE_EXTENSIONS.amountDue, 'valueMoney'), { value: 0, currency: 'USD' });
  t.equal(extensionValue(inv, INVOICE_EXTENSIONS.serviceDate, 'valueDate'), '2024-01-02');
  t.equal(extensionValue(inv, INVOICE_EXTENSIONS.dueDate, 'valueDate'), undefined, 'due 30 days after the invoice date is implied');
  t.equal(extensionValue(inv, INVOICE_EXTENSIONS.paymentMethod, 'valueCode'), 'insurance');
  t.same(extensionValue(inv, INVOICE_EXTENSIONS.diagnosis, 'valueCoding'), { system: ICD10CM_SYSTEM, code: 'R73.9' });
  t.same(extensionValue(inv, INVOICE_EXTENSIONS.appointment, 'valueReference'), { reference: 'Appointment/a1' });
  t.notOk(inv.note);
  const written = invoiceFromRow({ id: 'n2', patient_id: 'p', invoice_number: 'N', amount_charged: 5, amount_paid: 0, amount_due: 5, payment_status: 'written_off', billing_date: '2024-01-01', due_date: '2024-01-31', service_date: '2024-01-01', service_description: 'Invoice' });
  t.equal(written.status, 'cancelled');
  t.equal(written.cancelledReason, 'written off');
  t.notOk(written.lineItem, 'the fallback description adds no line item');
});

t.test('native changes to columns show in an API-written invoice', async (t) => {
  const row = { ...stored(full), payment_status: 'paid', amount_paid: '150.00', amount_due: '0.00', payment_date: '2024-03-01' };
  const inv = invoiceFromRow(row, full);
  t.equal(inv.status, 'balanced');
  t.equal(extensionValue(inv, INVOICE_EXTENSIONS.paymentStatus, 'valueCode'), undefined);
  t.same(extensionValue(inv, INVOICE_EXTENSIONS.amountPaid, 'valueMoney'), { value: 150, currency: 'USD' });
  t.equal(extensionValue(inv, INVOICE_EXTENSIONS.paymentDate, 'valueDate'), '2024-03-01');
  const overdue = invoiceFromRow({ ...stored(full), payment_status: 'overdue' }, full);
  t.equal(overdue.status, 'issued');
  t.equal(extensionValue(overdue, INVOICE_EXTENSIONS.paymentStatus, 'valueCode'), 'overdue');
  const recoded = invoiceFromRow({ ...stored(full), procedure_codes: '93000 99999' }, full);
  t.same(recoded.lineItem!.map((i) => i.chargeItemCodeableConcept?.coding?.[0]?.code), ['93000', '99999']);
});
