/**
 * Vital-sign Observations <-> one measurement of a vitals row. Each measure (blood pressure,
 * heart rate ...) owns some vitals columns; the row's recorded_by / recorded_at / notes are shared
 * by every measurement of the row. Columns in the `v_` prefixed form the storage hooks expect.
 * Pure, no I/O. See docs/resources/Observation.md.
 */
import type { CodeableConcept } from '../fhir/types.js';
import { sameValue, TEXT_BYTES, type ColumnField, type Row } from './column-map.js';
import { pathField } from './fields.js';
import {
  LOINC, UCUM, categoryConcept, codingsOf, effectiveField, practitionerField, type Observation, type Quantity,
} from './observation-mapper.js';

export type MeasureName = 'bp' | 'heart-rate' | 'respiratory-rate' | 'temperature' | 'spo2' | 'weight' | 'height' | 'bmi' | 'pain' | 'panel';

/** A refusal of a value (the definition turns it into a 422). */
export interface VitalProblem { message: string; expression: string }

export interface Measure {
  name: MeasureName;
  /** LOINC codes that select the measure; the first is what native rows read as. */
  codes: string[];
  display: string;
  /** The vitals columns the measure owns. */
  columns: string[];
  /** The columns the resource implies. */
  toColumns(o: Observation): Row;
  /** Writes stored columns (the whole vitals row, unprefixed) into the resource. */
  fromColumns(o: Observation, row: Row): void;
  check(o: Observation): VitalProblem | undefined;
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
const num = (v: unknown): number | undefined => (v === null || v === undefined || v === '' ? undefined : Number(v));
const VALUE = 'Observation.valueQuantity';

interface Unit { code: string; unit: string }
const u = (code: string, unit = code): Unit => ({ code, unit });

/** The unit of a quantity, when it is one of the accepted ones (a quantity without a code takes the first). */
function unitOf(q: Quantity | undefined, accepted: Unit[]): Unit | undefined {
  if (!q) return accepted[0];
  if (q.code === undefined) return accepted[0];
  return q.system !== undefined && q.system !== UCUM ? undefined : accepted.find((a) => a.code === q.code);
}

/** Converts a value to the unit a range is given in. */
type Canonical = (value: number, unit: Unit) => number;
const same: Canonical = (v) => v;

function checkQuantity(q: Quantity | undefined, accepted: Unit[], range: [number, number, string], toCanonical: Canonical = same, expression = VALUE): VitalProblem | undefined {
  if (q?.value === undefined) return undefined;
  const unit = unitOf(q, accepted);
  if (!unit) return { message: `${expression}: unit '${q.code}' is not accepted here (UCUM ${accepted.map((a) => a.code).join(', ')})`, expression: `${expression}.code` };
  const [lo, hi, label] = range;
  const v = toCanonical(q.value, unit);
  if (v < lo || v > hi) return { message: `${expression}: ${q.value} ${unit.code} is outside the realistic range ${lo}-${hi} ${label}`, expression: `${expression}.value` };
  return undefined;
}

const quantity = (value: number, unit: Unit): Quantity => ({ value, unit: unit.unit, system: UCUM, code: unit.code });

/** Sets the value of valueQuantity from a column, keeping the client's unit text when the unit is the same. */
function setValue(o: Observation, value: number | undefined, unit: Unit): void {
  if (value === undefined) { delete o.valueQuantity; return; }
  const q = o.valueQuantity;
  o.valueQuantity = q && q.code === unit.code ? { ...q, value } : quantity(value, unit);
}

/** A measure held in one column in one unit. */
function simple(name: MeasureName, codes: string[], display: string, column: string, units: Unit[], digits: number, range: [number, number]): Measure {
  return {
    name, codes, display, columns: [column],
    toColumns: (o) => { const v = o.valueQuantity?.value; return { [column]: v === undefined ? null : round(v, digits) }; },
    fromColumns: (o, row) => setValue(o, num(row[column]), units[0]!),
    check: (o) => checkQuantity(o.valueQuantity, units, [range[0], range[1], units[0]!.code]),
  };
}

const LB = 0.45359237;
const MMHG = u('mm[Hg]', 'mmHg');
const SYSTOLIC = '8480-6';
const DIASTOLIC = '8462-4';
const KG = u('kg');
const LBS = u('[lb_av]', 'lbs');
const CM = u('cm');
const INCH = u('[in_i]', 'in');

const componentOf = (o: Observation, code: string) => (o.component ?? []).find((c) => codingsOf(c.code, LOINC).some((x) => x.code === code));

function setComponent(o: Observation, code: string, display: string, value: number | undefined): void {
  let c = componentOf(o, code);
  if (value === undefined) { if (c) delete c.valueQuantity; return; }
  if (!c) { c = { code: { coding: [{ system: LOINC, code, display }] } }; (o.component ??= []).push(c); }
  c.valueQuantity = c.valueQuantity?.code === MMHG.code ? { ...c.valueQuantity, value } : quantity(value, MMHG);
}

const bp: Measure = {
  name: 'bp', codes: ['85354-9', '55284-4'], display: 'Blood pressure panel with all children optional', columns: ['systolic_bp', 'diastolic_bp'],
  toColumns: (o) => {
    const s = componentOf(o, SYSTOLIC)?.valueQuantity?.value;
    const d = componentOf(o, DIASTOLIC)?.valueQuantity?.value;
    return { systolic_bp: s === undefined ? null : Math.round(s), diastolic_bp: d === undefined ? null : Math.round(d) };
  },
  fromColumns: (o, row) => {
    setComponent(o, SYSTOLIC, 'Systolic blood pressure', num(row.systolic_bp));
    setComponent(o, DIASTOLIC, 'Diastolic blood pressure', num(row.diastolic_bp));
  },
  check: (o) => {
    const i = (code: string) => (o.component ?? []).indexOf(componentOf(o, code)!);
    return checkQuantity(componentOf(o, SYSTOLIC)?.valueQuantity, [MMHG], [40, 300, 'mm[Hg]'], same, `Observation.component[${i(SYSTOLIC)}].valueQuantity`)
      ?? checkQuantity(componentOf(o, DIASTOLIC)?.valueQuantity, [MMHG], [20, 200, 'mm[Hg]'], same, `Observation.component[${i(DIASTOLIC)}].valueQuantity`);
  },
};

const TEMPERATURE_UNITS = [u('Cel', 'C'), u('[degF]', 'F')];
const temperature: Measure = {
  name: 'temperature', codes: ['8310-5', '8331-1', '8332-9', '8333-7', '8328-7'], display: 'Body temperature', columns: ['temperature', 'temperature_unit'],
  toColumns: (o) => {
    const q = o.valueQuantity;
    if (q?.value === undefined) return { temperature: null, temperature_unit: null };
    return { temperature: round(q.value, 1), temperature_unit: unitOf(q, TEMPERATURE_UNITS) === TEMPERATURE_UNITS[1] ? 'F' : 'C' };
  },
  fromColumns: (o, row) => setValue(o, num(row.temperature), row.temperature_unit === 'F' ? TEMPERATURE_UNITS[1]! : TEMPERATURE_UNITS[0]!),
  // 25-45 Cel is 77-113 [degF]
  check: (o) => checkQuantity(o.valueQuantity, TEMPERATURE_UNITS, [25, 45, 'Cel'], (v, unit) => (unit.code === 'Cel' ? v : round((v - 32) * 5 / 9, 6))),
};

const WEIGHT_UNITS = [KG, LBS, u('g')];
const weight: Measure = {
  name: 'weight', codes: ['29463-7', '3141-9', '3142-7'], display: 'Body weight', columns: ['weight', 'weight_unit'],
  toColumns: (o) => {
    const q = o.valueQuantity;
    if (q?.value === undefined) return { weight: null, weight_unit: null };
    const unit = unitOf(q, WEIGHT_UNITS);
    if (unit === LBS && round(q.value, 2) <= 999.99) return { weight: round(q.value, 2), weight_unit: 'lbs' };
    const kg = unit === LBS ? q.value * LB : unit?.code === 'g' ? q.value / 1000 : q.value;
    return { weight: round(kg, 2), weight_unit: 'kg' };
  },
  fromColumns: (o, row) => setValue(o, num(row.weight), row.weight_unit === 'kg' ? KG : LBS),
  check: (o) => checkQuantity(o.valueQuantity, WEIGHT_UNITS, [0.2, 700, 'kg'], (v, unit) => (unit === LBS ? v * LB : unit.code === 'g' ? v / 1000 : v)),
};

const HEIGHT_UNITS = [CM, u('m'), INCH];
const height: Measure = {
  name: 'height', codes: ['8302-2', '8306-3', '8308-9'], display: 'Body height', columns: ['height_cm', 'height_feet', 'height_inches'],
  toColumns: (o) => {
    const q = o.valueQuantity;
    if (q?.value === undefined) return { height_cm: null, height_feet: null, height_inches: null };
    const unit = unitOf(q, HEIGHT_UNITS);
    if (unit === INCH) {
      const inches = Math.round(q.value);
      return { height_cm: Math.round(q.value * 2.54), height_feet: Math.floor(inches / 12), height_inches: inches % 12 };
    }
    return { height_cm: Math.round(unit?.code === 'm' ? q.value * 100 : q.value), height_feet: null, height_inches: null };
  },
  fromColumns: (o, row) => {
    const cm = num(row.height_cm);
    const feet = num(row.height_feet);
    const inches = num(row.height_inches);
    if (cm !== undefined) setValue(o, cm, CM);
    else if (feet !== undefined || inches !== undefined) setValue(o, (feet ?? 0) * 12 + (inches ?? 0), INCH);
    else setValue(o, undefined, CM);
  },
  check: (o) => checkQuantity(o.valueQuantity, HEIGHT_UNITS, [20, 280, 'cm'], (v, unit) => (unit === INCH ? v * 2.54 : unit.code === 'm' ? v * 100 : v)),
};

/** BMI (kg/m2) of a vitals row's weight and height, when both are there. */
export function computeBmi(row: Row): number | undefined {
  const w = num(row.weight);
  const cm = num(row.height_cm) ?? (row.height_feet !== null && row.height_feet !== undefined ? (num(row.height_feet)! * 12 + (num(row.height_inches) ?? 0)) * 2.54 : undefined);
  if (w === undefined || !cm) return undefined;
  const kg = row.weight_unit === 'kg' ? w : w * LB;
  return round(kg / (cm / 100) ** 2, 1);
}

const bmi: Measure = {
  ...simple('bmi', ['39156-5'], 'Body mass index (BMI) [Ratio]', 'bmi', [u('kg/m2')], 1, [5, 150]),
  fromColumns: (o, row) => setValue(o, num(row.bmi) ?? computeBmi(row), u('kg/m2')),
};

const panel: Measure = {
  name: 'panel', codes: ['85353-1'], display: 'Vital signs, weight, height, head circumference, oxygen saturation and BMI panel', columns: [],
  toColumns: () => ({}), fromColumns: () => undefined, check: () => undefined,
};

/** Every vital sign HMS stores in the vitals table (docs/resources/Observation.md lists the ranges). */
export const MEASURES: Measure[] = [
  bp,
  simple('heart-rate', ['8867-4'], 'Heart rate', 'heart_rate', [u('/min', 'beats/minute'), u('{beats}/min', 'beats/minute')], 0, [20, 300]),
  simple('respiratory-rate', ['9279-1'], 'Respiratory rate', 'respiratory_rate', [u('/min', 'breaths/minute'), u('{breaths}/min', 'breaths/minute')], 0, [4, 80]),
  temperature,
  simple('spo2', ['2708-6', '59408-5'], 'Oxygen saturation in Arterial blood', 'oxygen_saturation', [u('%')], 0, [50, 100]),
  weight,
  height,
  bmi,
  simple('pain', ['72514-3'], 'Pain severity - 0-10 verbal numeric rating [Score] - Reported', 'pain_scale', [u('{score}'), u('{#}'), u('1')], 0, [0, 10]),
  panel,
];

const byCode = new Map(MEASURES.flatMap((m) => m.codes.map((c) => [c, m] as const)));
const byName = new Map(MEASURES.map((m) => [m.name, m]));

/** The measure an Observation's LOINC code selects (undefined: not a vital sign HMS stores in vitals). */
export function measureOf(o: { code?: CodeableConcept }): Measure | undefined {
  for (const c of codingsOf(o.code, LOINC)) {
    const m = byCode.get(c.code!);
    if (m) return m;
  }
  return undefined;
}

export const measureByName = (name: string): Measure | undefined => byName.get(name as MeasureName);

/** The refusal of a vital sign's values (unit not accepted, outside the realistic range), if any. */
export const checkVital = (o: Observation, m: Measure): VitalProblem | undefined => m.check(o);

const prefixed = (row: Row): Row => Object.fromEntries(Object.entries(row).map(([k, v]) => [`v_${k}`, v]));
const unprefixed = (row: Row): Row =>
  Object.fromEntries(Object.entries(row).filter(([k]) => k.startsWith('v_')).map(([k, v]) => [k.slice(2), v]));

/** The shared columns of the vitals row (prefixed). */
const sharedFields: ColumnField<Observation>[] = [
  practitionerField('v_recorded_by', 'performer'),
  effectiveField('v_recorded_at', { defaultToNow: true }),
  pathField('v_notes', 'note.0.text', { maxBytes: TEXT_BYTES }),
];
export const vitalsSourceFields = (): ColumnField<Observation>[] => sharedFields;

/** The measure's columns (prefixed) a resource implies. */
export const vitalsMeasureColumns = (o: Observation, m: Measure): Row => prefixed(m.toColumns(o));

/**
 * Overlays the stored measure columns: where any differs from what the resource implies, the
 * columns win. A native row (no kept resource) always reads its values from the columns.
 */
export function overlayMeasure(o: Observation, m: Measure, row: Row, native = false): void {
  const stored = unprefixed(row);
  const implied = m.toColumns(o);
  if (native || m.columns.some((c) => !sameValue(implied[c], stored[c]))) m.fromColumns(o, stored);
}

/** The value and unit the projection row holds (what value-quantity searches compare). */
export function vitalsProjection(o: Observation): Row {
  const q = o.valueQuantity;
  return { value_quantity: q?.value ?? null, unit: q ? q.code ?? q.unit ?? null : null };
}

/** What a vitals measurement without a kept resource reads as before its columns are applied. */
export function nativeVitalsBase(m: Measure): Observation {
  return {
    resourceType: 'Observation',
    category: [categoryConcept('vital-signs', 'Vital Signs')],
    code: { coding: [{ system: LOINC, code: m.codes[0]!, display: m.display }], text: m.display },
  };
}

/** The measures a vitals row holds values of (BMI also when it can be computed from weight and height). */
export function measuresOfRow(row: Row): Measure[] {
  return MEASURES.filter((m) => m.columns.some((c) => row[c] !== null && row[c] !== undefined) || (m.name === 'bmi' && computeBmi(row) !== undefined));
}

/**
 * The observations projection rows of a vitals row written natively (seeder, workers): one per
 * measurement, each with a new id from `newId` (uuid v7; store it once, never recompute).
 */
export function observationRowsForVitals(row: Row, newId: () => string, status = 'final'): Row[] {
  return measuresOfRow(row).map((m) => {
    const o = nativeVitalsBase(m);
    m.fromColumns(o, row);
    const code = o.code!.coding![0]!;
    return {
      id: newId(), source: 'vitals', source_id: row.id, measure: m.name, patient_id: row.patient_id, visit_id: row.visit_id ?? null,
      category: 'vital-signs', code_system: code.system, code: code.code, effective_at: row.recorded_at ?? null,
      ...vitalsProjection(o), status, version_id: 1, created_at: row.created_at ?? row.recorded_at ?? null, updated_at: row.updated_at ?? row.recorded_at ?? null,
    };
  });
}
