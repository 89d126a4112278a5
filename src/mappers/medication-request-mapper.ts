/**
 * MedicationRequest <-> prescriptions row. https://hl7.org/fhir/R4/medicationrequest.html
 * Columns hold the medication name, the first dosage instruction's dose, frequency and
 * instructions (in the grammar of src/fhir/dosage.ts), the dispense request (duration, quantity,
 * refills, validity period), the indication, status, dates, requester, encounter and patient;
 * everything else the client sent is kept beside the row (see column-map.ts).
 */
import type { CodeableConcept, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, resourceFromColumns, TEXT_BYTES, type ColumnField, type Row, type WriteDefaults } from './column-map.js';
import { extensionValue, hmsExtensionUrl, setExtension } from './datatypes.js';
import { dateField, pathField, referenceField, setPath } from './fields.js';
import { conceptName, practitionerField, subjectField } from './condition-mapper.js';
import {
  doseAndRateOf, findDose, findFrequency, parseDose, parseDuration, parseFrequency, renderDose, renderDuration, renderFrequency,
  structuredDose, structuredFrequency, type Dosage, type Quantity,
} from './dosage.js';

export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

/** Column text that the grammar cannot read (rows written natively) is kept in these extensions. */
export const PRESCRIPTION_EXTENSIONS = {
  dosage: hmsExtensionUrl('prescription-dosage-text'),
  frequency: hmsExtensionUrl('prescription-frequency-text'),
  duration: hmsExtensionUrl('prescription-duration-text'),
} as const;

export interface MedicationRequest extends Resource {
  resourceType: 'MedicationRequest';
  status?: string;
  intent?: string;
  medicationCodeableConcept?: CodeableConcept;
  medicationReference?: Reference;
  contained?: Resource[];
  subject?: Reference;
  encounter?: Reference;
  authoredOn?: string;
  requester?: Reference;
  reasonCode?: CodeableConcept[];
  note?: { text?: string; [k: string]: unknown }[];
  dosageInstruction?: Dosage[];
  dispenseRequest?: {
    validityPeriod?: { start?: string; end?: string };
    numberOfRepeatsAllowed?: number;
    quantity?: Quantity;
    expectedSupplyDuration?: Quantity;
    [k: string]: unknown;
  };
  extension?: { url: string; [k: string]: unknown }[];
}

/** prescriptions.status <-> MedicationRequest.status; the other codes map to the nearest and are kept. */
export const STATUS_TO_COLUMN: Record<string, string> = {
  active: 'active', 'on-hold': 'active', draft: 'active', unknown: 'active',
  completed: 'completed', cancelled: 'cancelled', 'entered-in-error': 'cancelled', stopped: 'expired',
};
const COLUMN_TO_STATUS: Record<string, string> = { active: 'active', completed: 'completed', cancelled: 'cancelled', expired: 'stopped' };

// ---------------------------------------------------------------- medication

/** The Medication a reference names: a contained one ("#id"). */
function containedMedication(m: MedicationRequest): { code?: CodeableConcept } | undefined {
  const ref = m.medicationReference?.reference;
  if (!ref?.startsWith('#')) return undefined;
  return m.contained?.find((c) => c.resourceType === 'Medication' && c.id === ref.slice(1)) as { code?: CodeableConcept } | undefined;
}

/** The medication's name: the concept's text / display / code, or the reference's display, its contained Medication's name, or the reference itself. */
export function medicationName(m: MedicationRequest): string | undefined {
  if (m.medicationCodeableConcept) return conceptName(m.medicationCodeableConcept);
  const ref = m.medicationReference;
  return ref?.display ?? conceptName(containedMedication(m)?.code) ?? ref?.reference;
}

/** The medication's codings: the concept's, or those of a contained Medication. */
export function medicationCodes(m: MedicationRequest): CodeableConcept | undefined {
  return m.medicationCodeableConcept ?? containedMedication(m)?.code;
}

// ---------------------------------------------------------------- dose, frequency, duration

const firstDosage = (m: MedicationRequest): Dosage | undefined => m.dosageInstruction?.[0];

/** What the dosage and frequency columns (NOT NULL) hold for a MedicationRequest that states no dosage at all. */
export const NOT_STATED = 'not stated';

/** No dose, timing or instruction text at all (a record from elsewhere, e.g. an EHR's medication history). */
export function statesNoDosage(m: MedicationRequest): boolean {
  const d = firstDosage(m);
  return !d?.doseAndRate?.length && !d?.timing && !d?.text && !d?.patientInstruction;
}
const ensureDosage = (m: MedicationRequest): Dosage => ((m.dosageInstruction ??= [{}])[0] ??= {});
const dosageText = (d: Dosage | undefined): string | undefined => d?.text ?? d?.patientInstruction;

/** The dose the first dosage instruction states (structured, else read from its text). */
export function doseOf(m: MedicationRequest): string | undefined {
  const d = firstDosage(m);
  const found = findDose(dosageText(d));
  return structuredDose(d) ?? (found ? renderDose(found) : undefined);
}

/** The frequency the first dosage instruction states (its timing, else read from its text). */
export function frequencyOf(m: MedicationRequest): string | undefined {
  const d = firstDosage(m);
  const f = structuredFrequency(d) ?? findFrequency(dosageText(d));
  return f ? renderFrequency({ ...f, asNeeded: f.asNeeded || d?.asNeededBoolean === true || d?.asNeededCodeableConcept !== undefined }) : undefined;
}

/**
 * A column in the dosage grammar. Reading: the structured element, else the kept column text
 * (an extension, for values the grammar cannot read), else `fallback` (text). A stored value
 * the grammar reads becomes the structured element; one it cannot is kept in the extension.
 */
function grammarField(
  column: string, path: string, url: string, structured: (m: MedicationRequest) => string | undefined,
  apply: (m: MedicationRequest, text: string) => boolean, clear: (m: MedicationRequest) => void, fallback?: (m: MedicationRequest) => string | undefined,
): ColumnField<MedicationRequest> {
  return {
    column, path, maxLength: 100,
    toColumn: (m) => structured(m) ?? (extensionValue(m, url, 'valueString') as string | undefined) ?? fallback?.(m),
    fromColumn: (m, v) => {
      setExtension(m, url, 'valueString', undefined);
      if (v === null || v === undefined || v === '' || v === NOT_STATED) { clear(m); return; }
      if (!apply(m, String(v))) { clear(m); setExtension(m, url, 'valueString', String(v)); }
    },
  };
}

const pruneDosage = (m: MedicationRequest): void => {
  const d = firstDosage(m);
  if (d?.doseAndRate) {
    d.doseAndRate = d.doseAndRate.filter((x) => Object.keys(x).length > 0);
    if (d.doseAndRate.length === 0) delete d.doseAndRate;
  }
  if (d && Object.keys(d).length === 0) m.dosageInstruction!.splice(0, 1);
  if (m.dosageInstruction?.length === 0) delete m.dosageInstruction;
};

const doseField = grammarField('dosage', 'MedicationRequest.dosageInstruction[0].doseAndRate[0].dose', PRESCRIPTION_EXTENSIONS.dosage,
  (m) => structuredDose(firstDosage(m)),
  (m, text) => {
    const dose = parseDose(text);
    if (!dose) return false;
    const d = ensureDosage(m);
    const dr = ((d.doseAndRate ??= [{}])[0] ??= {});
    delete dr.doseQuantity; delete dr.doseRange;
    Object.assign(dr, doseAndRateOf(dose));
    return true;
  },
  (m) => { const dr = firstDosage(m)?.doseAndRate?.[0]; if (dr) { delete dr.doseQuantity; delete dr.doseRange; } pruneDosage(m); },
  (m) => { const f = findDose(dosageText(firstDosage(m))); return f ? renderDose(f) : statesNoDosage(m) ? NOT_STATED : undefined; });

const frequencyField = grammarField('frequency', 'MedicationRequest.dosageInstruction[0].timing', PRESCRIPTION_EXTENSIONS.frequency,
  (m) => (structuredFrequency(firstDosage(m)) ? frequencyOf(m) : undefined),
  (m, text) => {
    const f = parseFrequency(text);
    if (!f) return false;
    const d = ensureDosage(m);
    const { frequencyMax: _a, periodMax: _b, ...rest } = d.timing?.repeat ?? {};
    d.timing = { ...d.timing, repeat: { ...rest, ...f.repeat } };
    delete d.timing.code;
    if (!f.asNeeded) { delete d.asNeededBoolean; delete d.asNeededCodeableConcept; }
    else if (!d.asNeededCodeableConcept) d.asNeededBoolean = true;
    return true;
  },
  (m) => { const d = firstDosage(m); if (d) delete d.timing; pruneDosage(m); },
  (m) => (findFrequency(dosageText(firstDosage(m))) ? frequencyOf(m) : statesNoDosage(m) ? NOT_STATED : undefined));

const durationField = grammarField('duration', 'MedicationRequest.dispenseRequest.expectedSupplyDuration', PRESCRIPTION_EXTENSIONS.duration,
  (m) => renderDuration(m.dispenseRequest?.expectedSupplyDuration),
  (m, text) => {
    const q = parseDuration(text);
    if (q) setPath(m as unknown as Record<string, unknown>, 'dispenseRequest.expectedSupplyDuration', q);
    return q !== undefined;
  },
  (m) => setPath(m as unknown as Record<string, unknown>, 'dispenseRequest.expectedSupplyDuration', undefined));

// ---------------------------------------------------------------- the fields

const integer = (v: unknown): unknown => (typeof v === 'number' ? Math.round(v) : v);

export const medicationRequestFields: ColumnField<MedicationRequest>[] = [
  subjectField<MedicationRequest>(),
  practitionerField<MedicationRequest>('doctor_id', ['requester']),
  referenceField<MedicationRequest>('visit_id', 'encounter', 'Encounter'),
  {
    column: 'medication_name', path: 'MedicationRequest.medication', maxLength: 255,
    toColumn: medicationName,
    fromColumn: (m, v) => {
      if (v === null || v === undefined) return;
      if (m.medicationReference && !m.medicationCodeableConcept) m.medicationReference.display = String(v);
      else (m.medicationCodeableConcept ??= {}).text = String(v);
    },
  },
  {
    // first: a changed instruction text may change what the dose and frequency fall back on
    column: 'instructions', path: 'MedicationRequest.dosageInstruction[0].patientInstruction', maxBytes: TEXT_BYTES,
    toColumn: (m) => firstDosage(m)?.patientInstruction ?? firstDosage(m)?.text,
    fromColumn: (m, v) => {
      const d = firstDosage(m);
      const key = d?.patientInstruction !== undefined || d?.text === undefined ? 'patientInstruction' : 'text';
      if (v === null || v === undefined) { if (d) delete d[key]; pruneDosage(m); } else ensureDosage(m)[key] = String(v);
    },
  },
  doseField,
  frequencyField,
  durationField,
  { ...pathField<MedicationRequest>('quantity_prescribed', 'dispenseRequest.quantity.value', { toColumn: integer }), numeric: 'int' },
  { ...pathField<MedicationRequest>('refills_remaining', 'dispenseRequest.numberOfRepeatsAllowed', { fromColumn: Number }), numeric: 'int' },
  {
    column: 'indication', path: 'MedicationRequest.reasonCode[0]', maxLength: 255,
    toColumn: (m) => conceptName(m.reasonCode?.[0]),
    fromColumn: (m, v) => {
      if (v === null || v === undefined) { m.reasonCode?.splice(0, 1); if (m.reasonCode?.length === 0) delete m.reasonCode; }
      else ((m.reasonCode ??= [{}])[0] ??= {}).text = String(v);
    },
  },
  {
    column: 'status', path: 'MedicationRequest.status',
    toColumn: (m) => (m.status ? STATUS_TO_COLUMN[m.status] : undefined),
    fromColumn: (m, v) => { if (v === null || v === undefined) delete m.status; else m.status = COLUMN_TO_STATUS[String(v)] ?? 'unknown'; },
  },
  dateField<MedicationRequest>('prescribed_date', 'authoredOn', { defaultToNow: true }),
  dateField<MedicationRequest>('start_date', 'dispenseRequest.validityPeriod.start'),
  dateField<MedicationRequest>('end_date', 'dispenseRequest.validityPeriod.end'),
  pathField<MedicationRequest>('pharmacy_notes', 'note.0.text', { maxBytes: TEXT_BYTES }),
];

/** The prescriptions columns a MedicationRequest implies. */
export function medicationRequestToRow(m: MedicationRequest, defaults: WriteDefaults = {}): Row {
  return columnsFromResource(medicationRequestFields, m, defaults);
}

/** The MedicationRequest a prescriptions row reads as, given the resource last written (none for native rows: intent order). */
export function medicationRequestFromRow(row: Row, kept?: MedicationRequest): MedicationRequest {
  const base: MedicationRequest = kept ? structuredClone(kept) : { resourceType: 'MedicationRequest', intent: 'order' };
  base.resourceType = 'MedicationRequest';
  base.id = String(row.id);
  const m = resourceFromColumns(medicationRequestFields, row, base);
  if (!kept) {
    // a native row's instructions may name the dose and frequency too: still give them structure
    if (row.dosage && !structuredDose(firstDosage(m))) doseField.fromColumn(m, row.dosage);
    if (row.frequency && !structuredFrequency(firstDosage(m))) frequencyField.fromColumn(m, row.frequency);
  }
  return m;
}
