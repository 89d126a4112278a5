/** MedicationRequest, over the prescriptions table. https://hl7.org/fhir/R4/medicationrequest.html */
import { defineResource } from '../registry.js';
import {
  RXNORM, doseOf, frequencyOf, medicationCodes, statesNoDosage, medicationName, medicationRequestFromRow, medicationRequestToRow, type MedicationRequest,
} from '../../mappers/medication-request-mapper.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import { unprocessable } from '../outcome.js';
import { ALL_INTERACTIONS, checkClinician, checkPatientSubject, clinicalReferences, codings, identifierParam, literalRefs, patientAndEncounterParams, statusParam } from './common.js';

const STATUS_SYSTEM = 'http://hl7.org/fhir/CodeSystem/medicationrequest-status';
const INTENT_SYSTEM = 'http://hl7.org/fhir/CodeSystem/medicationrequest-intent';

const DOSE_EXPRESSION = 'MedicationRequest.dosageInstruction[0].doseAndRate[0].doseQuantity';
const TIMING_EXPRESSION = 'MedicationRequest.dosageInstruction[0].timing';

/**
 * The prescription rule: a dosage that is stated needs a dose (amount + unit; a bare number is
 * that many doses) and a frequency in the documented grammar. A MedicationRequest that states no
 * dosage at all (no dose, timing or text: a medication history from another system) is accepted
 * and stored as 'not stated'.
 */
function checkDosage(m: MedicationRequest): void {
  if (statesNoDosage(m)) return;
  if (!doseOf(m)) {
    throw unprocessable(
      'A prescription needs a dose with an amount and a unit: dosageInstruction[0].doseAndRate[0].doseQuantity (value and unit), '
      + "a doseRange (low and high), or a dosageInstruction[0].text naming one, such as 'Take 1 tablet twice daily'",
      DOSE_EXPRESSION, 'business-rule');
  }
  if (!frequencyOf(m)) {
    throw unprocessable(
      'A prescription needs a frequency: dosageInstruction[0].timing.repeat (frequency, period and periodUnit), a timing.code such as BID, '
      + "or a dosageInstruction[0].text naming one, such as 'twice daily', 'q8h', 'every 6 hours', 'BID'",
      TIMING_EXPRESSION, 'business-rule');
  }
}

export const MedicationRequestDefinition = defineResource<MedicationRequest>({
  type: 'MedicationRequest',
  table: 'prescriptions',
  profile: 'http://hl7.org/fhir/StructureDefinition/MedicationRequest',
  description: 'Prescriptions: medication orders with dose, frequency and dispense details (prescriptions table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  toRow: (m, ctx) => medicationRequestToRow(m, { userId: ctx.userId, now: ctx.now }),
  fromRow: medicationRequestFromRow,
  check(m) {
    checkPatientSubject(m, 'MedicationRequest');
    if (!medicationName(m)) {
      throw unprocessable('MedicationRequest.medication[x] needs a text, a display or a code: it is the medication name', 'MedicationRequest.medication', 'required');
    }
    for (const c of m.medicationCodeableConcept?.coding ?? []) {
      if (c.system === RXNORM && !/^\d{1,10}$/.test(c.code ?? '')) {
        throw unprocessable(`RxNorm code '${c.code ?? ''}' is not an RxCUI (digits)`, 'MedicationRequest.medicationCodeableConcept.coding', 'code-invalid');
      }
    }
    checkDosage(m);
    checkRealDate(m.authoredOn, 'MedicationRequest.authoredOn');
    const validity = m.dispenseRequest?.validityPeriod;
    checkRealDate(validity?.start, 'MedicationRequest.dispenseRequest.validityPeriod.start');
    checkRealDate(validity?.end, 'MedicationRequest.dispenseRequest.validityPeriod.end');
    checkPeriod(validity?.start, validity?.end, 'MedicationRequest.dispenseRequest.validityPeriod');
    m.dosageInstruction?.forEach((d, i) => {
      const bounds = d.timing?.repeat?.boundsPeriod as { start?: string; end?: string } | undefined;
      checkPeriod(bounds?.start, bounds?.end, `MedicationRequest.dosageInstruction[${i}].timing.repeat.boundsPeriod`);
    });
  },
  async checkStored(m, ctx) {
    await checkClinician(m.requester, 'MedicationRequest.requester', ctx);
  },
  references: clinicalReferences('MedicationRequest', 'doctor_id', 'MedicationRequest.requester'),
  // isSummary in R4 (identifier, encounter, performer and recorder are not)
  summaryElements: [
    'status', 'intent', 'priority', 'doNotPerform', 'reportedBoolean', 'reportedReference', 'medicationCodeableConcept',
    'medicationReference', 'subject', 'authoredOn', 'requester', 'performerType',
    'instantiatesCanonical', 'instantiatesUri', 'basedOn', 'groupIdentifier',
  ],
  compartment: ['patient'],
  searchParams: [
    ...patientAndEncounterParams('MedicationRequest'),
    statusParam('MedicationRequest', STATUS_SYSTEM, 'The status as stated: active | on-hold | cancelled | completed | entered-in-error | stopped | draft | unknown', 'status',
      (code) => ({ active: ['active'], completed: ['completed'], cancelled: ['cancelled'], stopped: ['expired'] } as Record<string, string[]>)[code]),
    {
      name: 'intent', source: 'index', type: 'token', expression: 'MedicationRequest.intent',
      description: 'proposal | plan | order | original-order ...',
      extract: (r) => ((r as MedicationRequest).intent ? [{ system: INTENT_SYSTEM, code: (r as MedicationRequest).intent! }] : []),
    },
    {
      name: 'code', source: 'index', type: 'token', expression: 'MedicationRequest.medication.as(CodeableConcept)',
      description: 'A code of the medication (RxNorm, SNOMED CT ...), also of a contained Medication',
      extract: (r) => codings([medicationCodes(r as MedicationRequest)]),
    },
    {
      name: 'medication', source: 'index', type: 'reference', expression: 'MedicationRequest.medication.as(Reference)', targets: ['Medication'],
      description: 'A Medication resource (kept as sent; HMS does not store Medication)',
      extract: (r) => literalRefs([(r as MedicationRequest).medicationReference]),
    },
    identifierParam('MedicationRequest'),
    {
      name: 'authoredon', source: 'column', type: 'date', column: 'prescribed_date', dateKind: 'date', expression: 'MedicationRequest.authoredOn',
      description: 'The day the prescription was written (prescribed_date)', sort: ['prescribed_date'],
    },
    {
      name: 'requester', source: 'column', type: 'reference', column: 'doctor_id', targets: ['Practitioner'], expression: 'MedicationRequest.requester',
      description: 'The prescriber (doctor_id)', sort: ['doctor_id'],
    },
  ],
});
