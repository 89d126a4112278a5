/**
 * Search index values of a resource, from the standard R4 SearchParameters' FHIRPath: each
 * parameter's expression (the branches on its type, src/fhir/r4/definitions.ts) is compiled once
 * by fhirpath.js against its R4 model, evaluated on the resource, and each node it yields is
 * converted by its FHIR type to what the search index stores for the parameter's type
 * (src/fhir/registry.ts IndexValue, src/fhir/search/index-entries.ts), after
 * https://hl7.org/fhir/R4/search.html. docs/fhirpath.md says why this engine and how each type
 * converts.
 *
 * `resolve()` is not evaluated: fhirpath.js treats it as asynchronous (it would fetch the target)
 * and refuses it in synchronous evaluation. Every standard R4 use is `X.where(resolve() is T)`,
 * which is rewritten, before compiling, into a test on the reference itself:
 * `X.where(reference.matches('(^|/)T/[^/]+(/_history/[^/]+)?$'))`, i.e. the reference is `T/id`
 * (with or without a version), or an absolute URL ending in it. A reference to a contained
 * resource (#id), a urn:uuid: or a logical reference (identifier only) is not taken: the index
 * holds none of those anyway.
 */
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import type { R4SearchParam } from '../r4/definitions.js';
import type { DateRangeValue, IndexValue, QuantityIndexValue, TokenValue } from '../registry.js';
import type { Resource } from '../types.js';
import { parseDateParam, utc } from '../search/dates.js';
import { referenceShape } from '../references.js';

export type Extractor = (resource: Resource) => IndexValue[];

/** The earliest instant a date index value holds (year 1, as src/fhir/search/compile.ts bounds searches): an open Period start. */
export const DATE_MIN_MS = utc(1, 0, 1).getTime();
/** The latest (9999-12-31T23:59:59Z, compile.ts's upper bound): an open Period end. */
export const DATE_MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/** The currency system of Money quantities. */
export const CURRENCY_SYSTEM = 'urn:iso:std:iso:4217';

/** A node of a fhirpath.js result (resolveInternalTypes: false): the FHIR type and the JSON it stands for. */
interface Node { data?: unknown; fhirNodeDataType?: string | null }

type Json = Record<string, unknown>;

/** `X.where(resolve() is T)` → `X.where(reference.matches(...))`: a test on the reference's type. */
const RESOLVE_IS = /\.where\(\s*resolve\(\)\s+is\s+(?:FHIR\.)?([A-Z][A-Za-z]+)\s*\)/g;

/** The expression with every `where(resolve() is T)` rewritten (see the module's comment). */
export function rewriteResolve(expression: string): string {
  return expression.replace(RESOLVE_IS, (_m, type: string) => `.where(reference.matches('(^|/)${type}/[^/]+(/_history/[^/]+)?$'))`);
}

// FHIR types by what they convert as (the profiles of Quantity and the specialisations of the primitives).
const QUANTITY_TYPES = new Set(['Quantity', 'Age', 'Duration', 'Distance', 'Count', 'SimpleQuantity', 'MoneyQuantity']);
const NUMBER_TYPES = new Set(['integer', 'positiveInt', 'unsignedInt', 'decimal']);
const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : []);

/** A JSON number, or a decimal as fhirpath.js holds it (FP_Decimal, with toNumber). */
function toNumber(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v
    : isObject(v) && typeof (v as { toNumber?: unknown }).toNumber === 'function' ? (v as unknown as { toNumber(): number }).toNumber()
      : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

const token = (system: unknown, code: unknown): TokenValue | undefined => {
  const c = str(code);
  if (!c) return undefined;
  const s = str(system);
  return s ? { system: s, code: c } : { code: c };
};

// ---- per parameter type: what a node of each FHIR type gives ---------------------------------

function stringValues(type: string | undefined, d: unknown, out: IndexValue[]): void {
  if (typeof d === 'string') { if (d) out.push(d); return; }
  if (!isObject(d)) return;
  switch (type) {
    case 'HumanName':
      for (const v of [str(d.family), ...strings(d.given), ...strings(d.prefix), ...strings(d.suffix), str(d.text)]) if (v) out.push(v);
      return;
    case 'Address':
      for (const v of [...strings(d.line), str(d.city), str(d.district), str(d.state), str(d.postalCode), str(d.country), str(d.text)]) if (v) out.push(v);
      return;
    case 'ContactPoint': { const v = str(d.value); if (v) out.push(v); return; }
    case 'CodeableConcept': {
      const t = str(d.text);
      if (t) out.push(t);
      if (Array.isArray(d.coding)) for (const c of d.coding) { const v = isObject(c) ? str(c.display) : undefined; if (v) out.push(v); }
      return;
    }
    case 'Coding': { const v = str(d.display); if (v) out.push(v); return; }
    default: // other complex types have no text a string search means
  }
}

function tokenValues(type: string | undefined, d: unknown, out: IndexValue[]): void {
  if (typeof d === 'boolean') { out.push({ code: String(d) }); return; }
  if (typeof d === 'string') { if (d) out.push({ code: d }); return; }
  if (!isObject(d)) return;
  switch (type) {
    case 'Coding': { const t = token(d.system, d.code); if (t) out.push(t); return; }
    case 'CodeableConcept':
      if (Array.isArray(d.coding)) for (const c of d.coding) { const t = isObject(c) ? token(c.system, c.code) : undefined; if (t) out.push(t); }
      return;
    case 'Identifier': { const t = token(d.system, d.value); if (t) out.push(t); return; }
    case 'ContactPoint': { const t = token(d.system, d.value); if (t) out.push(t); return; } // system: phone, email ... (as HAPI)
    default: // Quantity, Range, Reference ... are no tokens
  }
}

/** A literal reference as the index holds it: `Type/id` (version dropped), an absolute URL as it is; others nothing. */
export function referenceValue(reference: string): string | undefined {
  const shape = referenceShape(reference);
  if (typeof shape === 'string') return undefined;
  if (shape.kind === 'relative') return `${shape.type}/${shape.id}`;
  if (shape.kind === 'absolute') return shape.url;
  return undefined; // #contained, urn:uuid:, urn:oid:
}

function referenceValues(type: string | undefined, d: unknown, out: IndexValue[]): void {
  if (typeof d === 'string') { if (d) out.push(d); return; } // canonical, uri: the URL as it is
  if (!isObject(d) || type !== 'Reference') return; // a resource (Bundle.entry[0].resource), an Attachment: nothing
  const ref = str(d.reference);
  const v = ref ? referenceValue(ref) : undefined;
  if (v) out.push(v);
}

function uriValues(d: unknown, out: IndexValue[]): void {
  if (typeof d === 'string' && d) out.push(d);
}

/** The range a date, dateTime or instant covers at its precision, as search values are read (src/fhir/search/dates.ts: no zone = UTC). */
export function dateRange(value: string): DateRangeValue | undefined {
  try {
    const r = parseDateParam(value, 'date');
    return { low: r.start.getTime(), high: r.end.getTime() };
  } catch {
    return undefined;
  }
}

/** A Period: from its start's beginning to its end's end, an open end at the bound of the index. */
export function periodRange(p: Json): DateRangeValue | undefined {
  const start = str(p.start) ? dateRange(p.start as string) : undefined;
  const end = str(p.end) ? dateRange(p.end as string) : undefined;
  if (!start && !end) return undefined;
  const low = start?.low ?? DATE_MIN_MS;
  const high = end?.high ?? DATE_MAX_MS;
  return low <= high ? { low, high } : { low: high, high: low }; // an inverted period covers the span between its ends
}

function dateValues(type: string | undefined, d: unknown, out: IndexValue[]): void {
  if (typeof d === 'string') {
    // a string that is no date (Immunization.occurrenceString, Condition.onsetString) gives nothing
    if (type && !DATE_TYPES.has(type)) return;
    const r = dateRange(d);
    if (r) out.push(r);
    return;
  }
  if (!isObject(d)) return;
  if (type === 'Period') { const r = periodRange(d); if (r) out.push(r); return; }
  if (type === 'Timing') {
    for (const e of strings(d.event)) { const r = dateRange(e); if (r) out.push(r); }
    const bounds = isObject(d.repeat) ? d.repeat.boundsPeriod : undefined;
    if (isObject(bounds)) { const r = periodRange(bounds); if (r) out.push(r); }
  }
}

function numberValues(type: string | undefined, d: unknown, out: IndexValue[]): void {
  if (type && !NUMBER_TYPES.has(type)) return; // a Range (RiskAssessment.probability) gives nothing
  const n = toNumber(d);
  if (n !== undefined) out.push(n);
}

/**
 * A quantity as indexed: its value with its system and code (the unit when there is no code);
 * when it has both a code and a different human unit, a second entry with the unit and no system,
 * so that `value||unit` finds it too (R4: the code of a quantity search matches the code or the unit).
 */
function quantities(d: unknown): QuantityIndexValue[] {
  if (!isObject(d)) return [];
  const value = toNumber(d.value);
  if (value === undefined) return [];
  const q: QuantityIndexValue = { value };
  const system = str(d.system);
  const code = str(d.code) ?? str(d.unit);
  if (system) q.system = system;
  if (code) q.code = code;
  const unit = str(d.unit);
  return unit && code && unit !== code ? [q, { value, code: unit }] : [q];
}

function quantityValues(type: string | undefined, d: unknown, out: IndexValue[]): void {
  if (!isObject(d)) return;
  if (type === 'Money') {
    const value = toNumber(d.value);
    if (value === undefined) return;
    const code = str(d.currency);
    out.push({ value, system: CURRENCY_SYSTEM, ...(code ? { code } : {}) });
    return;
  }
  if (type === 'Range') { // its bounds, each a quantity (as HAPI does)
    for (const b of [d.low, d.high]) out.push(...quantities(b));
    return;
  }
  if (type && QUANTITY_TYPES.has(type)) out.push(...quantities(d));
  // SampledData (Observation value-quantity) has no single value: nothing
}

type Convert = (type: string | undefined, data: unknown, out: IndexValue[]) => void;

const CONVERT: Record<string, Convert> = {
  string: stringValues,
  token: tokenValues,
  reference: referenceValues,
  uri: (_t, d, out) => uriValues(d, out),
  date: dateValues,
  number: numberValues,
  quantity: quantityValues,
};

type Compiled = (resource: unknown) => unknown[];
const compiledByExpression = new Map<string, Compiled | null>();

/** The expression compiled by fhirpath.js (shared by the parameters that have the same one), null if it refuses it. */
function compileExpression(type: string, expression: string): Compiled | null {
  const known = compiledByExpression.get(expression);
  if (known !== undefined) return known;
  let f: Compiled | null = null;
  const rewritten = rewriteResolve(expression);
  if (!/\bresolve\s*\(/.test(rewritten)) { // another use of resolve(): the engine would refuse it at the first reference
    try {
      const g = fhirpath.compile(rewritten, r4model, { resolveInternalTypes: false }) as Compiled;
      g({ resourceType: type }); // an error of the engine's (an unknown function ...) shows on any resource
      f = g;
    } catch {
      f = null;
    }
  }
  compiledByExpression.set(expression, f);
  return f;
}

/** Compiled once per (type, parameter); undefined when the parameter cannot be indexed (composite, special, or an expression the engine refuses). */
export function compileExtractor(type: string, param: R4SearchParam): Extractor | undefined {
  const convert = CONVERT[param.type];
  if (!convert || !param.expression) return undefined;
  const evaluate = compileExpression(type, param.expression);
  if (!evaluate) return undefined;
  return (resource) => {
    try {
      const out: IndexValue[] = [];
      for (const n of evaluate(resource)) {
        if (n === null || n === undefined) continue;
        // a ResourceNode (an element of the resource), or a value the expression computed (Patient.deceased's boolean)
        if (typeof n === 'object' && 'data' in n) convert((n as Node).fhirNodeDataType ?? undefined, (n as Node).data, out);
        else convert(undefined, n, out);
      }
      return out;
    } catch {
      return [];
    }
  };
}
