/**
 * Encounter <-> visits row. https://hl7.org/fhir/R4/encounter.html
 * See docs/resources/Encounter.md for the element <-> column table. Pure, no I/O.
 */
import type { CodeableConcept, Coding, Extension, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, TEXT_BYTES, type ColumnField, type Row } from './column-map.js';
import { HMS_CANONICAL, hmsExtensionUrl } from './datatypes.js';
import { referenceField } from './fields.js';
import { conceptTextField, instantFields, participantField, readRow, statusField } from './appointment-mapper.js';

export interface Encounter extends Resource {
  resourceType: 'Encounter';
  status?: string;
  class?: Coding;
  type?: CodeableConcept[];
  subject?: Reference;
  participant?: { individual?: Reference; [k: string]: unknown }[];
  appointment?: Reference[];
  period?: { start?: string; end?: string };
  reasonCode?: CodeableConcept[];
  extension?: Extension[];
}

export const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const HMS_VISIT_TYPE = `${HMS_CANONICAL}/CodeSystem/visit-type`;
export const VISIT_TYPES = ['routine', 'emergency', 'follow_up', 'consultation', 'surgery'] as const;
const VISIT_TYPE_DISPLAY: Record<string, string> = {
  routine: 'Routine visit', emergency: 'Emergency visit', follow_up: 'Follow-up visit', consultation: 'Consultation', surgery: 'Surgery',
};

/** The clinical text columns, each an HMS extension (valueString or valueMarkdown). */
export const ENCOUNTER_TEXT_EXTENSIONS: Record<string, string> = {
  history_present_illness: hmsExtensionUrl('encounter-history-present-illness'),
  physical_examination: hmsExtensionUrl('encounter-physical-examination'),
  assessment: hmsExtensionUrl('encounter-assessment'),
  plan: hmsExtensionUrl('encounter-plan'),
  notes: hmsExtensionUrl('encounter-notes'),
  discharge_instructions: hmsExtensionUrl('encounter-discharge-instructions'),
  follow_up_instructions: hmsExtensionUrl('encounter-follow-up-instructions'),
};

export const ENCOUNTER_STATUS_FROM_COLUMN: Record<string, string> = { in_progress: 'in-progress', completed: 'finished', cancelled: 'cancelled' };
export const ENCOUNTER_STATUS_TO_COLUMN: Record<string, string> = {
  planned: 'in_progress', arrived: 'in_progress', triaged: 'in_progress', 'in-progress': 'in_progress', onleave: 'in_progress', unknown: 'in_progress',
  finished: 'completed', cancelled: 'cancelled', 'entered-in-error': 'cancelled',
};

const hmsVisitType = (e: Encounter): Coding | undefined =>
  e.type?.flatMap((t) => t.coding ?? []).find((c) => c.system === HMS_VISIT_TYPE && VISIT_TYPES.includes(c.code as never));

/** visits.visit_type: an HMS visit-type coding in type, else emergency for class EMER, else routine. */
export function visitTypeOf(e: Encounter): string {
  return hmsVisitType(e)?.code ?? (e.class?.code === 'EMER' ? 'emergency' : 'routine');
}

/** A text column mirrored by an extension holding valueString or valueMarkdown (kept as the client chose). */
function textExtensionField(column: string, url: string): ColumnField<Encounter> {
  const find = (e: Encounter): Extension | undefined => e.extension?.find((x) => x.url === url);
  return {
    column, path: `Encounter.extension('${url}')`, maxBytes: TEXT_BYTES,
    toColumn: (e) => { const x = find(e); return (x?.valueString ?? x?.valueMarkdown) as string | undefined; },
    fromColumn: (e, v) => {
      const x = find(e);
      if (v === null || v === undefined || v === '') {
        e.extension = (e.extension ?? []).filter((y) => y !== x);
        if (!e.extension.length) delete e.extension;
      } else if (x) {
        const kind = x.valueMarkdown !== undefined ? 'valueMarkdown' : 'valueString';
        for (const k of Object.keys(x)) if (k.startsWith('value')) delete x[k];
        x[kind] = String(v);
      } else (e.extension ??= []).push({ url, valueString: String(v) });
    },
  };
}

export const encounterFields: ColumnField<Encounter>[] = [
  referenceField<Encounter>('patient_id', 'subject', 'Patient'),
  participantField<Encounter>('doctor_id', 'individual', 'Practitioner', 'Encounter.participant.individual', { defaultToUser: true }),
  referenceField<Encounter>('appointment_id', 'appointment.0', 'Appointment'),
  ...instantFields<Encounter>('visit_date', 'visit_time', 'period.start', 'Encounter.period.start', { defaultToNow: true }),
  {
    column: 'visit_type', path: 'Encounter.type',
    toColumn: visitTypeOf,
    fromColumn: (e, v) => {
      const code = VISIT_TYPES.includes(String(v) as never) ? String(v) : 'routine';
      const coding = hmsVisitType(e);
      if (coding) { coding.code = code; coding.display = VISIT_TYPE_DISPLAY[code]; }
      else (e.type ??= []).push({ coding: [{ system: HMS_VISIT_TYPE, code, display: VISIT_TYPE_DISPLAY[code] }] });
      if (code === 'emergency' && e.class?.code !== 'EMER') e.class = { system: V3_ACT_CODE, code: 'EMER', display: 'emergency' };
      if (code !== 'emergency' && (!e.class || e.class.code === 'EMER')) e.class = { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' };
    },
  },
  conceptTextField<Encounter>('chief_complaint', 'reasonCode.0', 'Encounter.reasonCode[0].text'),
  ...Object.entries(ENCOUNTER_TEXT_EXTENSIONS).map(([column, url]) => textExtensionField(column, url)),
  statusField<Encounter>('status', 'Encounter.status', ENCOUNTER_STATUS_FROM_COLUMN, ENCOUNTER_STATUS_TO_COLUMN, 'in_progress'),
];

/** The visits columns an Encounter implies. */
export function encounterToRow(e: Encounter, ctx: { userId?: string; now?: string } = {}): Row {
  return columnsFromResource(encounterFields, e, { userId: ctx.userId, now: ctx.now });
}

/** The Encounter a visits row reads as, given the resource last written (if any). */
export function encounterFromRow(row: Row, kept?: Encounter): Encounter {
  return readRow(encounterFields, row, kept, { resourceType: 'Encounter' });
}
