/** Encounter, over the visits table. https://hl7.org/fhir/R4/encounter.html */
import { defineResource } from '../registry.js';
import { ALL_INTERACTIONS, codings, identifierParam, literalRefs, patientParams, statusParam } from './common.js';
import {
  encounterFromRow, encounterToRow, HMS_VISIT_TYPE, visitTypeOf, type Encounter, ENCOUNTER_STATUS_TO_COLUMN, ENCOUNTER_TEXT_EXTENSIONS,
} from '../../mappers/encounter-mapper.js';
import { referenceId } from '../../mappers/datatypes.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import { unprocessable } from '../outcome.js';
import { keepElements } from '../views.js';


export const EncounterDefinition = defineResource<Encounter>({
  type: 'Encounter',
  table: 'visits',
  profile: 'http://hl7.org/fhir/StructureDefinition/Encounter',
  description: 'A visit of a patient: the clinical encounter and its notes (visits table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  assigns: true,
  views: {
    // finance: the visit without its clinical content (reasons, diagnoses, hospitalization, the clinical text extensions, narrative)
    administrative: keepElements<Encounter>([
      'identifier', 'status', 'statusHistory', 'class', 'classHistory', 'type', 'serviceType', 'priority', 'subject', 'episodeOfCare',
      'basedOn', 'participant', 'appointment', 'period', 'length', 'account', 'location', 'serviceProvider', 'partOf',
    ]),
  },
  elementGroups: {
    // nurses write the basic notes of a visit (visits.notes) and nothing else of it
    notes: {
      description: 'the basic notes (extension encounter-notes)',
      without: (e) => {
        const extension = (e.extension ?? []).filter((x) => x.url !== ENCOUNTER_TEXT_EXTENSIONS.notes);
        const { extension: _x, ...rest } = e;
        return (extension.length ? { ...rest, extension } : rest) as Encounter;
      },
    },
  },
  toRow: (e, ctx) => encounterToRow(e, ctx),
  fromRow: encounterFromRow,
  check(e) {
    if (!referenceId(e.subject, 'Patient')) throw unprocessable('An encounter needs a subject that is a Patient', 'Encounter.subject', 'required');
    checkRealDate(e.period?.start, 'Encounter.period.start');
    checkRealDate(e.period?.end, 'Encounter.period.end');
    checkPeriod(e.period?.start, e.period?.end, 'Encounter.period');
  },
  async checkStored(e, ctx) {
    const doctor = ctx.columns.doctor_id;
    if (doctor === null || doctor === undefined) {
      throw unprocessable('An encounter needs a Practitioner participant (none given, and no user to default to)', 'Encounter.participant', 'required');
    }
    // a participant the client named must be a clinician (the writing user, when defaulted, may be any user)
    const named = (e.participant ?? []).some((p) => referenceId(p.individual, 'Practitioner'));
    if (named) {
      if (!(await ctx.isClinician(String(doctor)))) {
        throw unprocessable(`Encounter.participant.individual refers to Practitioner/${String(doctor)}, which does not exist or is not a Practitioner`, 'Encounter.participant.individual', 'not-found');
      }
    }
  },
  references: [
    { column: 'patient_id', expression: 'Encounter.subject', targetType: 'Patient', table: 'patients', softDelete: true },
    { column: 'doctor_id', expression: 'Encounter.participant.individual', targetType: 'Practitioner', table: 'users', softDelete: true },
    { column: 'appointment_id', expression: 'Encounter.appointment', targetType: 'Appointment', table: 'appointments', softDelete: false },
  ],
  // isSummary in R4
  summaryElements: [
    'identifier', 'status', 'class', 'type', 'serviceType', 'subject', 'episodeOfCare', 'participant', 'appointment',
    'reasonCode', 'reasonReference', 'diagnosis',
  ],
  compartment: ['patient'],
  searchParams: [
    identifierParam('Encounter'),
    ...patientParams('Encounter'),
    {
      name: 'practitioner', source: 'column', type: 'reference', column: 'doctor_id', targets: ['Practitioner'],
      expression: 'Encounter.participant.individual.where(resolve() is Practitioner).first()',
      // R4's practitioner matches every Practitioner participant; doctor_id holds the first one only
      definition: 'http://hms.example.org/fhir/SearchParameter/Encounter-practitioner',
      description: 'The doctor of the visit (doctor_id: the first Practitioner participant only; `participant` finds the others)',
    },
    {
      name: 'participant', source: 'index', type: 'reference', expression: 'Encounter.participant.individual',
      targets: ['Practitioner', 'PractitionerRole', 'RelatedPerson'], description: 'Any participant individual (written through the API)',
      extract: (r) => literalRefs(((r as Encounter).participant ?? []).map((p) => p.individual)),
    },
    {
      name: 'appointment', source: 'column', type: 'reference', column: 'appointment_id', targets: ['Appointment'],
      expression: 'Encounter.appointment', description: 'The appointment the visit was booked as',
    },
    {
      name: 'date', source: 'column', type: 'date', column: 'visit_date', dateKind: 'timestamp',
      sql: { mysql: 'TIMESTAMP(t.visit_date, t.visit_time)', sqlite: "(t.visit_date || ' ' || t.visit_time)" },
      // R4's date compares the whole period; the visit stores its start only
      expression: 'Encounter.period.start', definition: 'http://hms.example.org/fhir/SearchParameter/Encounter-date',
      description: 'When the encounter started (period.start as a point in time, UTC, to the second; period.end is not compared)', sort: ['visit_date', 'visit_time'],
    },
    statusParam('Encounter', 'http://hl7.org/fhir/encounter-status', 'The status as stated: planned | arrived | triaged | in-progress | onleave | finished | cancelled | entered-in-error | unknown', 'status',
      (code) => (ENCOUNTER_STATUS_TO_COLUMN[code] ? [ENCOUNTER_STATUS_TO_COLUMN[code]] : undefined)),
    {
      name: 'class', source: 'index', type: 'token', expression: 'Encounter.class', description: 'The class (v3 ActCode AMB, EMER, IMP, HH ...)',
      extract: (r) => { const c = (r as Encounter).class; return c?.code ? [{ system: c.system, code: c.code }] : []; },
    },
    {
      name: 'type', source: 'index', type: 'token', expression: 'Encounter.type',
      description: `Any type coding, and the HMS visit type (${HMS_VISIT_TYPE}) the visit is stored as`,
      extract: (r) => {
        const e = r as Encounter;
        return [...codings(e.type ?? []), { system: HMS_VISIT_TYPE, code: visitTypeOf(e) }];
      },
    },
  ],
});
