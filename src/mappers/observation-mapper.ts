/**
 * Shared pieces of the Observation mappers (vitals-mapper.ts, lab-result-mapper.ts): the
 * Observation shape, effective[x], codings, the performer field. Pure, no I/O.
 * https://hl7.org/fhir/R4/observation.html
 */
import type { CodeableConcept, Coding, Reference, Resource } from '../fhir/types.js';
import type { ColumnField, WriteDefaults } from './column-map.js';
import { dateTimeToSql, referenceId, sqlToInstant } from './datatypes.js';
import { setPath } from './fields.js';

export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

export interface Quantity { value?: number; unit?: string; system?: string; code?: string; [k: string]: unknown }
export interface ObservationComponent { code: CodeableConcept; valueQuantity?: Quantity; [k: string]: unknown }
export interface Period { start?: string; end?: string }

export interface Observation extends Resource {
  resourceType: 'Observation';
  status?: string;
  category?: CodeableConcept[];
  code?: CodeableConcept;
  subject?: Reference;
  encounter?: Reference;
  effectiveDateTime?: string;
  effectiveInstant?: string;
  effectivePeriod?: Period;
  issued?: string;
  performer?: Reference[];
  valueQuantity?: Quantity;
  valueString?: string;
  valueCodeableConcept?: CodeableConcept;
  interpretation?: CodeableConcept[];
  note?: { text?: string; [k: string]: unknown }[];
  referenceRange?: { low?: Quantity; high?: Quantity; text?: string; [k: string]: unknown }[];
  component?: ObservationComponent[];
  hasMember?: Reference[];
}

/** The start of effective[x] (dateTime, instant or period start). */
export function effectiveStart(o: Observation): string | undefined {
  return o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.start;
}

/** Writes a stored time back into whichever effective[x] the resource uses (dateTime when none). */
export function setEffective(o: Observation, value: string | undefined): void {
  if (o.effectivePeriod) { if (value) o.effectivePeriod.start = value; else delete o.effectivePeriod.start; return; }
  if (o.effectiveInstant !== undefined) { if (value) o.effectiveInstant = value; else delete o.effectiveInstant; return; }
  if (value) o.effectiveDateTime = value; else delete o.effectiveDateTime;
}

/** The codings of a CodeableConcept from a system. */
export const codingsOf = (cc: CodeableConcept | undefined, system?: string): Coding[] =>
  (cc?.coding ?? []).filter((c) => c.code && (system === undefined || c.system === system));

/** The coding the projection's code columns hold: the first LOINC one, else the first coded one. */
export function primaryCoding(cc: CodeableConcept | undefined): Coding | undefined {
  return codingsOf(cc, LOINC)[0] ?? codingsOf(cc)[0];
}

/** The first category code of the observation-category system (else the first coded category). */
export function categoryCode(o: Observation): string | undefined {
  const all = (o.category ?? []).flatMap((c) => codingsOf(c));
  return (all.find((c) => c.system === OBSERVATION_CATEGORY) ?? all[0])?.code;
}

export const categoryConcept = (code: string, display: string): CodeableConcept =>
  ({ coding: [{ system: OBSERVATION_CATEGORY, code, display }] });

/**
 * A column holding the id of the first Practitioner reference in a list (performer), NOT NULL:
 * without one it holds the writing user (see WriteDefaults).
 */
export function practitionerField<R extends Resource>(column: string, list: string): ColumnField<R> {
  const refs = (r: R): Reference[] => ((r as Record<string, unknown>)[list] as Reference[] | undefined) ?? [];
  return {
    column, path: list,
    toColumn: (r, d: WriteDefaults) => refs(r).map((x) => referenceId(x, 'Practitioner')).find(Boolean) ?? d.userId,
    fromColumn: (r, v) => {
      const items = refs(r);
      const i = items.findIndex((x) => referenceId(x, 'Practitioner'));
      if (v === null || v === undefined) { if (i >= 0) items.splice(i, 1); }
      else if (i >= 0) items[i] = { reference: `Practitioner/${String(v)}` };
      else items.unshift({ reference: `Practitioner/${String(v)}` });
      setPath(r as Record<string, unknown>, list, items.length ? items : undefined);
    },
  };
}

/** A TIMESTAMP column mirrored by effective[x]; `defaultToNow` for NOT NULL columns. */
export function effectiveField(column: string, opts: { defaultToNow?: boolean } = {}): ColumnField<Observation> {
  return {
    column, path: 'Observation.effective',
    toColumn: (o, d) => dateTimeToSql(effectiveStart(o)) ?? (opts.defaultToNow ? d.now : undefined),
    fromColumn: (o, v) => setEffective(o, v === null || v === undefined ? undefined : sqlToInstant(v)),
  };
}
