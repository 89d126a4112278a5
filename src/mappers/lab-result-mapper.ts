/**
 * Laboratory (and every other non-vital) Observation <-> lab_results row, in the `l_` prefixed
 * form the storage hooks expect; plus the code and status mappings ServiceRequest shares.
 * Pure, no I/O. See docs/resources/Observation.md.
 */
import type { CodeableConcept, Coding } from '../fhir/types.js';
import { TEXT_BYTES, type ColumnField, type Row } from './column-map.js';
import { dateToSql, HMS_CANONICAL, sqlToInstant } from './datatypes.js';
import { pathField, setPath } from './fields.js';
import {
  LOINC, OBSERVATION_CATEGORY, UCUM, categoryConcept, codingsOf, effectiveStart, practitionerField, primaryCoding, setEffective, type Observation,
} from './observation-mapper.js';

/** Code system of lab test codes that are not LOINC. */
export const LAB_TEST_SYSTEM = `${HMS_CANONICAL}/CodeSystem/lab-test`;
/** Code system of lab_results.test_category (blood, urine, imaging, pathology, microbiology, other). */
export const LAB_CATEGORY_SYSTEM = `${HMS_CANONICAL}/CodeSystem/lab-test-category`;
export const LAB_CATEGORIES = ['blood', 'urine', 'imaging', 'pathology', 'microbiology', 'other'] as const;
export const V3_INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

const isLoinc = (code: string): boolean => /^\d{1,7}-\d$/.test(code);

/** The coding a lab_results.test_code reads as: LOINC when it looks like one. */
export const testCoding = (code: string): Coding => ({ system: isLoinc(code) ? LOINC : LAB_TEST_SYSTEM, code });

/** lab_results.test_code of a code: the first LOINC code, else the first code. */
export const testCodeOf = (cc: CodeableConcept | undefined): string | undefined => primaryCoding(cc)?.code;

/** lab_results.test_name of a code: its text, else the display or code of its primary coding. */
export const testNameOf = (cc: CodeableConcept | undefined): string => cc?.text ?? primaryCoding(cc)?.display ?? primaryCoding(cc)?.code ?? '';

/** Observation.status <-> lab_results.status. */
export const LAB_STATUS_FROM_OBSERVATION: Record<string, string> = {
  registered: 'ordered', preliminary: 'in_progress', final: 'completed', amended: 'completed', corrected: 'completed',
  cancelled: 'cancelled', 'entered-in-error': 'cancelled', unknown: 'in_progress',
};
export const OBSERVATION_STATUS_FROM_LAB: Record<string, string> = { ordered: 'registered', in_progress: 'preliminary', completed: 'final', cancelled: 'cancelled' };

/** Observation.interpretation (v3 codes) <-> lab_results.abnormal_flag. */
const FLAG_FROM_CODE: Record<string, string> = {
  N: 'normal', L: 'low', H: 'high', LL: 'critical', HH: 'critical', AA: 'critical', '<': 'low', '>': 'high', LU: 'critical', HU: 'critical',
};
const CODE_FROM_FLAG: Record<string, Coding> = {
  low: { system: V3_INTERPRETATION, code: 'L', display: 'Low' },
  high: { system: V3_INTERPRETATION, code: 'H', display: 'High' },
  critical: { system: V3_INTERPRETATION, code: 'AA', display: 'Critical abnormal' },
  normal: { system: V3_INTERPRETATION, code: 'N', display: 'Normal' },
};

/** lab_results.test_category: an HMS category coding, else imaging by category, else a guess from the test's name. */
export function testCategoryOf(o: Observation): string {
  const explicit = (o.category ?? []).flatMap((c) => codingsOf(c, LAB_CATEGORY_SYSTEM)).find((c) => (LAB_CATEGORIES as readonly string[]).includes(c.code!));
  if (explicit) return explicit.code!;
  if ((o.category ?? []).some((c) => codingsOf(c, OBSERVATION_CATEGORY).some((x) => x.code === 'imaging'))) return 'imaging';
  const words = [o.code?.text, ...(o.code?.coding ?? []).map((c) => c.display)].filter(Boolean).join(' ');
  if (/urin/i.test(words)) return 'urine';
  if (/blood|serum|plasma|\bbld\b/i.test(words)) return 'blood';
  if (/culture|microb/i.test(words)) return 'microbiology';
  if (/patholog|biopsy|cytolog|histolog/i.test(words)) return 'pathology';
  return 'other';
}

const NUMBER = /^-?\d+(\.\d+)?$/;

/**
 * Common lab and vital-sign units that are UCUM codes as written. A native unit (result_unit, or the
 * unit of a reference_range text) gets system UCUM and code only when it is one of these; any other
 * text (K/uL, cells/hpf, IU/L ...) reads as `unit` alone, never as a made-up UCUM code. A unit a
 * client sent keeps its system and code as sent (the kept resource).
 */
export const UCUM_LAB_UNITS: ReadonlySet<string> = new Set([
  '%', '1', '{ratio}', '{score}', '[pH]',
  'g/L', 'g/dL', 'mg/L', 'mg/dL', 'ug/L', 'ug/dL', 'ug/mL', 'ng/L', 'ng/dL', 'ng/mL', 'pg/mL', 'mg/g', 'mg/mmol', 'mg/(24.h)', 'g/(24.h)',
  'mol/L', 'mmol/L', 'umol/L', 'nmol/L', 'pmol/L', 'mmol/mol', 'mmol/(24.h)', 'mEq/L', 'meq/L', 'mosm/kg', 'mosm/L',
  'U/L', 'U/mL', 'kU/L', 'mU/L', '[IU]/L', '[IU]/mL', 'm[IU]/L', 'm[IU]/mL', 'u[IU]/mL',
  '10*3/uL', '10*6/uL', '10*3/mm3', '10*6/mm3', '10*9/L', '10*12/L', '/uL', '/mm3', '/L', '/[HPF]', '/[LPF]',
  'fL', 'pg', 'g', 'mg', 'ug', 'kg', 'L', 'dL', 'mL', 'uL', 'm', 'cm', 'mm', 'kg/m2', 'm2',
  's', 'min', 'h', 'd', 'mm/h', 'mL/min', 'mL/min/{1.73_m2}', 'mL/min/1.73.m2', '/min', 'mm[Hg]', 'Cel', '[degF]', '[lb_av]', '[in_i]',
]);

/** A native unit as a Quantity's unit (and system/code when it is a UCUM code of UCUM_LAB_UNITS). */
export const quantityUnit = (unit: string): { unit: string; system?: string; code?: string } =>
  (UCUM_LAB_UNITS.has(unit) ? { unit, system: UCUM, code: unit } : { unit });

/** lab_results.result_value: the value as text. */
function resultValueOf(o: Observation): string | undefined {
  if (o.valueQuantity?.value !== undefined) return String(o.valueQuantity.value);
  if (o.valueString !== undefined) return o.valueString;
  const cc = o.valueCodeableConcept;
  if (cc) return cc.text ?? cc.coding?.[0]?.display ?? cc.coding?.[0]?.code;
  for (const k of ['valueInteger', 'valueBoolean'] as const) if (o[k] !== undefined) return String(o[k]);
  return undefined;
}

function setResultValue(o: Observation, v: unknown): void {
  if (v === null || v === undefined || v === '') {
    for (const k of ['valueQuantity', 'valueString', 'valueCodeableConcept', 'valueInteger', 'valueBoolean']) delete o[k];
    return;
  }
  const s = String(v);
  if (NUMBER.test(s) && (o.valueQuantity || !(o.valueString !== undefined || o.valueCodeableConcept))) {
    delete o.valueString;
    o.valueQuantity = { ...o.valueQuantity, value: Number(s) };
  } else if (o.valueCodeableConcept) {
    o.valueCodeableConcept.text = s;
  } else {
    delete o.valueQuantity;
    o.valueString = s;
  }
}

/** referenceRange[0] as the text lab_results.reference_range holds ("3.1-6.2 mmol/L"). */
function rangeText(o: Observation): string | undefined {
  const r = o.referenceRange?.[0];
  if (!r) return undefined;
  if (r.text) return r.text;
  if (r.low?.value === undefined && r.high?.value === undefined) return undefined;
  const unit = r.low?.code ?? r.high?.code ?? r.low?.unit ?? r.high?.unit;
  const span = r.low?.value !== undefined && r.high?.value !== undefined ? `${r.low.value}-${r.high.value}`
    : r.low?.value !== undefined ? `>=${r.low.value}` : `<=${r.high!.value}`;
  return unit ? `${span} ${unit}` : span;
}

/** A stored range text as a referenceRange (low/high when it reads as "a-b unit"). */
export function parseRange(text: string): NonNullable<Observation['referenceRange']>[number] {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*(\S+)?\s*$/.exec(text);
  if (!m) return { text };
  const q = (v: string) => (m[3] ? { value: Number(v), ...quantityUnit(m[3]) } : { value: Number(v) });
  return { low: q(m[1]!), high: q(m[2]!), text };
}

/** The lab_results columns (prefixed l_), in the order the overlay applies them. */
export const labSourceFields: ColumnField<Observation>[] = [
  practitionerField('l_ordered_by', 'performer'),
  {
    column: 'l_test_code', path: 'Observation.code.coding', maxLength: 50,
    toColumn: (o) => testCodeOf(o.code),
    fromColumn: (o, v) => { o.code ??= {}; if (v === null || v === undefined) delete o.code.coding; else o.code.coding = [testCoding(String(v))]; },
  },
  {
    column: 'l_test_name', path: 'Observation.code.text', maxLength: 255,
    toColumn: (o) => testNameOf(o.code),
    fromColumn: (o, v) => { o.code ??= {}; if (v === null || v === undefined || v === '') delete o.code.text; else o.code.text = String(v); },
  },
  {
    column: 'l_test_category', path: 'Observation.category',
    toColumn: testCategoryOf,
    fromColumn: (o, v) => {
      const rest = (o.category ?? []).map((c) => ({ ...c, coding: (c.coding ?? []).filter((x) => x.system !== LAB_CATEGORY_SYSTEM) }))
        .map((c) => { if (c.coding.length === 0) delete (c as CodeableConcept).coding; return c; })
        .filter((c) => Object.keys(c).length > 0);
      o.category = [...rest, { coding: [{ system: LAB_CATEGORY_SYSTEM, code: String(v ?? 'other') }] }];
    },
  },
  { column: 'l_result_value', path: 'Observation.value', maxLength: 255, toColumn: resultValueOf, fromColumn: setResultValue },
  {
    column: 'l_result_unit', path: 'Observation.valueQuantity.code', maxLength: 50,
    toColumn: (o) => o.valueQuantity?.code ?? o.valueQuantity?.unit,
    fromColumn: (o, v) => {
      const q = o.valueQuantity;
      if (!q) return;
      delete q.unit; delete q.system; delete q.code;
      if (v !== null && v !== undefined && v !== '') Object.assign(q, quantityUnit(String(v)));
    },
  },
  {
    column: 'l_reference_range', path: 'Observation.referenceRange', maxLength: 100,
    toColumn: rangeText,
    fromColumn: (o, v) => { if (v === null || v === undefined || v === '') delete o.referenceRange; else o.referenceRange = [parseRange(String(v))]; },
  },
  {
    column: 'l_status', path: 'Observation.status',
    toColumn: (o) => LAB_STATUS_FROM_OBSERVATION[o.status ?? ''] ?? 'ordered',
    fromColumn: (o, v) => { o.status = OBSERVATION_STATUS_FROM_LAB[String(v)] ?? 'unknown'; },
  },
  {
    column: 'l_abnormal_flag', path: 'Observation.interpretation',
    toColumn: (o) => {
      const c = (o.interpretation ?? []).flatMap((i) => i.coding ?? []).find((x) => (x.system === undefined || x.system === V3_INTERPRETATION) && x.code && FLAG_FROM_CODE[x.code]);
      return c ? FLAG_FROM_CODE[c.code!] : 'normal';
    },
    fromColumn: (o, v) => {
      const coding = CODE_FROM_FLAG[String(v ?? 'normal')]!;
      const first = o.interpretation?.[0];
      if (first) first.coding = [coding];
      else o.interpretation = [{ coding: [coding] }];
    },
  },
  {
    // ordered_date is shown by the ServiceRequest (authoredOn); the Observation has no element for it
    column: 'l_ordered_date', path: 'Observation.effective',
    toColumn: (o, d) => dateToSql(effectiveStart(o) ?? o.issued) ?? d.now?.slice(0, 10),
    fromColumn: () => undefined,
  },
  {
    column: 'l_collection_date', path: 'Observation.effective',
    toColumn: (o) => dateToSql(effectiveStart(o)),
    fromColumn: (o, v) => setEffective(o, v === null || v === undefined ? undefined : String(v).slice(0, 10)),
  },
  {
    column: 'l_result_date', path: 'Observation.issued',
    toColumn: (o) => dateToSql(o.issued),
    fromColumn: (o, v) => setPath(o as Record<string, unknown>, 'issued', v === null || v === undefined ? undefined : sqlToInstant(`${String(v).slice(0, 10)} 00:00:00`)),
  },
  pathField('l_lab_comments', 'note.0.text', { maxBytes: TEXT_BYTES }),
  pathField('l_interpretation', 'interpretation.0.text', { maxBytes: TEXT_BYTES }),
];

/** The value and unit the projection row holds (what value-quantity searches compare). */
export function labProjection(o: Observation): Row {
  const q = o.valueQuantity;
  return { value_quantity: q?.value ?? null, unit: q ? q.code ?? q.unit ?? null : null };
}

/** What a lab_results row without a kept resource reads as before its columns are applied. */
export function nativeLabBase(row: Row): Observation {
  const imaging = row.l_test_category === 'imaging';
  const o: Observation = {
    resourceType: 'Observation',
    category: [imaging ? categoryConcept('imaging', 'Imaging') : categoryConcept('laboratory', 'Laboratory')],
    code: {},
  };
  if (row.l_id) o.basedOn = [{ reference: `ServiceRequest/${String(row.l_id)}` }];
  return o;
}

/**
 * The observations projection row of a lab_results row written natively (seeder, lab ingestion),
 * with a new id from `newId` (uuid v7; store it once, never recompute).
 */
export function observationRowForLab(row: Row, newId: () => string): Row {
  const value = row.result_value === null || row.result_value === undefined ? undefined : String(row.result_value);
  const numeric = value !== undefined && NUMBER.test(value);
  const code = row.test_code ? testCoding(String(row.test_code)) : undefined;
  return {
    id: newId(), source: 'lab', source_id: row.id, measure: null, patient_id: row.patient_id, visit_id: row.visit_id ?? null,
    category: row.test_category === 'imaging' ? 'imaging' : 'laboratory', code_system: code?.system ?? null, code: code?.code ?? null,
    effective_at: row.collection_date ? `${String(row.collection_date).slice(0, 10)} 00:00:00` : null,
    value_quantity: numeric ? Number(value) : null, unit: numeric ? row.result_unit ?? null : null,
    status: OBSERVATION_STATUS_FROM_LAB[String(row.status ?? 'ordered')] ?? 'unknown',
    version_id: 1, created_at: row.created_at ?? null, updated_at: row.updated_at ?? null,
  };
}
