/** Condition, over the medical_conditions table. https://hl7.org/fhir/R4/condition.html */
import { defineResource, type IndexSearchParam, type TokenValue } from '../registry.js';
import {
  CLINICAL_TO_STATUS, CONDITION_CLINICAL, SEVERITY, SNOMED, conceptName, conditionFromRow, conditionToRow, type Condition,
} from '../../mappers/condition-mapper.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import { unprocessable } from '../outcome.js';
import type { CodeableConcept } from '../types.js';
import { referenceId } from '../../mappers/datatypes.js';
import { ALL_INTERACTIONS, checkClinician, checkPatientSubject, clinicalReferences, codings, identifierParam, literalRefs, patientAndEncounterParams, statusParam } from './common.js';

const SEVERITY_BY_CODE = Object.fromEntries(Object.entries(SEVERITY).map(([col, s]) => [s.code, col]));
const simpleToken = (c: CodeableConcept | undefined): TokenValue[] => codings([c]);

const indexToken = (name: string, expression: string, description: string, extract: (c: Condition) => TokenValue[]): IndexSearchParam =>
  ({ name, source: 'index', type: 'token', expression, description, extract: (r) => extract(r as Condition) });

export const ConditionDefinition = defineResource<Condition>({
  type: 'Condition',
  table: 'medical_conditions',
  profile: 'http://hl7.org/fhir/StructureDefinition/Condition',
  description: 'Diagnoses and problems of a patient, coded in ICD-10-CM (medical_conditions table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
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
  // isSummary in R4 (abatement[x] is not)
  summaryElements: [
    'identifier', 'clinicalStatus', 'verificationStatus', 'code', 'bodySite', 'subject', 'encounter',
    'onsetDateTime', 'onsetAge', 'onsetPeriod', 'onsetRange', 'onsetString', 'recordedDate', 'recorder', 'asserter',
  ],
  // the R4 Patient CompartmentDefinition's parameters HMS can search (OR-ed by Patient/$everything)
  compartment: ['patient', 'asserter'],
  searchParams: [
    ...patientAndEncounterParams('Condition'),
    indexToken('code', 'Condition.code', 'A code of the condition (ICD-10-CM, SNOMED CT ...)', (c) => simpleToken(c.code)),
    identifierParam('Condition'),
    indexToken('category', 'Condition.category', 'A category (problem-list-item, encounter-diagnosis ...)', (c) => codings((c.category as CodeableConcept[] | undefined) ?? [])),
    indexToken('verification-status', 'Condition.verificationStatus', 'confirmed | provisional | differential | refuted ...', (c) => simpleToken(c.verificationStatus)),
    statusParam('Condition', CONDITION_CLINICAL, 'The clinical status as stated: active | recurrence | relapse | inactive | remission | resolved', 'status',
      (code) => (code === 'inactive' ? ['resolved', 'in_remission'] : code === 'active' ? ['active', 'chronic'] : CLINICAL_TO_STATUS[code] ? [CLINICAL_TO_STATUS[code]] : undefined),
      'clinical-status', 'clinicalStatus'),
    {
      name: 'severity', source: 'column', type: 'token', column: 'severity', expression: 'Condition.severity',
      description: `SNOMED CT severity: ${Object.entries(SEVERITY).map(([k, s]) => `${s.code} (${k})`).join(', ')}`,
      tokenToColumn: (system, code) => {
        if (system && system !== SNOMED) return undefined;
        return SEVERITY_BY_CODE[code] ? [SEVERITY_BY_CODE[code]] : undefined;
      },
    },
    {
      // not R4's onset-date (onsetDateTime or onsetPeriod as a range): the diagnosis_date column, one day
      name: 'onset-date', source: 'column', type: 'date', column: 'diagnosis_date', dateKind: 'date',
      expression: 'iif(Condition.onset is dateTime, Condition.onset, Condition.recordedDate)',
      definition: 'http://hms.example.org/fhir/SearchParameter/Condition-onset-date',
      description: 'The diagnosis date (diagnosis_date, one day): the day of onsetDateTime, else of recordedDate, else the day (UTC) of the write '
        + 'that stated neither; onsetPeriod, onsetAge, onsetRange and onsetString are not matched',
      sort: ['diagnosis_date'],
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
