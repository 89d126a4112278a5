/**
 * The access policy: role x resource type x interaction -> the rule that applies, or nothing
 * (403). One table, read by the enforcement (src/fhir/access.ts), the CapabilityStatement
 * documentation, docs/security.md (generated from it, checked by a test) and the generated
 * authorization tests. The types stored generically (every other R4 type) follow the rules of
 * their category (clinical, financial, directory, definitional, restricted: `categoryOf`,
 * `CATEGORY_POLICY`). Systems (SMART Backend Services clients) are governed by their scopes
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

/**
 * The categories of the types stored generically (every R4 type no seed table holds), whose rules
 * are given per category rather than per type. docs/security.md ("Types by category").
 */
export const POLICY_CATEGORIES = ['clinical', 'financial', 'directory', 'definitional', 'restricted'] as const;
export type PolicyCategory = (typeof POLICY_CATEGORIES)[number];

/**
 * R4's Financial module (https://hl7.org/fhir/R4/financial-module.html: support, billing, payment
 * and general), in a patient's compartment: they name the patient they bill, cover or claim for.
 * Invoice and Coverage are table-backed and keep their own rows (equal to the category's).
 */
export const FINANCIAL_OF_PATIENT = [
  'Account', 'ChargeItem', 'Claim', 'ClaimResponse', 'Coverage', 'CoverageEligibilityRequest', 'CoverageEligibilityResponse',
  'EnrollmentRequest', 'ExplanationOfBenefit', 'Invoice',
] as const;
/**
 * The rest of the Financial module, in no patient's compartment: price lists (ChargeItemDefinition),
 * plan products (InsurancePlan), payment and enrollment notices, contracts. They name no patient
 * the policy can follow, so only the roles whose billing reach is every patient's have them.
 */
export const FINANCIAL_NO_PATIENT = ['ChargeItemDefinition', 'Contract', 'EnrollmentResponse', 'InsurancePlan', 'PaymentNotice', 'PaymentReconciliation'] as const;

/**
 * The organisation's directory, in no patient's compartment and naming no patient: who and where
 * care is given, the endpoints it is reached at, the medications and substances it holds, the
 * slots it books. Practitioner and PractitionerRole are table-backed and keep their own rows.
 */
export const DIRECTORY_TYPES = [
  'DeviceMetric', 'Endpoint', 'HealthcareService', 'Location', 'Medication', 'Organization', 'OrganizationAffiliation',
  'Practitioner', 'PractitionerRole', 'Slot', 'Substance',
] as const;

/**
 * Definitions, knowledge and conformance resources, in no patient's compartment and naming no
 * patient: what can be done, asked, measured or coded (canonical resources, product and substance
 * definitions, studies and tests).
 */
export const DEFINITIONAL_TYPES = [
  'ActivityDefinition', 'CapabilityStatement', 'CatalogEntry', 'CodeSystem', 'CompartmentDefinition', 'ConceptMap', 'DeviceDefinition',
  'EffectEvidenceSynthesis', 'EventDefinition', 'Evidence', 'EvidenceVariable', 'ExampleScenario', 'GraphDefinition', 'ImplementationGuide',
  'Library', 'Measure', 'MedicationKnowledge', 'MedicinalProduct', 'MedicinalProductAuthorization', 'MedicinalProductContraindication',
  'MedicinalProductIndication', 'MedicinalProductIngredient', 'MedicinalProductInteraction', 'MedicinalProductManufactured',
  'MedicinalProductPackaged', 'MedicinalProductPharmaceutical', 'MedicinalProductUndesirableEffect', 'MessageDefinition', 'NamingSystem',
  'ObservationDefinition', 'OperationDefinition', 'PlanDefinition', 'Questionnaire', 'ResearchDefinition', 'ResearchElementDefinition',
  'ResearchStudy', 'RiskEvidenceSynthesis', 'SearchParameter', 'SpecimenDefinition', 'StructureDefinition', 'StructureMap',
  'SubstanceNucleicAcid', 'SubstancePolymer', 'SubstanceProtein', 'SubstanceReferenceInformation', 'SubstanceSourceMaterial',
  'SubstanceSpecification', 'TerminologyCapabilities', 'TestReport', 'TestScript', 'ValueSet',
] as const;

/**
 * Types that can hold a patient's data where the policy cannot follow the patient: any content
 * (Binary, Bundle, Parameters, OperationOutcome, MessageHeader's focus), a patient named outside
 * the compartment (Device.patient, BiologicallyDerivedProduct's donor, GuidanceResponse.subject,
 * VerificationResult.target, Linkage's items, a Subscription's criteria, with the secrets of its
 * channel), or many patients at once where the store ties a row to one (Group's members, Person's
 * linked records). AuditEvent is table-backed and keeps its own rows (the security log).
 */
export const RESTRICTED_TYPES = [
  'AuditEvent', 'Binary', 'BiologicallyDerivedProduct', 'Bundle', 'Device', 'Group', 'GuidanceResponse', 'Linkage', 'MessageHeader',
  'OperationOutcome', 'Parameters', 'Person', 'Subscription', 'VerificationResult',
] as const;

const LISTED: ReadonlyMap<string, PolicyCategory> = new Map<string, PolicyCategory>([
  ...[...FINANCIAL_OF_PATIENT, ...FINANCIAL_NO_PATIENT].map((t) => [t, 'financial'] as const),
  ...DIRECTORY_TYPES.map((t) => [t, 'directory'] as const),
  ...DEFINITIONAL_TYPES.map((t) => [t, 'definitional'] as const),
  ...RESTRICTED_TYPES.map((t) => [t, 'restricted'] as const),
]);

/**
 * The category of a type: the one a list above names it in; else clinical when R4 puts it in the
 * Patient compartment, and restricted (admins only) when not: a type nobody has thought about is
 * closed until someone does (every R4 type is listed or in the compartment: test/unit/policy.test.ts).
 */
export function categoryOf(type: string, inPatientCompartment: boolean): PolicyCategory {
  return LISTED.get(type) ?? (inPatientCompartment ? 'clinical' : 'restricted');
}

/**
 * Rules per category and role, as for the seed's types of the same kind (clinical as Condition,
 * financial as Invoice: a test keeps them equal). A rule whose reach needs a patient (assigned,
 * own) does not apply to a type whose resources name none: the role does not have it (403).
 */
export const CATEGORY_POLICY: Record<PolicyCategory, Record<Exclude<Role, 'admin'>, PolicyCell>> = {
  clinical: { doctor: full('assigned'), nurse: reads('assigned'), patient: reads('own'), finance: {} },
  financial: { doctor: reads('assigned'), nurse: {}, patient: reads('own'), finance: full('all') },
  // staff read the directory and the definitions; only admins write them. Patients: none (their
  // reach is their own record, and these name no patient to tie them to it)
  directory: { doctor: reads('all'), nurse: reads('all'), patient: {}, finance: reads('all') },
  definitional: { doctor: reads('all'), nurse: reads('all'), patient: {}, finance: reads('all') },
  restricted: { doctor: {}, nurse: {}, patient: {}, finance: {} },
};

/** Categories whose types a system reaches only through a scope that names the type (system/Binary.r), never through system/*. */
export const NAMED_SCOPE_CATEGORIES: ReadonlySet<PolicyCategory> = new Set(['restricted']);

/** Where a generic type stands in the policy: its category, and whether its resources name a patient (it has a patient column). */
export interface CategoryPlacement {
  category: PolicyCategory;
  patientScoped: boolean;
}

/** Whether POLICY gives the type rules of its own (the table-backed types): its category, if any, then does not apply. */
export function hasOwnRules(type: string): boolean {
  return (POLICY_TYPES as readonly string[]).includes(type);
}

const NEEDS_PATIENT: ReadonlySet<Reach> = new Set(['assigned', 'own']);

/** The rule of a (non-admin) role on a type of a category, or undefined when the role never has it. */
export function categoryRule(role: Exclude<Role, 'admin'>, placement: CategoryPlacement, interaction: PolicyInteraction): Rule | undefined {
  const rule = CATEGORY_POLICY[placement.category][role][interaction];
  if (!rule || (NEEDS_PATIENT.has(rule.reach) && !placement.patientScoped)) return undefined;
  return rule;
}

const ADMIN_RULE: Rule = { reach: 'all' };

/**
 * The rule of a role for an interaction on a type, or undefined when the role never has it. A type
 * without rules of its own follows its category when it has one (`placement`: the generic types),
 * else it is admins' alone.
 */
export function roleRule(role: Role, type: string, interaction: PolicyInteraction, placement?: CategoryPlacement): Rule | undefined {
  if (role === 'admin') return ADMIN_RULE;
  if (placement && !hasOwnRules(type)) return categoryRule(role, placement, interaction);
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

/** Whether a system reaches a type only through a scope that names it (restricted generic types). */
export function needsNamedScope(type: string, placement?: CategoryPlacement): boolean {
  return !!placement && !hasOwnRules(type) && NAMED_SCOPE_CATEGORIES.has(placement.category);
}

/**
 * The rule of a system whose scopes permit the interaction (they reach every patient), or
 * undefined. `allows(type, p, named)`: whether the scopes permit p on type; with `named`, only a
 * scope naming the type counts (not system/*).
 */
export function systemRule(
  type: string, interaction: PolicyInteraction, allows: (type: string, p: Permission, named: boolean) => boolean, placement?: CategoryPlacement,
): Rule | undefined {
  if (NOT_FOR_SYSTEMS.has(type) || SYSTEM_DENIED[type]?.includes(interaction)) return undefined;
  return allows(type, PERMISSION_OF[interaction], needsNamedScope(type, placement)) ? ADMIN_RULE : undefined;
}

const REACH_TEXT: Record<Reach, string> = {
  all: 'all', assigned: 'assigned patients', own: 'own record', 'own-clinicians': 'those the own record names',
};

/** How the policy is put in words: what the named subsets, groups and views are, and which interactions a type has at all. */
export interface PolicyWording {
  describe(kind: 'only' | 'changes' | 'view', name: string): string;
  /** Whether the type serves the interaction (a rule for one it does not serve is not shown: it answers 405). */
  supports(type: string, interaction: PolicyInteraction): boolean;
  /** Where a type without rules of its own stands (its category), or undefined (admins only). */
  placement?(type: string): CategoryPlacement | undefined;
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

/** Rules in words: interactions grouped by rule ('-' when there are none). */
function rulesText(ruleOf: (i: PolicyInteraction) => Rule | undefined, supports: (i: PolicyInteraction) => boolean, w: PolicyWording): string {
  const groups = new Map<string, PolicyInteraction[]>();
  for (const i of POLICY_INTERACTIONS) {
    const rule = ruleOf(i);
    if (!rule || !supports(i)) continue;
    const text = ruleText(rule, w);
    groups.set(text, [...(groups.get(text) ?? []), i]);
  }
  if (groups.size === 0) return '-';
  return [...groups].map(([text, list]) => `${list.join(', ')}: ${text}`).join('; ');
}

/** A role's rules on a type in words: interactions grouped by rule ('-' when it has none). */
export function cellText(role: Exclude<Role, 'admin'>, type: string, w: PolicyWording = PLAIN): string {
  const placement = w.placement?.(type);
  return rulesText((i) => roleRule(role, type, i, placement), (i) => w.supports(type, i), w);
}

/** What systems get on a type, in words. */
function systemText(type: string, w: PolicyWording, placement?: CategoryPlacement): string {
  if (NOT_FOR_SYSTEMS.has(type)) return '-';
  const denied = (SYSTEM_DENIED[type] ?? []).filter((i) => w.supports(type, i));
  const named = needsNamedScope(type, placement) ? ' naming the type (not system/*)' : '';
  return `scopes${named}${denied.length ? `, never ${denied.join(', ')}` : ''}`;
}

/** The policy of one type in words, for the CapabilityStatement's documentation of the type. */
export function policySummary(type: string, w: PolicyWording = PLAIN): string {
  const placement = hasOwnRules(type) ? undefined : w.placement?.(type);
  const roles = (Object.keys(POLICY) as Exclude<Role, 'admin'>[]).map((role) => `${role}: ${cellText(role, type, w)}`);
  const head = placement
    ? `Access (category ${placement.category}${placement.patientScoped ? ', by the patient it names' : ', naming no patient'})`
    : 'Access';
  return `${head}: admin: all; ${roles.join(' | ')} | systems: ${systemText(type, w, placement)} (all patients). 403 for an interaction a role never has; 404 for a resource out of reach.`;
}

/** The policy as a Markdown table (docs/security.md embeds it; a test keeps the two equal). */
export function policyMarkdown(types: readonly string[], w: PolicyWording = PLAIN): string {
  const roles = Object.keys(POLICY) as Exclude<Role, 'admin'>[];
  const lines = [
    `| type | ${roles.join(' | ')} | systems |`,
    `|---|${roles.map(() => '---').join('|')}|---|`,
    ...types.map((type) => `| ${type} | ${roles.map((r) => cellText(r, type, w)).join(' | ')} | ${systemText(type, w, w.placement?.(type))} |`),
  ];
  return `${lines.join('\n')}\n\n${categoryMarkdown()}`;
}

/** The rows of the category table: a category, whether its types name a patient, and which types it holds. */
const CATEGORY_ROWS: { category: PolicyCategory; patientScoped: boolean; label: string; types: string }[] = [
  { category: 'clinical', patientScoped: true, label: 'clinical', types: 'every other type of R4\'s Patient compartment (listed below)' },
  { category: 'financial', patientScoped: true, label: 'financial, naming a patient', types: FINANCIAL_OF_PATIENT.filter((t) => !hasOwnRules(t)).join(', ') },
  { category: 'financial', patientScoped: false, label: 'financial, naming no patient', types: FINANCIAL_NO_PATIENT.join(', ') },
  { category: 'directory', patientScoped: false, label: 'directory', types: DIRECTORY_TYPES.filter((t) => !hasOwnRules(t)).join(', ') },
  { category: 'definitional', patientScoped: false, label: 'definitional', types: DEFINITIONAL_TYPES.join(', ') },
  { category: 'restricted', patientScoped: false, label: 'restricted', types: `${RESTRICTED_TYPES.filter((t) => !hasOwnRules(t)).join(', ')}; and any type not listed outside the compartment` },
];

/** The rules of the generic types by category as a Markdown table (part of policyMarkdown's output). */
export function categoryMarkdown(): string {
  const roles = Object.keys(POLICY) as Exclude<Role, 'admin'>[];
  const lines = [
    `| category | types | ${roles.join(' | ')} | systems |`,
    `|---|---|${roles.map(() => '---').join('|')}|---|`,
    ...CATEGORY_ROWS.map((row) => {
      const placement = { category: row.category, patientScoped: row.patientScoped };
      const cells = roles.map((r) => rulesText((i) => categoryRule(r, placement, i), () => true, PLAIN));
      return `| ${row.label} | ${row.types} | ${cells.join(' | ')} | ${NAMED_SCOPE_CATEGORIES.has(row.category) ? 'scopes naming the type (not system/*)' : 'scopes'} |`;
    }),
  ];
  return lines.join('\n');
}
