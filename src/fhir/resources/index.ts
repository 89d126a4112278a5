/**
 * Importing this module registers every exposed resource type: the table-backed ones (the seed
 * tables), then every other R4 type in the generic store.
 */
import { defineResource, resourceDefinition } from '../registry.js';
import { genericDefinitions } from '../generic/generic-types.js';
import { answerCreatedRequest } from '../operations/eligibility.js';
import { HMS_CANONICAL } from '../../mappers/datatypes.js';

export { PatientDefinition } from './Patient.js';
export { PractitionerDefinition } from './Practitioner.js';
export { PractitionerRoleDefinition } from './PractitionerRole.js';
export { AppointmentDefinition } from './Appointment.js';
export { EncounterDefinition } from './Encounter.js';
export { ObservationDefinition } from './Observation.js';
export { ServiceRequestDefinition } from './ServiceRequest.js';
export { DiagnosticReportDefinition } from './DiagnosticReport.js';
export { ConditionDefinition } from './Condition.js';
export { MedicationRequestDefinition } from './MedicationRequest.js';
export { InvoiceDefinition } from './Invoice.js';
export { CoverageDefinition } from './Coverage.js';
export { CareTeamDefinition } from './CareTeam.js';
export { AuditEventDefinition } from './AuditEvent.js';

/** Types served by routes of their own (src/api/routes/metadata.ts: the search parameters HMS defines, read-only). */
const SERVED_APART = new Set(['SearchParameter']);

// after the table-backed types: a type with a table of its own never goes to the generic store
for (const def of genericDefinitions((type) => resourceDefinition(type) !== undefined || SERVED_APART.has(type))) defineResource(def);

// a CoverageEligibilityRequest is answered as it is stored, in its transaction (docs/eligibility.md)
const eligibility = resourceDefinition('CoverageEligibilityRequest');
if (eligibility) {
  eligibility.afterWrite = answerCreatedRequest;
  eligibility.operations = [{ name: 'submit', definition: `${HMS_CANONICAL}/OperationDefinition/CoverageEligibilityRequest-submit` }];
}
