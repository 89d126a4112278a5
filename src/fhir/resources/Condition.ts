/** Condition, over the medical_conditions table. https://hl7.org/fhir/R4/condition.html */
import { defineResource, type ColumnSearchParam, type IndexSearchParam, type ReferenceCheck, type StoreCheckContext, type TokenValue } from '../registry.js';
import {
  CLINICAL_TO_STATUS, CONDITION_CLINICAL, SEVERITY, SNOMED, conceptName, conditionFromRow, conditionToRow, type Condition,
} from '../../mappers/condition-mapper.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import { unprocessable } from '../outcome.js';
import type { CodeableConcept, Reference, Resource } from '../types.js';
import { referenceId } from '../../mappers/datatypes.js';

// ---------------------------------------------------------------- shared with MedicationRequest

/** A subject that is a literal Patient reference (the patient_id column is NOT NULL). */
export function checkPatientSubject(r: { subject?: Reference }, type: string): void {
  if (!referenceId(r.subject, 'Patient')) {
    throw unprocessable(`${type}.subject must refer to a Patient of this server (Patient/<id>)`, `${type}.subject`, 'required');
  }
}

/** An explicit Practitioner reference (not the writing user's default) must name a doctor or nurse. */
export async function checkClinician(ref: Reference | undefined, expression: string, ctx: StoreCheckContext): Promise<void> {
  const id = referenceId(ref, 'Practitioner');
  if (!id) return;
  const row = await ctx.trx('users').where({ id }).whereIn('role', ['doctor', 'nurse']).whereNull('deleted_at').first('id');
  if (!row) throw unprocessable(`${expression} refers to Practitioner/${id}, which is not a doctor or nurse of this server`, expression, 'not-found');
}

/** Every coding of concepts as tokens. */
export const codings = (concepts: (CodeableConcept | undefined)[]): TokenValue[] =>
  concepts.flatMap((c) => c?.coding ?? []).filter((c) => c.code).map((c) => ({ system: c.system, code: c.code! }));

/** Identifier tokens (system|value). */
export const identifiers = (r: Resource): TokenValue[] =>
  ((r.identifier as { system?: string; value?: string }[] | undefined) ?? []).filter((i) => i.value).map((i) => ({ system: i.system, code: i.value! }));

/** Literal references ("Type/id") among some references. */
export const literalRefs = (refs: (Reference | undefined)[]): string[] =>
  refs.map((x) => x?.reference).filter((x): x is string => !!x && /^[A-Za-z]+\/[^/]+$/.test(x));

/** The column parameters every clinical type has: patient, subject and encounter over patient_id / visit_id. */
export function patientAndEncounterParams(type: string, encounterExpression = `${type}.encounter`): ColumnSearchParam[] {
  return [
    {
      name: 'patient', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'],
      expression: `${type}.subject.where(resolve() is Patient)`, description: 'The patient', sort: ['patient_id'],
    },
    {
      name: 'subject', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'],
      expression: `${type}.subject`, description: 'The subject (always a Patient here)', sort: ['patient_id'],
    },
    {
      name: 'encounter', source: 'column', type: 'reference', column: 'visit_id', targets: ['Encounter'],
      expression: encounterExpression, description: 'The encounter (visit)',
    },
  ];
}

/** The reference checks of patient_id, visit_id and a users column. */
export function clinicalReferences(type: string, userColumn: string, userExpression: string): ReferenceCheck[] {
  return [
    { column: 'patient_id', expression: `${type}.subject`, targetType: 'Patient', table: 'patients', softDelete: true },
    { column: 'visit_id', expression: `${type}.encounter`, targetType: 'Encounter', table: 'visits', softDelete: false },
    // the writing user stands in when the resource names nobody; an explicit reference is checked in checkStored
    { column: userColumn, expression: userExpression, targetType: 'Practitioner', table: 'users', softDelete: true },
  ];
}

// ---------------------------------------------------------------- Condition

const SEVERITY_BY_CODE = Object.fromEntries(Object.entries(SEVERITY).map(([col, s]) => [s.code, col]));
const simpleToken = (c: CodeableConcept | undefined): TokenValue[] => codings([c]);

const indexToken = (name: string, expression: string, description: string, extract: (c: Condition) => TokenValue[]): IndexSearchParam =>
  ({ name, source: 'index', type: 'token', expression, description, extract: (r) => extract(r as Condition) });

export const ConditionDefinition = defineResource<Condition>({
  type: 'Condition',
  table: 'medical_conditions',
  profile: 'http://hl7.org/fhir/StructureDefinition/Condition',
  description: 'Diagnoses and problems of a patient, coded in ICD-10-CM (medical_conditions table)',
  interactions: ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type'],
  softDelete: false,
  toRow: (c, ctx) => conditionToRow(c, { userId: ctx.userId, now: ctx.now }),
  fromRow: conditionFromRow,
  check(c) {
    checkPatientSubject(c, 'Condition');
    if (!conceptName(c.code)) {
      throw unprocessable('Condition.code needs a text, a display or a code: it is the condition name', 'Condition.code', 'required');
    }
    for (const k of ['onsetDateTime', 'abatementDateTime', 'recordedDate'] as const) checkRealDate(c[k], `Condition.${k}`);
    checkRealDate(c.onsetPeriod?.start, 'Condition.onsetPeriod.start');
    checkRealDate(c.onsetPeriod?.end, 'Condition.onsetPeriod.end');
    checkPeriod(c.onsetPeriod?.start, c.onsetPeriod?.end, 'Condition.onsetPeriod');
    checkPeriod(c.abatementPeriod?.start, c.abatementPeriod?.end, 'Condition.abatementPeriod');
    const onset = c.onsetDateTime ?? c.onsetPeriod?.start;
    const abatement = c.abatementDateTime ?? c.abatementPeriod?.end ?? c.abatementPeriod?.start;
    if (onset && abatement) checkPeriod(onset, abatement, c.abatementDateTime ? 'Condition.abatementDateTime' : 'Condition.abatementPeriod');
  },
  async checkStored(c, ctx) {
    await checkClinician(c.recorder, 'Condition.recorder', ctx);
    if (!referenceId(c.recorder, 'Practitioner')) await checkClinician(c.asserter, 'Condition.asserter', ctx);
  },
  references: clinicalReferences('Condition', 'diagnosed_by', 'Condition.recorder'),
  summaryElements: [
    'identifier', 'clinicalStatus', 'verificationStatus', 'code', 'bodySite', 'subject', 'encounter',
    'onsetDateTime', 'onsetAge', 'onsetPeriod', 'onsetRange', 'onsetString',
    'abatementDateTime', 'abatementAge', 'abatementPeriod', 'abatementRange', 'abatementString', 'recordedDate', 'recorder', 'asserter',
  ],
  compartment: ['patient'],
  searchParams: [
    ...patientAndEncounterParams('Condition'),
    indexToken('code', 'Condition.code', 'A code of the condition (ICD-10-CM, SNOMED CT ...)', (c) => simpleToken(c.code)),
    indexToken('identifier', 'Condition.identifier', 'A business identifier (system|value)', identifiers),
    indexToken('category', 'Condition.category', 'A category (problem-list-item, encounter-diagnosis ...)', (c) => codings((c.category as CodeableConcept[] | undefined) ?? [])),
    indexToken('verification-status', 'Condition.verificationStatus', 'confirmed | provisional | differential | refuted ...', (c) => simpleToken(c.verificationStatus)),
    {
      name: 'clinical-status', source: 'column', type: 'token', column: 'status', expression: 'Condition.clinicalStatus',
      description: 'active (incl. chronic) | resolved | remission | inactive (resolved or remission), from the status column',
      sort: ['CAST(t.status AS CHAR)'],
      tokenToColumn: (system, code) => {
        if (system && system !== CONDITION_CLINICAL) return undefined;
        if (code === 'inactive') return ['resolved', 'in_remission'];
        if (code === 'active') return ['active', 'chronic'];
        if (code === 'recurrence' || code === 'relapse') return undefined; // stored as active: not distinguishable
        return CLINICAL_TO_STATUS[code] ? [CLINICAL_TO_STATUS[code]] : undefined;
      },
    },
    {
      name: 'severity', source: 'column', type: 'token', column: 'severity', expression: 'Condition.severity',
      description: `SNOMED CT severity: ${Object.entries(SEVERITY).map(([k, s]) => `${s.code} (${k})`).join(', ')}`,
      tokenToColumn: (system, code) => {
        if (system && system !== SNOMED) return undefined;
        return SEVERITY_BY_CODE[code] ? [SEVERITY_BY_CODE[code]] : undefined;
      },
    },
    {
      name: 'onset-date', source: 'column', type: 'date', column: 'diagnosis_date', dateKind: 'date', expression: 'Condition.onset.as(dateTime)',
      description: 'The diagnosis date: onsetDateTime, else recordedDate, else the day it was written', sort: ['diagnosis_date'],
    },
    {
      name: 'recorded-date', source: 'column', type: 'date', column: 'recorded_date', dateKind: 'date', expression: 'Condition.recordedDate',
      description: 'The day the condition was recorded', sort: ['recorded_date'],
    },
    {
      name: 'asserter', source: 'index', type: 'reference', expression: 'Condition.asserter', targets: ['Practitioner', 'Patient', 'RelatedPerson', 'PractitionerRole'],
      description: 'Who asserts the condition', extract: (r) => literalRefs([(r as Condition).asserter]),
    },
    {
      name: 'recorder', source: 'column', type: 'reference', column: 'diagnosed_by', targets: ['Practitioner'], expression: 'Condition.recorder',
      definition: 'http://hms.example.org/fhir/SearchParameter/Condition-recorder',
      description: 'Who diagnosed the condition (diagnosed_by: the recorder, else the asserter, else the writing user)',
    },
  ],
});
