/**
 * Coverage <-> insurance row. https://hl7.org/fhir/R4/coverage.html
 * Columns hold the beneficiary, the payor's name, the policy number (identifier), the group
 * (class 'group'), the policy holder's name, the relationship, the order (coverage type), the
 * period, copay and deductible (costToBeneficiary), the status, and HMS extensions for the
 * deductible met, pre-authorisation and notes. Everything else is kept beside the row.
 * docs/resources/Coverage.md describes every mapping.
 */
import type { CodeableConcept, Extension, Identifier, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, DECIMAL, resourceFromColumns, TEXT_BYTES, type ColumnField, type Row } from './column-map.js';
import { dateField, referenceField } from './fields.js';
import { extensionValue, hmsExtensionUrl, setExtension } from './datatypes.js';
import { CURRENCY, extensionField, moneyField, type Money } from './invoice-mapper.js';

export interface CoverageClass { type?: CodeableConcept; value?: string; name?: string; [k: string]: unknown }
export interface CoverageCost { type?: CodeableConcept; valueMoney?: Money; valueQuantity?: unknown; [k: string]: unknown }

export interface Coverage extends Resource {
  resourceType: 'Coverage';
  identifier?: Identifier[];
  status?: string;
  type?: CodeableConcept;
  policyHolder?: Reference;
  subscriber?: Reference;
  subscriberId?: string;
  beneficiary?: Reference;
  relationship?: CodeableConcept;
  period?: { start?: string; end?: string };
  payor?: Reference[];
  class?: CoverageClass[];
  order?: number;
  costToBeneficiary?: CoverageCost[];
  extension?: Extension[];
}

export const COVERAGE_EXTENSIONS = {
  deductibleMet: hmsExtensionUrl('coverage-deductible-met'),
  preAuthRequired: hmsExtensionUrl('coverage-pre-auth-required'),
  notes: hmsExtensionUrl('coverage-notes'),
  statusDetail: hmsExtensionUrl('coverage-status-detail'),
} as const;

export const CLASS_SYSTEM = 'http://terminology.hl7.org/CodeSystem/coverage-class';
export const COPAY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/coverage-copay-type';
export const RELATIONSHIP_SYSTEM = 'http://terminology.hl7.org/CodeSystem/subscriber-relationship';
export const ORDERS = ['primary', 'secondary', 'tertiary'] as const;
/** policy_holder_name when neither policyHolder nor subscriber has a display and the relationship is self. */
export const SELF = 'self';

const RELATIONSHIP_TO_COLUMN: Record<string, string> = { self: 'self', spouse: 'spouse', child: 'child', parent: 'parent', common: 'spouse' };
const STATUS_TO_COLUMN: Record<string, string> = { active: 'active', cancelled: 'inactive', draft: 'inactive', 'entered-in-error': 'inactive' };

/** FHIR Coverage.status -> insurance.status values (search). */
export function statusToColumns(code: string): string[] | undefined {
  return code === 'active' ? ['active'] : code === 'cancelled' ? ['inactive', 'expired'] : undefined;
}

const codeOf = (cc: CodeableConcept | undefined, system?: string): string | undefined =>
  cc?.coding?.find((c) => c.code && (!system || !c.system || c.system === system))?.code;

/** The relationship_to_patient a coverage implies: self when absent, other for codes the column has no value for. */
export const relationshipOf = (c: Coverage): string => {
  const code = codeOf(c.relationship, RELATIONSHIP_SYSTEM);
  return code === undefined ? 'self' : RELATIONSHIP_TO_COLUMN[code] ?? 'other';
};

/** The coverage_type an order implies (primary when absent; undefined beyond tertiary). */
export const coverageTypeOf = (c: Coverage): string | undefined => (c.order === undefined ? 'primary' : ORDERS[c.order - 1]);

/** The policy holder's name: a display of policyHolder or subscriber, else "self" for the beneficiary's own policy. */
export const policyHolderNameOf = (c: Coverage): string | undefined =>
  c.policyHolder?.display ?? c.subscriber?.display ?? (relationshipOf(c) === 'self' ? SELF : undefined);

/** The payor's name: the first payor's display, else its reference or identifier. */
export const payorNameOf = (c: Coverage): string | undefined => {
  const p = c.payor?.[0];
  return p?.display ?? p?.reference ?? (p?.identifier as Identifier | undefined)?.value;
};

const classIndex = (c: Coverage, code: string): number => (c.class ?? []).findIndex((k) => codeOf(k.type, CLASS_SYSTEM) === code);

/** The cost entry a column mirrors: one of `code`, else (copay only) the first money cost of another visit type. */
function costIndex(c: Coverage, code: string): number {
  const list = c.costToBeneficiary ?? [];
  const exact = list.findIndex((k) => codeOf(k.type, COPAY_SYSTEM) === code);
  if (exact >= 0 || code !== 'copay') return exact;
  return list.findIndex((k) => k.valueMoney && !['deductible', 'maxoutofpocket', 'copaypct'].includes(codeOf(k.type, COPAY_SYSTEM) ?? ''));
}

function costField(column: string, code: string): ColumnField<Coverage> {
  return {
    column, path: `Coverage.costToBeneficiary.where(type='${code}')`,
    toColumn: (c) => { const i = costIndex(c, code); return i >= 0 ? c.costToBeneficiary![i]!.valueMoney?.value : undefined; },
    fromColumn: (c, v) => {
      const list = c.costToBeneficiary ?? [];
      const i = costIndex(c, code);
      if (v === null || v === undefined) { if (i >= 0) list.splice(i, 1); }
      else if (i >= 0) list[i]!.valueMoney = { ...list[i]!.valueMoney, value: Number(v), currency: list[i]!.valueMoney?.currency ?? CURRENCY };
      else list.push({ type: { coding: [{ system: COPAY_SYSTEM, code }] }, valueMoney: { value: Number(v), currency: CURRENCY } });
      if (list.length) c.costToBeneficiary = list; else delete c.costToBeneficiary;
    },
  };
}

export const coverageFields: ColumnField<Coverage>[] = [
  referenceField<Coverage>('patient_id', 'beneficiary', 'Patient'),
  {
    column: 'insurance_company', path: 'Coverage.payor', maxLength: 255,
    toColumn: payorNameOf,
    fromColumn: (c, v) => {
      const first = c.payor?.[0];
      if (first) first.display = String(v);
      else c.payor = [{ display: String(v) }];
    },
  },
  {
    column: 'policy_number', path: 'Coverage.identifier', maxLength: 100,
    toColumn: (c) => c.identifier?.find((i) => i.value)?.value ?? c.subscriberId,
    fromColumn: (c, v) => {
      const id = c.identifier?.find((i) => i.value);
      if (id) id.value = String(v);
      else if (c.subscriberId !== undefined) c.subscriberId = String(v);
      else c.identifier = [...(c.identifier ?? []), { value: String(v) }];
    },
  },
  {
    column: 'group_number', path: "Coverage.class.where(type='group')", maxLength: 100,
    toColumn: (c) => { const i = classIndex(c, 'group'); return i >= 0 ? c.class![i]!.value : undefined; },
    fromColumn: (c, v) => {
      const list = c.class ?? [];
      const i = classIndex(c, 'group');
      if (v === null || v === undefined) { if (i >= 0) list.splice(i, 1); }
      else if (i >= 0) list[i]!.value = String(v);
      else list.unshift({ type: { coding: [{ system: CLASS_SYSTEM, code: 'group' }] }, value: String(v) });
      if (list.length) c.class = list; else delete c.class;
    },
  },
  {
    column: 'relationship_to_patient', path: 'Coverage.relationship',
    toColumn: relationshipOf,
    fromColumn: (c, v) => { c.relationship = { coding: [{ system: RELATIONSHIP_SYSTEM, code: String(v ?? 'self') }] }; },
  },
  {
    column: 'policy_holder_name', path: 'Coverage.policyHolder.display', maxLength: 255,
    toColumn: policyHolderNameOf,
    fromColumn: (c, v) => {
      if (c.policyHolder?.display === undefined && c.subscriber?.display !== undefined) c.subscriber.display = String(v);
      else c.policyHolder = { ...c.policyHolder, display: String(v) };
    },
  },
  {
    column: 'coverage_type', path: 'Coverage.order',
    toColumn: coverageTypeOf,
    fromColumn: (c, v) => { const i = ORDERS.indexOf(String(v) as never); if (i >= 0) c.order = i + 1; },
  },
  { ...dateField<Coverage>('effective_date', 'period.start', { defaultToNow: true }), path: 'Coverage.period.start' },
  { ...dateField<Coverage>('expiration_date', 'period.end'), path: 'Coverage.period.end' },
  { ...costField('copay_amount', 'copay'), numeric: DECIMAL(6, 2) },
  { ...costField('deductible_amount', 'deductible'), numeric: DECIMAL(8, 2) },
  { ...moneyField<Coverage>('deductible_met', COVERAGE_EXTENSIONS.deductibleMet, () => 0), numeric: DECIMAL(8, 2) },
  {
    column: 'status', path: 'Coverage.status',
    toColumn: (c) => (c.status === 'cancelled' && extensionValue(c, COVERAGE_EXTENSIONS.statusDetail, 'valueCode') === 'expired' ? 'expired' : STATUS_TO_COLUMN[c.status ?? 'active'] ?? 'active'),
    fromColumn: (c, v) => {
      c.status = v === 'active' ? 'active' : 'cancelled';
      setExtension(c, COVERAGE_EXTENSIONS.statusDetail, 'valueCode', v === 'expired' ? 'expired' : null);
    },
  },
  extensionField<Coverage>('pre_auth_required', COVERAGE_EXTENSIONS.preAuthRequired, 'valueBoolean', {
    absent: () => false, fromColumn: (v) => (Number(v) ? true : null),
  }),
  extensionField<Coverage>('notes', COVERAGE_EXTENSIONS.notes, 'valueString', { maxBytes: TEXT_BYTES }),
];

/** The insurance columns a Coverage implies. */
export function coverageToRow(c: Coverage, defaults: { userId?: string; now?: string } = {}): Row {
  return columnsFromResource(coverageFields, c, defaults);
}

/** The Coverage an insurance row reads as, given the resource last written (none for native rows). */
export function coverageFromRow(row: Row, kept?: Coverage): Coverage {
  const base: Coverage = kept ? structuredClone(kept) : { resourceType: 'Coverage' };
  base.resourceType = 'Coverage';
  base.id = String(row.id);
  return resourceFromColumns(coverageFields, row, base);
}
