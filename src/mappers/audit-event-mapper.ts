/**
 * security_logs row -> AuditEvent (read-only). https://hl7.org/fhir/R4/auditevent.html
 * Rows are written by the server's own audit logging (src/db/audit-log.ts), never through FHIR,
 * so an AuditEvent is built from the columns alone. docs/resources/AuditEvent.md describes it.
 */
import type { CodeableConcept, Coding, Extension, Reference, Resource } from '../fhir/types.js';
import type { Row } from './column-map.js';
import { HMS_CANONICAL, hmsExtensionUrl, sqlToInstant } from './datatypes.js';

export interface AuditEvent extends Resource {
  resourceType: 'AuditEvent';
  type: Coding;
  subtype?: Coding[];
  action?: string;
  recorded: string;
  outcome?: string;
  outcomeDesc?: string;
  purposeOfEvent?: CodeableConcept[];
  agent: Record<string, unknown>[];
  source: Record<string, unknown>;
  entity?: Record<string, unknown>[];
}

export const AUDIT_ACTION_SYSTEM = `${HMS_CANONICAL}/CodeSystem/audit-action`;
export const USER_ID_SYSTEM = `${HMS_CANONICAL}/sid/user-id`;
/** Identifier system of registered systems (SMART Backend Services clients, api_clients.id). */
export const CLIENT_ID_SYSTEM = `${HMS_CANONICAL}/sid/client-id`;
/** The role an agent acted in (security_logs.role: admin, doctor, nurse, patient, finance, system). */
export const AUDIT_ROLE_SYSTEM = `${HMS_CANONICAL}/CodeSystem/access-role`;
/** Emergency treatment: the purpose of an access under a break-glass grant. */
export const BREAK_GLASS_PURPOSE: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT', display: 'Emergency Treatment' }],
  text: 'break-glass access',
};
/** entity.detail type of the request id that ties the rows of one request together. */
export const REQUEST_ID_DETAIL = 'request-id';
export const USER_AGENT_EXTENSION = hmsExtensionUrl('audit-user-agent');
export const AUDIT_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
export const DICOM_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';

/** Actions recorded by login and logout: DICOM 110114 User Authentication; every other action is a FHIR REST request. */
export const AUTHENTICATION_ACTIONS = ['login', 'logout', 'login-throttled'];

/** The AuditEvent.action (C R U D E) of each recorded action; anything else is E (execute). */
export const ACTION_CODES: Record<string, string> = {
  create: 'C', read: 'R', vread: 'R', history: 'R', search: 'R', 'create-conditional-match': 'R', update: 'U', delete: 'D',
};

/** Users whose id is a Practitioner id (users with these roles are served as Practitioner). */
export const PRACTITIONER_ROLES = ['doctor', 'nurse'];

/** outcome: 0 success, 8 serious failure (the server failed: 5xx), 4 minor failure (the request was refused). */
export function outcomeOf(success: unknown, reason: unknown): string {
  if (Number(success)) return '0';
  return /^5\d\d\b/.test(String(reason ?? '')) ? '8' : '4';
}

const quoteSql = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** SQL (both dialects) of the action letter a row implies: search on `action`. */
export const ACTION_SQL = `(CASE ${['C', 'R', 'U', 'D'].map((letter) => {
  const names = Object.entries(ACTION_CODES).filter(([, l]) => l === letter).map(([n]) => quoteSql(n));
  return `WHEN t.action IN (${names.join(', ')}) THEN '${letter}'`;
}).join(' ')} ELSE 'E' END)`;

/** SQL of the outcome code a row implies: search on `outcome`. */
export const OUTCOME_SQL = "(CASE WHEN t.success = 1 THEN '0' WHEN t.failure_reason LIKE '5%' THEN '8' ELSE '4' END)";

/** SQL of the type code a row implies: search on `type`. */
export const TYPE_SQL = `(CASE WHEN t.action IN (${AUTHENTICATION_ACTIONS.map(quoteSql).join(', ')}) THEN '110114' ELSE 'rest' END)`;

function parseData(v: unknown): Record<string, unknown> | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  if (typeof v === 'object') return v as Record<string, unknown>;
  try {
    const parsed = JSON.parse(String(v)) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : { value: parsed };
  } catch {
    return { value: String(v) };
  }
}

const present = (v: unknown): boolean => v !== null && v !== undefined && v !== '';

function who(row: Row): Reference | undefined {
  if (!present(row.user_id)) {
    return present(row.client_id) ? { identifier: { system: CLIENT_ID_SYSTEM, value: String(row.client_id) }, display: 'HMS client' } : undefined;
  }
  const id = String(row.user_id);
  // the user's role now (joined from users) says whether the id is a Practitioner's; else the role acted in
  const role = present(row._user_role) ? row._user_role : row.role;
  if (PRACTITIONER_ROLES.includes(String(role))) return { reference: `Practitioner/${id}` };
  return { identifier: { system: USER_ID_SYSTEM, value: id }, display: present(role) ? `HMS user (${String(role)})` : 'HMS user' };
}

/** The entity of the patient whose data it was, when that is not the resource itself (entity type 1 person, role 1 patient). */
function patientEntity(row: Row): Record<string, unknown> | undefined {
  if (!present(row.patient_id)) return undefined;
  if (row.resource_type === 'Patient' && row.resource_id === row.patient_id) return undefined;
  return {
    what: { reference: `Patient/${String(row.patient_id)}` },
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
    role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
  };
}

/**
 * The AuditEvent of a security_logs row. `_user_role` (the role of the user, joined from users)
 * decides whether the agent is a Practitioner reference or an identifier of the user; a system
 * client is an identifier of the client.
 */
export function auditEventFromRow(row: Row): AuditEvent {
  const action = String(row.action);
  const authentication = AUTHENTICATION_ACTIONS.includes(action);
  const breakGlass = Number(row.break_glass ?? 0) === 1;
  const agent: Record<string, unknown> = { requestor: true };
  const agentWho = who(row);
  if (present(row.role)) agent.role = [{ coding: [{ system: AUDIT_ROLE_SYSTEM, code: String(row.role) }], text: String(row.role) }];
  if (agentWho) agent.who = agentWho;
  if (row.user_agent) agent.extension = [{ url: USER_AGENT_EXTENSION, valueString: String(row.user_agent) } satisfies Extension];
  if (row.ip_address) agent.network = { address: String(row.ip_address), type: '2' };
  if (breakGlass) agent.purposeOfUse = [BREAK_GLASS_PURPOSE];

  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    id: String(row.id),
    type: authentication
      ? { system: DICOM_SYSTEM, code: '110114', display: 'User Authentication' }
      : { system: AUDIT_TYPE_SYSTEM, code: 'rest', display: 'Restful Operation' },
    subtype: [{ system: AUDIT_ACTION_SYSTEM, code: action }],
    action: ACTION_CODES[action] ?? 'E',
    recorded: sqlToInstant(row.timestamp)!,
    outcome: outcomeOf(row.success, row.failure_reason),
    agent: [agent],
    source: { observer: { display: 'HMS FHIR server' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '3', display: 'Web Server' }] },
  };
  if (row.failure_reason) event.outcomeDesc = String(row.failure_reason);
  if (breakGlass) event.purposeOfEvent = [BREAK_GLASS_PURPOSE];

  const entity: Record<string, unknown> = {};
  if (row.resource_type && row.resource_id) entity.what = { reference: `${String(row.resource_type)}/${String(row.resource_id)}` };
  else if (row.resource_type) entity.what = { type: String(row.resource_type) };
  const data = parseData(row.additional_data);
  const detail = Object.entries(data ?? {}).filter(([, v]) => present(v))
    .map(([type, v]) => ({ type, valueString: typeof v === 'string' ? v : JSON.stringify(v) }));
  if (present(row.request_id)) detail.push({ type: REQUEST_ID_DETAIL, valueString: String(row.request_id) });
  if (detail.length) entity.detail = detail;
  const entities = [entity, patientEntity(row)].filter((e): e is Record<string, unknown> => !!e && Object.keys(e).length > 0);
  if (entities.length) event.entity = entities;
  return event;
}
