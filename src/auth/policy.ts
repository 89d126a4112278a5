/**
 * The access policy: role x resource type x interaction -> the rule that applies, or nothing
 * (403). One table, read by the enforcement (src/fhir/access.ts), the CapabilityStatement
 * documentation, docs/security.md (generated from it, checked by a test) and the generated
 * authorization tests. Systems (SMART Backend Services clients) are governed by their scopes
 * instead (see `systemRule`). Pure data and pure functions.
 */
import type { Role } from './principal.js';
import type { Permission } from './scopes.js';

/** The interactions the policy speaks of (operations map onto them: $everything is a read and searches). */
export const POLICY_INTERACTIONS = ['read', 'vread', 'search', 'history', 'create', 'update', 'delete'] as const;
export type PolicyInteraction = (typeof POLICY_INTERACTIONS)[number];

/**
 * Whose resources a rule reaches:
 * - all: every patient's;
 * - assigned: those of patients assigned to the clinician (docs/security.md), or held under break-glass;
 * - own: the patient's own (role patient: the record linked to the account);
 * - own-clinicians: the Practitioners the patient's record refers to (role patient reading staff).
 */
export type Reach = 'all' | 'assigned' | 'own' | 'own-clinicians';

export interface Rule {
  reach: Reach;
  /** Writes: only resources of this named subset of the type (e.g. vital-sign Observations); others 403. */
  only?: string;
  /** Updates: only this named group of elements may change; any other change 403. */
  changes?: string;
  /** Reads: the resource as this named view shows it (e.g. administrative elements only). */
  view?: string;
  /** Create: the creating clinician joins the new patient's care team. */
  joinCareTeam?: boolean;
}

export type PolicyCell = Partial<Record<PolicyInteraction, Rule>>;

const reads = (reach: Reach, extra: Omit<Rule, 'reach'> = {}): PolicyCell => ({
  read: { reach, ...extra }, vread: { reach, ...extra }, search: { reach, ...extra }, history: { reach, ...extra },
});
/** Create, update and delete: delete follows write. */
const writes = (reach: Reach, extra: Omit<Rule, 'reach'> = {}): PolicyCell => ({
  create: { reach, ...extra }, update: { reach, ...extra }, delete: { reach, ...extra },
});
const full = (reach: Reach): PolicyCell => ({ ...reads(reach), ...writes(reach) });

/** The resource types HMS serves that the policy names (a type missing here is admin-only). */
export const POLICY_TYPES = [
  'Patient', 'Practitioner', 'PractitionerRole', 'Appointment', 'Encounter', 'Condition', 'MedicationRequest', 'Observation',
  'ServiceRequest', 'DiagnosticReport', 'Invoice', 'Coverage', 'CareTeam', 'AuditEvent',
] as const;

/** Rules per role and type; an absent interaction is refused (403). Admins have everything. */
export const POLICY: Record<Exclude<Role, 'admin'>, Record<string, PolicyCell>> = {
  doctor: {
    Patient: { ...reads('assigned'), create: { reach: 'all', joinCareTeam: true }, update: { reach: 'assigned' } },
    Practitioner: reads('all'),
    PractitionerRole: reads('all'),
    Appointment: full('assigned'),
    Encounter: full('assigned'),
    Condition: full('assigned'),
    MedicationRequest: full('assigned'),
    Observation: full('assigned'),
    ServiceRequest: full('assigned'),
    DiagnosticReport: full('assigned'),
    CareTeam: full('assigned'),
    Invoice: reads('assigned'),
    Coverage: reads('assigned'),
  },
  nurse: {
    Patient: reads('assigned'),
    Practitioner: reads('all'),
    PractitionerRole: reads('all'),
    Appointment: reads('assigned'),
    Encounter: { ...reads('assigned'), update: { reach: 'assigned', changes: 'notes' } },
    Condition: reads('assigned'),
    MedicationRequest: reads('assigned'),
    Observation: { ...reads('assigned'), ...writes('assigned', { only: 'vital-signs' }) },
    ServiceRequest: reads('assigned'),
    DiagnosticReport: reads('assigned'),
    CareTeam: reads('assigned'),
  },
  patient: {
    Patient: reads('own'),
    Practitioner: reads('own-clinicians'),
    PractitionerRole: reads('own-clinicians'),
    Appointment: reads('own'),
    Encounter: reads('own'),
    Condition: reads('own'),
    MedicationRequest: reads('own'),
    Observation: reads('own'),
    ServiceRequest: reads('own'),
    DiagnosticReport: reads('own'),
    Invoice: reads('own'),
    Coverage: reads('own'),
    CareTeam: reads('own'),
    AuditEvent: reads('own', { view: 'disclosure' }),
  },
  finance: {
    Patient: reads('all'),
    Practitioner: reads('all'),
    PractitionerRole: reads('all'),
    Appointment: reads('all', { view: 'administrative' }),
    Encounter: reads('all', { view: 'administrative' }),
    Invoice: full('all'),
    Coverage: full('all'),
  },
};

const ADMIN_RULE: Rule = { reach: 'all' };

/** The rule of a role for an interaction on a type, or undefined when the role never has it. */
export function roleRule(role: Role, type: string, interaction: PolicyInteraction): Rule | undefined {
  if (role === 'admin') return ADMIN_RULE;
  return POLICY[role][type]?.[interaction];
}

/** The SMART permission an interaction needs (v2: c r u d s). https://build.fhir.org/ig/HL7/smart-app-launch/scopes-and-launch-context.html */
export const PERMISSION_OF: Record<PolicyInteraction, Permission> = {
  read: 'r', vread: 'r', history: 'r', search: 's', create: 'c', update: 'u', delete: 'd',
};

/** Types no system scope reaches: the security log is read by admins (and by patients about themselves). */
export const NOT_FOR_SYSTEMS = new Set(['AuditEvent']);

/**
 * Interactions no scope grants on a type: Practitioners are user accounts (their role, status
 * and login are managed by admins, with the revocations that go with them), so systems read the
 * staff directory but do not write it.
 */
export const SYSTEM_DENIED: Record<string, PolicyInteraction[]> = { Practitioner: ['create', 'update', 'delete'] };

/** The rule of a system whose scopes permit the interaction (they reach every patient), or undefined. */
export function systemRule(type: string, interaction: PolicyInteraction, allows: (type: string, p: Permission) => boolean): Rule | undefined {
  if (NOT_FOR_SYSTEMS.has(type) || SYSTEM_DENIED[type]?.includes(interaction)) return undefined;
  return allows(type, PERMISSION_OF[interaction]) ? ADMIN_RULE : undefined;
}

const REACH_TEXT: Record<Reach, string> = {
  all: 'all', assigned: 'assigned patients', own: 'own record', 'own-clinicians': 'those the own record names',
};

/** How the policy is put in words: what the named subsets, groups and views are, and which interactions a type has at all. */
export interface PolicyWording {
  describe(kind: 'only' | 'changes' | 'view', name: string): string;
  /** Whether the type serves the interaction (a rule for one it does not serve is not shown: it answers 405). */
  supports(type: string, interaction: PolicyInteraction): boolean;
}

const PLAIN: PolicyWording = { describe: (_k, n) => n, supports: () => true };

/** A rule in words (reach and restrictions). */
function ruleText(rule: Rule, w: PolicyWording): string {
  const extra = [
    rule.only ? `${w.describe('only', rule.only)} only` : '',
    rule.changes ? `${w.describe('changes', rule.changes)} only` : '',
    rule.view ? `${w.describe('view', rule.view)} view` : '',
    rule.joinCareTeam ? 'joins the care team' : '',
  ].filter(Boolean);
  return `${REACH_TEXT[rule.reach]}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

/** A role's rules on a type in words: interactions grouped by rule ('-' when it has none). */
export function cellText(role: Exclude<Role, 'admin'>, type: string, w: PolicyWording = PLAIN): string {
  const groups = new Map<string, PolicyInteraction[]>();
  for (const i of POLICY_INTERACTIONS) {
    const rule = roleRule(role, type, i);
    if (!rule || !w.supports(type, i)) continue;
    const text = ruleText(rule, w);
    groups.set(text, [...(groups.get(text) ?? []), i]);
  }
  if (groups.size === 0) return '-';
  return [...groups].map(([text, list]) => `${list.join(', ')}: ${text}`).join('; ');
}

/** What systems get on a type, in words. */
function systemText(type: string, w: PolicyWording): string {
  if (NOT_FOR_SYSTEMS.has(type)) return '-';
  const denied = (SYSTEM_DENIED[type] ?? []).filter((i) => w.supports(type, i));
  return `scopes${denied.length ? `, never ${denied.join(', ')}` : ''}`;
}

/** The policy of one type in words, for the CapabilityStatement's documentation of the type. */
export function policySummary(type: string, w: PolicyWording = PLAIN): string {
  const roles = (Object.keys(POLICY) as Exclude<Role, 'admin'>[]).map((role) => `${role}: ${cellText(role, type, w)}`);
  return `Access: admin: all; ${roles.join(' | ')} | systems: ${systemText(type, w)} (all patients). 403 for an interaction a role never has; 404 for a resource out of reach.`;
}

/** The policy as a Markdown table (docs/security.md embeds it; a test keeps the two equal). */
export function policyMarkdown(types: readonly string[], w: PolicyWording = PLAIN): string {
  const roles = Object.keys(POLICY) as Exclude<Role, 'admin'>[];
  const lines = [
    `| type | ${roles.join(' | ')} | systems |`,
    `|---|${roles.map(() => '---').join('|')}|---|`,
    ...types.map((type) => `| ${type} | ${roles.map((r) => cellText(r, type, w)).join(' | ')} | ${systemText(type, w)} |`),
  ];
  return lines.join('\n');
}
