/** Importing this module registers every exposed resource type. */
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
