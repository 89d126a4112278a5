/** Invoice, over the billing table. https://hl7.org/fhir/R4/invoice.html (docs/resources/Invoice.md) */
import { defineResource } from '../registry.js';
import {
  amountDueOf, INVOICE_EXTENSIONS, invoiceFromRow, invoiceToRow, ISSUED_PAYMENT_STATUSES, PAYMENT_METHODS, type Invoice, type Money, statusToColumns,
} from '../../mappers/invoice-mapper.js';
import { extensionValue, HMS_CANONICAL, referenceId } from '../../mappers/datatypes.js';
import { checkOneOf, checkPeriod, checkRealDate } from '../checks.js';
import { unprocessable } from '../outcome.js';
import { ALL_INTERACTIONS, checkUnique, statusParam } from './common.js';

/** The code system of the payment-status search parameter's codes. */
export const PAYMENT_STATUS_SYSTEM = `${HMS_CANONICAL}/CodeSystem/invoice-payment-status`;

const ext = (url: string): string => `Invoice.extension('${url}')`;
const money = (inv: Invoice, url: string): number | undefined => (extensionValue(inv, url, 'valueMoney') as Money | undefined)?.value;
const dateExt = (inv: Invoice, url: string): string | undefined => extensionValue(inv, url, 'valueDate') as string | undefined;

function checkInvoice(inv: Invoice): void {
  if (!referenceId(inv.subject, 'Patient')) throw unprocessable('Invoice.subject must refer to a Patient (billing.patient_id)', 'Invoice.subject', 'required');
  if (inv.totalGross?.value === undefined) throw unprocessable('Invoice.totalGross is required (billing.amount_charged)', 'Invoice.totalGross', 'required');
  const gross = inv.totalGross.value;
  const paid = money(inv, INVOICE_EXTENSIONS.amountPaid) ?? 0;
  if (gross < 0) throw unprocessable('Invoice.totalGross must not be negative', 'Invoice.totalGross', 'business-rule');
  if (paid < 0) throw unprocessable('The amount paid must not be negative', ext(INVOICE_EXTENSIONS.amountPaid), 'business-rule');
  if (paid > gross) {
    throw unprocessable(`The amount paid (${paid}) exceeds the amount charged (${gross}): the amount due would be negative`, ext(INVOICE_EXTENSIONS.amountPaid), 'business-rule');
  }
  const due = money(inv, INVOICE_EXTENSIONS.amountDue);
  if (due !== undefined && due !== amountDueOf(inv)) {
    throw unprocessable(`The amount due (${due}) must be totalGross minus the amount paid (${amountDueOf(inv)})`, ext(INVOICE_EXTENSIONS.amountDue), 'business-rule');
  }
  const detail = extensionValue(inv, INVOICE_EXTENSIONS.paymentStatus, 'valueCode');
  checkOneOf(detail, ISSUED_PAYMENT_STATUSES, ext(INVOICE_EXTENSIONS.paymentStatus));
  if (detail !== undefined && inv.status !== 'issued') {
    throw unprocessable(`A payment status (${String(detail)}) only applies to an issued invoice, not to one that is ${inv.status}`, ext(INVOICE_EXTENSIONS.paymentStatus), 'business-rule');
  }
  checkOneOf(extensionValue(inv, INVOICE_EXTENSIONS.paymentMethod, 'valueCode'), PAYMENT_METHODS, ext(INVOICE_EXTENSIONS.paymentMethod));
  checkRealDate(inv.date, 'Invoice.date');
  const service = dateExt(inv, INVOICE_EXTENSIONS.serviceDate);
  const dueDate = dateExt(inv, INVOICE_EXTENSIONS.dueDate);
  const paidOn = dateExt(inv, INVOICE_EXTENSIONS.paymentDate);
  for (const [v, url] of [[service, INVOICE_EXTENSIONS.serviceDate], [dueDate, INVOICE_EXTENSIONS.dueDate], [paidOn, INVOICE_EXTENSIONS.paymentDate]] as const) checkRealDate(v, ext(url));
  // an invoice is issued on or after the service, and due on or after it is issued
  checkPeriod(service, inv.date?.slice(0, 10), 'Invoice.date');
  checkPeriod(inv.date?.slice(0, 10), dueDate, ext(INVOICE_EXTENSIONS.dueDate));
  checkPeriod(service, dueDate, ext(INVOICE_EXTENSIONS.dueDate));
  checkPeriod(service, paidOn, ext(INVOICE_EXTENSIONS.paymentDate));
}

const reference = (name: string, description: string, expression: string) => ({
  name, source: 'column' as const, type: 'reference' as const, column: 'patient_id', targets: ['Patient'], expression, description,
});

export const InvoiceDefinition = defineResource<Invoice>({
  type: 'Invoice',
  table: 'billing',
  profile: 'http://hl7.org/fhir/StructureDefinition/Invoice',
  description: 'Invoices and their payments (billing table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  toRow: (inv, ctx) => invoiceToRow(inv, { userId: ctx.userId, now: ctx.now }),
  fromRow: invoiceFromRow,
  check: checkInvoice,
  async checkStored(_inv, ctx) {
    const number = ctx.columns.invoice_number;
    await checkUnique(ctx, 'billing', { invoice_number: number }, `Invoice number '${String(number)}' is already used by another invoice`);
    // created_by records who created the invoice: an update keeps it
    if (ctx.current) ctx.columns.created_by = ctx.current.row.created_by;
    if (ctx.columns.created_by === null || ctx.columns.created_by === undefined) {
      throw unprocessable('No user to record as the invoice\'s creator (billing.created_by): a system client cannot create invoices', 'Invoice', 'required');
    }
  },
  references: [
    { column: 'patient_id', expression: 'Invoice.subject', targetType: 'Patient', table: 'patients', softDelete: true },
    { column: 'visit_id', expression: `Invoice.extension('${INVOICE_EXTENSIONS.encounter}')`, targetType: 'Encounter', table: 'visits', softDelete: false },
    { column: 'appointment_id', expression: `Invoice.extension('${INVOICE_EXTENSIONS.appointment}')`, targetType: 'Appointment', table: 'appointments', softDelete: false },
  ],
  summaryElements: ['identifier', 'status', 'type', 'subject', 'recipient', 'date', 'totalNet', 'totalGross'],
  compartment: ['patient'],
  searchParams: [
    reference('patient', 'The patient billed', 'Invoice.subject.where(resolve() is Patient)'),
    reference('subject', 'The patient billed (Invoice.subject; only Patients are stored)', 'Invoice.subject'),
    {
      name: 'identifier', source: 'column', type: 'token', column: 'invoice_number', expression: 'Invoice.identifier',
      description: 'The invoice number (the system is not compared: one number per invoice)', sort: ['invoice_number'],
      tokenToColumn: (_system, code) => [code],
    },
    statusParam('Invoice', 'http://hl7.org/fhir/invoice-status', 'The status as stated: draft | issued | balanced | cancelled | entered-in-error (payment-status has the seed\'s pending / partial / overdue detail)', 'payment_status', statusToColumns),
    {
      name: 'date', source: 'column', type: 'date', column: 'billing_date', dateKind: 'date', expression: 'Invoice.date',
      description: 'The invoice date (day precision)', sort: ['billing_date'],
    },
    {
      name: 'totalgross', source: 'column', type: 'quantity', column: 'amount_charged', unit: 'USD', unitSystem: 'urn:iso:std:iso:4217', expression: 'Invoice.totalGross',
      description: 'The amount charged (USD: urn:iso:std:iso:4217|USD, or no unit)', sort: ['amount_charged'],
    },
    {
      name: 'due-date', source: 'column', type: 'date', column: 'due_date', dateKind: 'date',
      expression: `Invoice.extension('${INVOICE_EXTENSIONS.dueDate}').value`, description: 'The date payment is due',
      sort: ['due_date'], definition: `${HMS_CANONICAL}/SearchParameter/Invoice-due-date`,
    },
    {
      name: 'payment-status', source: 'column', type: 'token', column: 'payment_status',
      expression: `Invoice.extension('${INVOICE_EXTENSIONS.paymentStatus}').value`,
      description: 'pending | partial | paid | overdue | written_off (the billing payment status)',
      sort: ['CAST(t.payment_status AS CHAR)'], definition: `${HMS_CANONICAL}/SearchParameter/Invoice-payment-status`,
      tokenToColumn: (system, code) => (system && system !== PAYMENT_STATUS_SYSTEM ? undefined : [code]),
    },
  ],
});
