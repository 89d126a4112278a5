/**
 * security_logs row -> AuditEvent (read-only). https://hl7.org/fhir/R4/auditevent.html
 * Rows are written by the server's own audit logging (src/db/audit-log.ts), never through FHIR,
 * so an AuditEvent is built from the columns alone. docs/resources/AuditEvent.md describes it.
 */
import type { Coding, Extension, Reference, Resource } from '../fhir/types.js';
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
  agent: Record<string, unknown>[];
  source: Record<string, unknown>;
  entity?: Record<string, unknown>[];
}

export const AUDIT_ACTION_SYSTEM = `${HMS_CANONICAL}/CodeSystem/audit-action`;
export const USER_ID_SYSTEM = `${HMS_CANONICAL}/sid/user-id`;
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

function who(userId: unknown, role: unknown): Reference | undefined {
  if (userId === null || userId === undefined) return undefined;
  const id = String(userId);
  if (PRACTITIONER_ROLES.includes(String(role))) return { reference: `Practitioner/${id}` };
  return { identifier: { system: USER_ID_SYSTEM, value: id }, display: role ? `HMS user (${String(role)})` : 'HMS user' };
}

/**
 * The AuditEvent of a security_logs row. `_user_role` (the role of the user, joined from users)
 * decides whether the agent is a Practitioner reference or an identifier of the user.
 */
export function auditEventFromRow(row: Row): AuditEvent {
  const action = String(row.action);
  const authentication = AUTHENTICATION_ACTIONS.includes(action);
  const agent: Record<string, unknown> = { requestor: true };
  const agentWho = who(row.user_id, row._user_role);
  if (agentWho) agent.who = agentWho;
  if (row.user_agent) agent.extension = [{ url: USER_AGENT_EXTENSION, valueString: String(row.user_agent) } satisfies Extension];
  if (row.ip_address) agent.network = { address: String(row.ip_address), type: '2' };

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

  const entity: Record<string, unknown> = {};
  if (row.resource_type && row.resource_id) entity.what = { reference: `${String(row.resource_type)}/${String(row.resource_id)}` };
  else if (row.resource_type) entity.what = { type: String(row.resource_type) };
  const data = parseData(row.additional_data);
  const detail = Object.entries(data ?? {}).filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([type, v]) => ({ type, valueString: typeof v === 'string' ? v : JSON.stringify(v) }));
  if (detail.length) entity.detail = detail;
  if (Object.keys(entity).length) event.entity = [entity];
  return event;
}
