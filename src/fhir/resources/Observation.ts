/**
 * Observation over the observations projection: vital signs are measurements of vitals rows,
 * every other Observation (laboratory, survey, social history ...) is a lab_results row.
 * https://hl7.org/fhir/R4/observation.html · docs/resources/Observation.md
 */
import { defineResource } from '../registry.js';
import { ALL_INTERACTIONS, codings, identifierParam, literalRefs, patientAndEncounterParams } from './common.js';
import { unprocessable } from '../outcome.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import type { Reference } from '../types.js';
import { columnsFromResource, resourceFromColumns, defaultsOfRow, type ColumnField, type Row } from '../../mappers/column-map.js';
import { dateTimeToSql, referenceId } from '../../mappers/datatypes.js';
import { pathField, referenceField } from '../../mappers/fields.js';
import {
  OBSERVATION_CATEGORY, categoryCode, effectiveStart, primaryCoding, type Observation,
} from '../../mappers/observation-mapper.js';
import {
  checkVital, measureByName, measureOf, nativeVitalsBase, overlayMeasure, vitalsMeasureColumns, vitalsProjection, vitalsSourceFields,
} from '../../mappers/vitals-mapper.js';
import { labProjection, labSourceFields, nativeLabBase } from '../../mappers/lab-result-mapper.js';
import { observationStorage } from '../../db/observation-storage.js';

/** Columns of the projection row itself (status is only stored here for vital signs). */
const projectionFields: ColumnField<Observation>[] = [
  pathField('status', 'status'),
  referenceField('patient_id', 'subject', 'Patient'),
  referenceField('visit_id', 'encounter', 'Encounter'),
];

/** The projection's and the source row's columns an Observation implies (source columns prefixed v_ / l_). */
export function observationToRow(o: Observation, defaults: { userId?: string; now?: string } = {}): Row {
  const measure = measureOf(o);
  const coding = primaryCoding(o.code);
  const common: Row = {
    ...columnsFromResource(projectionFields, o, defaults),
    category: categoryCode(o)?.slice(0, 64) ?? (measure ? 'vital-signs' : 'laboratory'),
    code_system: coding?.system?.slice(0, 255) ?? null,
    code: coding?.code?.slice(0, 64) ?? null,
    effective_at: dateTimeToSql(effectiveStart(o)) ?? null,
  };
  if (measure) {
    return {
      ...common, source: 'vitals', measure: measure.name, ...vitalsProjection(o),
      ...columnsFromResource(vitalsSourceFields(), o, defaults), ...vitalsMeasureColumns(o, measure),
    };
  }
  return { ...common, source: 'lab', measure: null, ...labProjection(o), ...columnsFromResource(labSourceFields, o, defaults) };
}

/** The Observation a projection row joined with its source row reads as, given the resource last written. */
export function observationFromRow(row: Row, kept?: Observation): Observation {
  const r: Row = { ...row };
  if (r.s_patient_id !== undefined && r.s_patient_id !== null) { r.patient_id = r.s_patient_id; r.visit_id = r.s_visit_id; }
  const defaults = defaultsOfRow(r);
  const measure = r.source === 'vitals' ? measureByName(String(r.measure)) : undefined;
  const o: Observation = kept ? structuredClone(kept) : measure ? nativeVitalsBase(measure) : nativeLabBase(r);
  o.resourceType = 'Observation';
  o.id = String(r.id);
  resourceFromColumns(projectionFields, r, o, defaults);
  if (!measure) return resourceFromColumns(labSourceFields, r, o, defaults);
  resourceFromColumns(vitalsSourceFields(), r, o, defaults);
  overlayMeasure(o, measure, r, !kept);
  return o;
}

const refs = (list: Reference[] | undefined): string[] => literalRefs(list ?? []);
const obs = (r: unknown): Observation => r as Observation;

export const ObservationDefinition = defineResource<Observation>({
  type: 'Observation',
  table: 'observations',
  profile: 'http://hl7.org/fhir/StructureDefinition/Observation',
  description: 'Vital signs (vitals table, one Observation per measurement) and laboratory results (lab_results table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  subsets: {
    // nurses write vital signs: measurements of vitals rows (docs/resources/Observation.md lists them)
    'vital-signs': { description: 'vital-sign Observations', resource: (o) => measureOf(o) !== undefined, row: (row) => row.source === 'vitals' },
  },
  storage: observationStorage,
  toRow: (o, ctx) => observationToRow(o, { userId: ctx.userId, now: ctx.now }),
  fromRow: observationFromRow,
  check(o) {
    if (!referenceId(o.subject, 'Patient')) {
      throw unprocessable('Observation.subject must refer to a Patient of this server (Patient/<id>)', 'Observation.subject', 'required');
    }
    checkRealDate(o.effectiveDateTime, 'Observation.effectiveDateTime');
    checkRealDate(o.effectivePeriod?.start, 'Observation.effectivePeriod.start');
    checkRealDate(o.effectivePeriod?.end, 'Observation.effectivePeriod.end');
    checkPeriod(o.effectivePeriod?.start, o.effectivePeriod?.end, 'Observation.effectivePeriod');
    const measure = measureOf(o);
    if (!measure) return;
    const problem = checkVital(o, measure);
    if (problem) throw unprocessable(problem.message, problem.expression, 'business-rule');
    const at = dateTimeToSql(effectiveStart(o));
    // vitals.recorded_at is a TIMESTAMP (1970-2038 on MySQL)
    if (at && (at < '1970-01-02' || at >= '2038-01-19')) {
      throw unprocessable(`Observation.effective: a vital sign must be dated between 1970 and 2038, not ${effectiveStart(o)}`, 'Observation.effective', 'business-rule');
    }
  },
  references: [
    { column: 'patient_id', expression: 'Observation.subject', targetType: 'Patient', table: 'patients', softDelete: true },
    { column: 'visit_id', expression: 'Observation.encounter', targetType: 'Encounter', table: 'visits', softDelete: false },
    { column: 'v_recorded_by', expression: 'Observation.performer', targetType: 'Practitioner', table: 'users', softDelete: true, requiredUser: true },
    { column: 'l_ordered_by', expression: 'Observation.performer', targetType: 'Practitioner', table: 'users', softDelete: true, requiredUser: true },
  ],
  // isSummary in R4 (category and dataAbsentReason are not; component is, so blood pressure keeps its values)
  summaryElements: [
    'identifier', 'basedOn', 'partOf', 'status', 'code', 'subject', 'focus', 'encounter', 'effectiveDateTime', 'effectivePeriod',
    'effectiveTiming', 'effectiveInstant', 'issued', 'performer', 'valueQuantity', 'valueCodeableConcept', 'valueString', 'valueBoolean',
    'valueInteger', 'valueRange', 'valueRatio', 'valueSampledData', 'valueTime', 'valueDateTime', 'valuePeriod',
    'hasMember', 'derivedFrom', 'component',
  ],
  // the R4 Patient CompartmentDefinition's parameters HMS can search (OR-ed by Patient/$everything)
  compartment: ['patient', 'performer'],
  searchParams: [
    ...patientAndEncounterParams('Observation'),
    {
      name: 'category', source: 'column', type: 'token', column: 'category', expression: 'Observation.category',
      description: 'The category (vital-signs, laboratory, survey ...)', sort: ['category'],
      tokenToColumn: (system, code) => (system && system !== OBSERVATION_CATEGORY ? undefined : [code]),
    },
    {
      name: 'code', source: 'index', type: 'token', expression: 'Observation.code',
      description: 'Any coding of the code (system|code)', sort: ['code'], extract: (r) => codings([obs(r).code]),
    },
    {
      name: 'component-code', source: 'index', type: 'token', expression: 'Observation.component.code',
      description: 'Any coding of a component code', extract: (r) => (obs(r).component ?? []).flatMap((c) => codings([c.code])),
    },
    {
      name: 'combo-code', source: 'index', type: 'token', expression: 'Observation.code | Observation.component.code',
      description: 'Any coding of the code or of a component code',
      extract: (r) => [...codings([obs(r).code]), ...(obs(r).component ?? []).flatMap((c) => codings([c.code]))],
    },
    {
      name: 'date', source: 'column', type: 'date', column: 'effective_at', dateKind: 'timestamp',
      expression: 'Observation.effective', description: 'When the observation was made (start of effective[x])', sort: ['effective_at'],
    },
    {
      name: 'status', source: 'column', type: 'token', column: 'status', expression: 'Observation.status',
      description: 'registered | preliminary | final | amended | ...',
      tokenToColumn: (system, code) => (system && system !== 'http://hl7.org/fhir/observation-status' ? undefined : [code]),
    },
    {
      name: 'value-quantity', source: 'column', type: 'quantity', column: 'value_quantity', unitColumn: 'unit',
      expression: 'Observation.value as Quantity', description: 'The quantity value (prefixes; units as UCUM codes, not converted)', sort: ['value_quantity'],
    },
    identifierParam('Observation'),
    {
      name: 'performer', source: 'index', type: 'reference', expression: 'Observation.performer', targets: ['Practitioner', 'PractitionerRole', 'Organization', 'Patient', 'RelatedPerson', 'CareTeam'],
      description: 'Who performed the observation (as sent)', extract: (r) => refs(obs(r).performer),
    },
    {
      name: 'based-on', source: 'index', type: 'reference', expression: 'Observation.basedOn', targets: ['ServiceRequest', 'CarePlan', 'MedicationRequest', 'DeviceRequest', 'ImmunizationRecommendation', 'NutritionOrder'],
      description: 'The order the observation fulfils (as sent)', extract: (r) => refs((r as { basedOn?: Reference[] }).basedOn),
    },
    {
      name: 'has-member', source: 'index', type: 'reference', expression: 'Observation.hasMember', targets: ['Observation', 'QuestionnaireResponse', 'MolecularSequence'],
      description: 'A member of a panel', extract: (r) => refs(obs(r).hasMember),
    },
  ],
});
