/**
 * AuditEvent, over security_logs: read and search only. https://hl7.org/fhir/R4/auditevent.html
 * The log is written by the server itself (append-only, hash-chained: docs/audit-log.md); create,
 * update and delete answer 405. docs/resources/AuditEvent.md
 */
import { defineResource, type ColumnSearchParam } from '../registry.js';
import {
  ACTION_SQL, AUDIT_ACTION_SYSTEM, AUDIT_ROLE_SYSTEM, AUDIT_TYPE_SYSTEM, auditEventFromRow, CLIENT_ID_SYSTEM, DICOM_SYSTEM, OUTCOME_SQL, TYPE_SQL,
  type AuditEvent,
} from '../../mappers/audit-event-mapper.js';
import { HMS_CANONICAL } from '../../mappers/datatypes.js';
import { FhirError } from '../outcome.js';
import { disclosureView } from '../views.js';

/** Types a security_logs row may name (entity=<bare id> matches any of them). */
const ENTITY_TYPES = [
  'Patient', 'Practitioner', 'PractitionerRole', 'Appointment', 'Encounter', 'Condition', 'MedicationRequest', 'Observation',
  'DiagnosticReport', 'ServiceRequest', 'Invoice', 'Coverage', 'AuditEvent', 'Bundle', 'Binary',
];

/** A token over an SQL expression of the row: matches codes of `system` (or given without system). */
const tokenParam = (name: string, expression: string, description: string, sql: string, systems: string[]): ColumnSearchParam => ({
  name, source: 'column', type: 'token', column: 'action', sql: { mysql: sql, sqlite: sql }, expression, description,
  tokenToColumn: (system, code) => (system && !systems.includes(system) ? undefined : [code]),
});

export const AuditEventDefinition = defineResource<AuditEvent>({
  type: 'AuditEvent',
  table: 'security_logs',
  profile: 'http://hl7.org/fhir/StructureDefinition/AuditEvent',
  description: 'The security log: every access to patient data, login and refusal (security_logs table, read-only)',
  interactions: ['read', 'search-type'],
  softDelete: false,
  versioned: false,
  kept: false,
  updatedColumn: 'timestamp',
  storage: {
    joinReads: (_db, q) => { q.leftJoin('users as u', 'u.id', 't.user_id').select('u.role as _user_role'); },
  },
  toRow: () => { throw new FhirError(405, 'AuditEvent is written by the server only', 'not-supported'); },
  fromRow: (row) => auditEventFromRow(row),
  references: [],
  // isSummary in R4, plus agent and source: mandatory, so a summary without them would be invalid
  summaryElements: ['type', 'subtype', 'action', 'recorded', 'outcome', 'outcomeDesc', 'purposeOfEvent', 'agent', 'source'],
  compartment: ['patient'],
  // the patient a row is about (a patient reads the accesses to their own record)
  patientColumn: 'patient_id',
  // what a patient sees of the accesses to their own record (src/auth/policy.ts)
  views: { disclosure: disclosureView },
  viewHiddenParams: { disclosure: ['address'] },
  appendOnly: true,
  searchParams: [
    {
      name: 'date', source: 'column', type: 'date', column: 'timestamp', dateKind: 'timestamp', expression: 'AuditEvent.recorded',
      description: 'When the event was recorded', sort: ['timestamp'],
    },
    {
      name: 'agent', source: 'column', type: 'reference', column: 'user_id', targets: ['Practitioner'], expression: 'AuditEvent.agent.who',
      description: 'The user who acted (any HMS user id; clinicians are Practitioners)', sort: ['user_id'],
    },
    {
      name: 'entity', source: 'column', type: 'reference', column: 'resource_id', typeColumn: 'resource_type', targets: ENTITY_TYPES,
      expression: 'AuditEvent.entity.what', description: 'The resource acted on (resource_type and resource_id)',
    },
    {
      name: 'patient', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'],
      expression: 'AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Patient)',
      description: "Events about this patient's data, whatever resource (patient_id: the accounting of disclosures)",
    },
    {
      name: 'agent-role', source: 'column', type: 'token', column: 'role', expression: 'AuditEvent.agent.role',
      description: `The role the agent acted in: admin | doctor | nurse | patient | finance | system (${AUDIT_ROLE_SYSTEM})`,
      tokenToColumn: (system, code) => (system && system !== AUDIT_ROLE_SYSTEM ? undefined : [code]),
    },
    {
      name: 'client', source: 'column', type: 'token', column: 'client_id', caseSensitive: true,
      expression: `AuditEvent.agent.who.identifier.where(system='${CLIENT_ID_SYSTEM}')`, definition: `${HMS_CANONICAL}/SearchParameter/AuditEvent-client`,
      description: `The system client that acted (its client_id; system ${CLIENT_ID_SYSTEM} or none)`,
      tokenToColumn: (system, code) => (system && system !== CLIENT_ID_SYSTEM ? undefined : [code]),
    },
    {
      name: 'subtype', source: 'column', type: 'token', column: 'action', expression: 'AuditEvent.subtype',
      description: 'The HMS action recorded (read, search, create, update, delete, login, refused ...)', sort: ['action'],
      tokenToColumn: (system, code) => (system && system !== AUDIT_ACTION_SYSTEM ? undefined : [code]),
    },
    tokenParam('action', 'AuditEvent.action', 'C | R | U | D | E', ACTION_SQL, ['http://hl7.org/fhir/audit-event-action']),
    tokenParam('outcome', 'AuditEvent.outcome', '0 (success) | 4 (refused) | 8 (server failure)', OUTCOME_SQL, ['http://hl7.org/fhir/audit-event-outcome']),
    tokenParam('type', 'AuditEvent.type', 'rest (FHIR requests) | 110114 (user authentication)', TYPE_SQL, [AUDIT_TYPE_SYSTEM, DICOM_SYSTEM]),
    {
      name: 'address', source: 'column', type: 'string', column: 'ip_address', expression: 'AuditEvent.agent.network.address',
      description: 'The network address the request came from',
    },
  ],
});
