/**
 * Invoice <-> billing row. https://hl7.org/fhir/R4/invoice.html
 * Columns hold the patient (subject), the invoice number (identifier), the payment status
 * (status + an HMS extension), the charged amount (totalGross), the invoice date (date), the
 * CPT codes (lineItem), the first note, and HMS extensions for what R4 Invoice has no element
 * for (service/due/payment date, payment method, amount paid/due, ICD-10-CM diagnoses, the
 * Encounter and Appointment billed). Everything else is kept beside the row (see column-map.ts).
 * docs/resources/Invoice.md describes every mapping.
 */
import type { CodeableConcept, Coding, Extension, Identifier, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, DECIMAL, resourceFromColumns, TEXT_BYTES, type ColumnField, type Row } from './column-map.js';
import { dateField, pathField, referenceField } from './fields.js';
import { dateToSql, extensionValue, hmsExtensionUrl, HMS_CANONICAL, referenceId, setExtension } from './datatypes.js';

export interface Money { value?: number; currency?: string; [k: string]: unknown }
export interface InvoiceLineItem { sequence?: number; chargeItemReference?: Reference; chargeItemCodeableConcept?: CodeableConcept; [k: string]: unknown }

export interface Invoice extends Resource {
  resourceType: 'Invoice';
  identifier?: Identifier[];
  status?: string;
  cancelledReason?: string;
  subject?: Reference;
  date?: string;
  lineItem?: InvoiceLineItem[];
  totalGross?: Money;
  note?: { text?: string; [k: string]: unknown }[];
  extension?: Extension[];
}

export const INVOICE_EXTENSIONS = {
  paymentStatus: hmsExtensionUrl('invoice-payment-status'),
  amountPaid: hmsExtensionUrl('invoice-amount-paid'),
  amountDue: hmsExtensionUrl('invoice-amount-due'),
  serviceDate: hmsExtensionUrl('invoice-service-date'),
  dueDate: hmsExtensionUrl('invoice-due-date'),
  paymentDate: hmsExtensionUrl('invoice-payment-date'),
  paymentMethod: hmsExtensionUrl('invoice-payment-method'),
  diagnosis: hmsExtensionUrl('invoice-diagnosis'),
  encounter: hmsExtensionUrl('invoice-encounter'),
  appointment: hmsExtensionUrl('invoice-appointment'),
} as const;

export const CPT_SYSTEM = 'http://www.ama-assn.org/go/cpt';
export const ICD10CM_SYSTEM = 'http://hl7.org/fhir/sid/icd-10-cm';
/** The system of invoice numbers HMS assigns (identifiers of natively written invoices carry it). */
export const INVOICE_NUMBER_SYSTEM = `${HMS_CANONICAL}/sid/invoice-number`;
export const PAYMENT_METHODS = ['cash', 'check', 'credit_card', 'insurance', 'other'] as const;
/** Payment statuses the extension may state (only with status issued). */
export const ISSUED_PAYMENT_STATUSES = ['pending', 'partial', 'overdue'] as const;
/** Days between the invoice date and the due date when the client gives no due date. */
export const DEFAULT_DUE_DAYS = 30;
/** billing.service_description when neither a line item nor a note gives a text. */
export const DEFAULT_DESCRIPTION = 'Invoice';
export const CURRENCY = 'USD';

const STATUS_TO_COLUMN: Record<string, string> = { draft: 'pending', issued: 'pending', balanced: 'paid', cancelled: 'written_off', 'entered-in-error': 'written_off' };
const COLUMN_TO_STATUS: Record<string, string> = { pending: 'issued', partial: 'issued', overdue: 'issued', paid: 'balanced', written_off: 'cancelled' };
export const WRITTEN_OFF_REASON = 'written off';

/** FHIR Invoice.status -> billing.payment_status values it stands for (search). */
export function statusToColumns(code: string): string[] | undefined {
  if (code === 'issued') return ['pending', 'partial', 'overdue'];
  if (code === 'balanced') return ['paid'];
  if (code === 'cancelled') return ['written_off'];
  return undefined; // draft and entered-in-error are stored as their nearest status: not searchable as such
}

/** The payment_status an invoice implies. */
export function paymentStatusOf(inv: Invoice): string {
  const detail = extensionValue(inv, INVOICE_EXTENSIONS.paymentStatus, 'valueCode');
  if (inv.status === 'issued' && typeof detail === 'string' && ISSUED_PAYMENT_STATUSES.includes(detail as never)) return detail;
  return STATUS_TO_COLUMN[inv.status ?? 'issued'] ?? 'pending';
}

function setPaymentStatus(inv: Invoice, v: unknown): void {
  const col = String(v ?? 'pending');
  inv.status = COLUMN_TO_STATUS[col] ?? 'issued';
  setExtension(inv, INVOICE_EXTENSIONS.paymentStatus, 'valueCode', col === 'partial' || col === 'overdue' ? col : null);
  if (col === 'written_off') inv.cancelledReason ??= WRITTEN_OFF_REASON;
  else delete inv.cancelledReason;
}

/** A column mirrored by a simple HMS extension (value[x] of `kind`), with conversions each way. */
export function extensionField<R extends Resource & { extension?: Extension[] }>(
  column: string, url: string, kind: string,
  opts: { toColumn?: (v: unknown) => unknown; fromColumn?: (v: unknown, r: R) => unknown; absent?: (r: R) => unknown; maxBytes?: number } = {},
): ColumnField<R> {
  const { toColumn = (v) => v, fromColumn = (v) => v, absent = () => undefined, maxBytes } = opts;
  return {
    column, path: `extension('${url}')`, ...(maxBytes ? { maxBytes } : {}),
    toColumn: (r) => { const v = extensionValue(r, url, kind); return v === undefined ? absent(r) : toColumn(v); },
    fromColumn: (r, v) => setExtension(r, url, kind, v === null || v === undefined ? null : fromColumn(v, r)),
  };
}

/** A Money extension (value + currency) over a DECIMAL column; the currency is kept, USD by default. */
export function moneyField<R extends Resource & { extension?: Extension[] }>(column: string, url: string, absent?: (r: R) => unknown): ColumnField<R> {
  return extensionField<R>(column, url, 'valueMoney', {
    toColumn: (m) => (m as Money).value,
    fromColumn: (v, r) => ({ value: Number(v), currency: (extensionValue(r, url, 'valueMoney') as Money | undefined)?.currency ?? CURRENCY }),
    absent,
  });
}

const isoDatePlusDays = (date: string, days: number): string => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
/** The invoice date as the DATE billing_date holds (the write's day when absent). */
const invoiceDay = (inv: Invoice, now?: string): string | undefined => dateToSql(inv.date) ?? now?.slice(0, 10);

/** Codes of a separated list ("99213, 93000" or "99213 93000"). */
export const splitCodes = (v: unknown): string[] => (v === null || v === undefined ? [] : String(v).split(/[\s,;]+/).filter(Boolean));

const cptCode = (item: InvoiceLineItem): string | undefined => item.chargeItemCodeableConcept?.coding?.find((c) => c.system === CPT_SYSTEM && c.code)?.code;

function setProcedureCodes(inv: Invoice, v: unknown): void {
  const items = inv.lineItem ?? [];
  const byCode = new Map(items.filter(cptCode).map((i) => [cptCode(i)!, i]));
  const others = items.filter((i) => !cptCode(i));
  const coded = splitCodes(v).map((code) => byCode.get(code) ?? { chargeItemCodeableConcept: { coding: [{ system: CPT_SYSTEM, code }] } });
  inv.lineItem = [...coded, ...others];
  if (!inv.lineItem.length) delete inv.lineItem;
}

const lineItemText = (inv: Invoice): string | undefined => inv.lineItem?.find((i) => i.chargeItemCodeableConcept?.text)?.chargeItemCodeableConcept?.text;

function setDescription(inv: Invoice, v: unknown): void {
  const text = v === null || v === undefined ? DEFAULT_DESCRIPTION : String(v);
  const item = inv.lineItem?.find((i) => i.chargeItemCodeableConcept?.text) ?? inv.lineItem?.find((i) => i.chargeItemCodeableConcept);
  if (item) item.chargeItemCodeableConcept!.text = text;
  else (inv.lineItem ??= []).push({ chargeItemCodeableConcept: { text } });
}

const diagnoses = (inv: Invoice): Coding[] =>
  (inv.extension ?? []).filter((e) => e.url === INVOICE_EXTENSIONS.diagnosis).map((e) => e.valueCoding as Coding).filter((c) => c?.code);

function setDiagnoses(inv: Invoice, v: unknown): void {
  const existing = new Map(diagnoses(inv).map((c) => [c.code!, c]));
  const others = (inv.extension ?? []).filter((e) => e.url !== INVOICE_EXTENSIONS.diagnosis);
  const list = splitCodes(v).map((code) => ({ url: INVOICE_EXTENSIONS.diagnosis, valueCoding: existing.get(code) ?? { system: ICD10CM_SYSTEM, code } }));
  inv.extension = [...others, ...list];
  if (!inv.extension.length) delete inv.extension;
}

/** The identifier the invoice number comes from: HMS's own system first, else the first with a value. */
function numberIdentifier(inv: Invoice): Identifier | undefined {
  const ids = (inv.identifier ?? []).filter((i) => i.value);
  return ids.find((i) => i.system === INVOICE_NUMBER_SYSTEM) ?? ids[0];
}

const referenceExtension = (column: string, url: string, type: string): ColumnField<Invoice> => extensionField<Invoice>(column, url, 'valueReference', {
  toColumn: (ref) => referenceId(ref as Reference, type),
  fromColumn: (v) => ({ reference: `${type}/${String(v)}` }),
});

export const invoiceFields: ColumnField<Invoice>[] = [
  referenceField<Invoice>('patient_id', 'subject', 'Patient'),
  {
    column: 'invoice_number', path: 'Invoice.identifier', maxLength: 100,
    toColumn: (inv) => numberIdentifier(inv)?.value,
    fromColumn: (inv, v) => {
      const id = numberIdentifier(inv);
      if (id) id.value = String(v);
      else (inv.identifier ??= []).push({ system: INVOICE_NUMBER_SYSTEM, value: String(v) });
    },
  },
  { column: 'payment_status', path: 'Invoice.status', toColumn: paymentStatusOf, fromColumn: setPaymentStatus },
  {
    column: 'amount_charged', path: 'Invoice.totalGross', numeric: DECIMAL(10, 2),
    toColumn: (inv) => inv.totalGross?.value,
    fromColumn: (inv, v) => {
      if (v === null || v === undefined) delete inv.totalGross;
      else inv.totalGross = { ...inv.totalGross, value: Number(v), currency: inv.totalGross?.currency ?? CURRENCY };
    },
  },
  { ...dateField<Invoice>('billing_date', 'date', { defaultToNow: true }), path: 'Invoice.date' },
  {
    ...extensionField<Invoice>('service_date', INVOICE_EXTENSIONS.serviceDate, 'valueDate'),
    toColumn: (inv, d) => dateToSql(extensionValue(inv, INVOICE_EXTENSIONS.serviceDate, 'valueDate') as string | undefined) ?? invoiceDay(inv, d.now),
  },
  {
    ...extensionField<Invoice>('due_date', INVOICE_EXTENSIONS.dueDate, 'valueDate'),
    toColumn: (inv, d) => {
      const v = dateToSql(extensionValue(inv, INVOICE_EXTENSIONS.dueDate, 'valueDate') as string | undefined);
      const day = invoiceDay(inv, d.now);
      return v ?? (day ? isoDatePlusDays(day, DEFAULT_DUE_DAYS) : undefined);
    },
  },
  {
    column: 'procedure_codes', path: 'Invoice.lineItem.chargeItemCodeableConcept', maxBytes: TEXT_BYTES,
    toColumn: (inv) => (inv.lineItem ?? []).map(cptCode).filter(Boolean).join(', ') || undefined,
    fromColumn: setProcedureCodes,
  },
  {
    column: 'diagnosis_codes', path: `Invoice.extension('${INVOICE_EXTENSIONS.diagnosis}')`, maxBytes: TEXT_BYTES,
    toColumn: (inv) => diagnoses(inv).map((c) => c.code).join(', ') || undefined,
    fromColumn: setDiagnoses,
  },
  pathField<Invoice>('notes', 'note.0.text', { maxBytes: TEXT_BYTES }),
  {
    column: 'service_description', path: 'Invoice.lineItem.chargeItemCodeableConcept.text', maxBytes: TEXT_BYTES,
    toColumn: (inv) => lineItemText(inv) ?? inv.note?.[0]?.text ?? DEFAULT_DESCRIPTION,
    fromColumn: setDescription,
  },
  { ...moneyField<Invoice>('amount_paid', INVOICE_EXTENSIONS.amountPaid, () => 0), numeric: DECIMAL(10, 2) },
  extensionField<Invoice>('payment_date', INVOICE_EXTENSIONS.paymentDate, 'valueDate', { toColumn: (v) => dateToSql(v as string), fromColumn: (v) => String(v).slice(0, 10) }),
  extensionField<Invoice>('payment_method', INVOICE_EXTENSIONS.paymentMethod, 'valueCode'),
  referenceExtension('visit_id', INVOICE_EXTENSIONS.encounter, 'Encounter'),
  referenceExtension('appointment_id', INVOICE_EXTENSIONS.appointment, 'Appointment'),
  {
    // NOT NULL, no FHIR element: the user who wrote the invoice (kept from the first version on updates)
    column: 'created_by', path: 'Invoice', toColumn: (_inv, d) => d.userId, fromColumn: () => undefined,
  },
];

/** The amount due an invoice implies (what billing.amount_due, a generated column, will hold). */
export function amountDueOf(inv: Invoice): number | undefined {
  const gross = inv.totalGross?.value;
  if (gross === undefined) return undefined;
  const paid = (extensionValue(inv, INVOICE_EXTENSIONS.amountPaid, 'valueMoney') as Money | undefined)?.value ?? 0;
  return Math.round((gross - paid) * 100) / 100;
}

/** The billing columns an Invoice implies (never amount_due: the database computes it). */
export function invoiceToRow(inv: Invoice, defaults: { userId?: string; now?: string } = {}): Row {
  return columnsFromResource(invoiceFields, inv, defaults);
}

/**
 * The Invoice a billing row reads as. The amount-due extension shows the generated column when
 * the row was written natively or the client sent the extension; for an invoice written through
 * the API it is otherwise implied (totalGross minus the amount paid).
 */
export function invoiceFromRow(row: Row, kept?: Invoice): Invoice {
  const base: Invoice = kept ? structuredClone(kept) : { resourceType: 'Invoice' };
  base.resourceType = 'Invoice';
  base.id = String(row.id);
  const inv = resourceFromColumns(invoiceFields, row, base);
  const due = row.amount_due;
  const sentDue = extensionValue(inv, INVOICE_EXTENSIONS.amountDue, 'valueMoney') as Money | undefined;
  if ((!kept || sentDue) && due !== null && due !== undefined) {
    setExtension(inv, INVOICE_EXTENSIONS.amountDue, 'valueMoney', { value: Number(due), currency: sentDue?.currency ?? inv.totalGross?.currency ?? CURRENCY });
  }
  return inv;
}
