/**
 * Condition <-> medical_conditions row. https://hl7.org/fhir/R4/condition.html
 * Columns hold the name and ICD-10-CM code, the diagnosis date, severity, status, notes, the
 * encounter (visit), the recorder (diagnosed_by) and the patient; everything else the client sent
 * is kept beside the row (see column-map.ts). Also exports the small helpers MedicationRequest
 * shares (concept names, the patient subject, practitioner columns).
 */
import type { CodeableConcept, Coding, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, resourceFromColumns, TEXT_BYTES, type ColumnField, type Row, type WriteDefaults } from './column-map.js';
import { dateToSql, extensionValue, hmsExtensionUrl, referenceId, setExtension } from './datatypes.js';
import { dateField, pathField, referenceField } from './fields.js';

export const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
export const SNOMED = 'http://snomed.info/sct';
export const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
export const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
/** HMS extension (valueBoolean) marking a Condition chronic: the status column's 'chronic'. */
export const CHRONIC_EXTENSION = hmsExtensionUrl('condition-chronic');

export interface Condition extends Resource {
  resourceType: 'Condition';
  clinicalStatus?: CodeableConcept;
  verificationStatus?: CodeableConcept;
  severity?: CodeableConcept;
  code?: CodeableConcept;
  subject?: Reference;
  encounter?: Reference;
  onsetDateTime?: string;
  onsetPeriod?: { start?: string; end?: string };
  abatementDateTime?: string;
  abatementPeriod?: { start?: string; end?: string };
  recordedDate?: string;
  recorder?: Reference;
  asserter?: Reference;
  note?: { text?: string; [k: string]: unknown }[];
  extension?: { url: string; [k: string]: unknown }[];
}

// ---------------------------------------------------------------- shared with MedicationRequest

/** The human name of a concept: its text, else the first coding's display, else its code. */
export function conceptName(c: CodeableConcept | undefined): string | undefined {
  if (!c) return undefined;
  if (c.text) return c.text;
  const coding = c.coding?.find((x) => x.display) ?? c.coding?.find((x) => x.code);
  return coding?.display ?? coding?.code;
}

/** patient_id <- subject (a Patient reference; the definitions refuse others). */
export const subjectField = <R extends Resource>(): ColumnField<R> => referenceField<R>('patient_id', 'subject', 'Patient');

/**
 * A NOT NULL users column mirrored by the first of some Practitioner references (recorder, then
 * asserter ...): a native change lands in the first that holds a Practitioner (or the first).
 * Without any, the writing user is stored (WriteDefaults).
 */
export function practitionerField<R extends Resource>(column: string, paths: string[]): ColumnField<R> {
  const refs = (r: R): (Reference | undefined)[] => paths.map((p) => r[p] as Reference | undefined);
  return {
    column, path: paths[0]!,
    toColumn: (r, d: WriteDefaults) => refs(r).map((x) => referenceId(x, 'Practitioner')).find(Boolean) ?? d.userId,
    fromColumn: (r, v) => {
      if (v === null || v === undefined) return;
      const i = Math.max(0, refs(r).findIndex((x) => referenceId(x, 'Practitioner')));
      (r as Record<string, unknown>)[paths[i]!] = { reference: `Practitioner/${String(v)}` };
    },
  };
}

// ---------------------------------------------------------------- severity and status

/** severity column <-> SNOMED CT severity codes. */
export const SEVERITY: Record<string, { code: string; display: string }> = {
  mild: { code: '255604002', display: 'Mild' },
  moderate: { code: '6736007', display: 'Moderate' },
  severe: { code: '24484000', display: 'Severe' },
  critical: { code: '442452003', display: 'Life threatening severity' },
};
const SEVERITY_BY_CODE = Object.fromEntries(Object.entries(SEVERITY).map(([col, s]) => [s.code, col]));

const snomedSeverity = (c: Condition): Coding | undefined => c.severity?.coding?.find((x) => x.system === SNOMED && x.code !== undefined && SEVERITY_BY_CODE[x.code]);

/** clinicalStatus code -> status column (recurrence and relapse are active; inactive is nearest to resolved). */
export const CLINICAL_TO_STATUS: Record<string, string> = {
  active: 'active', recurrence: 'active', relapse: 'active', inactive: 'resolved', remission: 'in_remission', resolved: 'resolved',
};
const STATUS_TO_CLINICAL: Record<string, string> = { active: 'active', chronic: 'active', resolved: 'resolved', in_remission: 'remission' };

const clinicalCoding = (c: Condition): Coding | undefined =>
  c.clinicalStatus?.coding?.find((x) => x.system === CONDITION_CLINICAL && x.code !== undefined && CLINICAL_TO_STATUS[x.code]);

function statusOf(c: Condition): string | undefined {
  const code = clinicalCoding(c)?.code;
  if (!code) return undefined;
  const status = CLINICAL_TO_STATUS[code]!;
  return status === 'active' && extensionValue(c, CHRONIC_EXTENSION, 'valueBoolean') === true ? 'chronic' : status;
}

function setStatus(c: Condition, v: unknown): void {
  setExtension(c, CHRONIC_EXTENSION, 'valueBoolean', v === 'chronic' ? true : undefined);
  const code = v === null || v === undefined ? undefined : STATUS_TO_CLINICAL[String(v)];
  if (!code) { delete c.clinicalStatus; return; }
  const current = clinicalCoding(c)?.code;
  if (current && CLINICAL_TO_STATUS[current] === (v === 'chronic' ? 'active' : v)) return; // e.g. relapse stays relapse
  c.clinicalStatus = { coding: [{ system: CONDITION_CLINICAL, code }] };
}

// ---------------------------------------------------------------- the fields

const ONSET_CHOICES = ['onsetDateTime', 'onsetAge', 'onsetPeriod', 'onsetRange', 'onsetString'];

/** diagnosis_date: the onset date, else the recorded date, else the write's date (recorded_date is its own column). */
const diagnosisDate: ColumnField<Condition> = {
  column: 'diagnosis_date', path: 'Condition.onsetDateTime',
  toColumn: (c, d) => dateToSql(c.onsetDateTime) ?? dateToSql(c.recordedDate) ?? d.now?.slice(0, 10),
  fromColumn: (c, v) => {
    if (v === null || v === undefined) return;
    // the column is authoritative: a changed diagnosis date becomes the onset (replacing another onset[x])
    for (const k of ONSET_CHOICES) delete c[k];
    c.onsetDateTime = String(v).slice(0, 10);
  },
};

export const conditionFields: ColumnField<Condition>[] = [
  subjectField<Condition>(),
  referenceField<Condition>('visit_id', 'encounter', 'Encounter'),
  {
    column: 'icd_10_code', path: `Condition.code.coding.where(system='${ICD10CM}')`, maxLength: 20,
    toColumn: (c) => c.code?.coding?.find((x) => x.system === ICD10CM)?.code,
    fromColumn: (c, v) => {
      const coding = (c.code?.coding ?? []).filter((x) => x.system !== ICD10CM);
      if (v !== null && v !== undefined) coding.unshift({ system: ICD10CM, code: String(v) });
      if (coding.length) (c.code ??= {}).coding = coding;
      else if (c.code) { delete c.code.coding; if (Object.keys(c.code).length === 0) delete c.code; }
    },
  },
  {
    column: 'condition_name', path: 'Condition.code', maxLength: 255,
    toColumn: (c) => conceptName(c.code),
    fromColumn: (c, v) => { if (v !== null && v !== undefined) (c.code ??= {}).text = String(v); },
  },
  diagnosisDate,
  dateField<Condition>('recorded_date', 'recordedDate'),
  {
    column: 'severity', path: 'Condition.severity',
    toColumn: (c) => { const code = snomedSeverity(c)?.code; return code ? SEVERITY_BY_CODE[code] : undefined; },
    fromColumn: (c, v) => {
      const others = (c.severity?.coding ?? []).filter((x) => x !== snomedSeverity(c));
      const s = v === null || v === undefined ? undefined : SEVERITY[String(v)];
      if (!s) { if (others.length) c.severity!.coding = others; else delete c.severity; return; }
      c.severity = { ...c.severity, coding: [{ system: SNOMED, code: s.code, display: s.display }, ...others] };
    },
  },
  { column: 'status', path: 'Condition.clinicalStatus', toColumn: statusOf, fromColumn: setStatus },
  pathField<Condition>('notes', 'note.0.text', { maxBytes: TEXT_BYTES }),
  practitionerField<Condition>('diagnosed_by', ['recorder', 'asserter']),
];

/** The medical_conditions columns a Condition implies. */
export function conditionToRow(condition: Condition, defaults: WriteDefaults = {}): Row {
  return columnsFromResource(conditionFields, condition, defaults);
}

/** The Condition a medical_conditions row reads as, given the resource last written (none for native rows). */
export function conditionFromRow(row: Row, kept?: Condition): Condition {
  const base: Condition = kept ? structuredClone(kept) : {
    resourceType: 'Condition',
    verificationStatus: { coding: [{ system: CONDITION_VER_STATUS, code: 'confirmed' }] },
  };
  base.resourceType = 'Condition';
  base.id = String(row.id);
  return resourceFromColumns(conditionFields, row, base);
}
