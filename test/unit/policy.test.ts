/**
 * The access policy table against the registry and the docs: every type it names is served, every
 * named subset, element group and view exists on its type, reaches that need a patient column have
 * one, every R4 type lands in one category (the generic types' rules), the category rules are the
 * seed's, and docs/security.md carries the tables as generated from it.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CATEGORY_POLICY, categoryMarkdown, categoryOf, categoryRule, DEFINITIONAL_TYPES, DIRECTORY_TYPES, FINANCIAL_NO_PATIENT, FINANCIAL_OF_PATIENT,
  hasOwnRules, POLICY, POLICY_CATEGORIES, POLICY_INTERACTIONS, POLICY_TYPES, policyMarkdown, policySummary, RESTRICTED_TYPES, roleRule, systemRule,
  type CategoryPlacement, type PolicyCategory, type PolicyInteraction,
} from '../../src/auth/policy.js';
import { ROLES, type Role } from '../../src/auth/principal.js';
import { parseScopes, scopesAllow } from '../../src/auth/scopes.js';
import { allResourceDefinitions, resourceDefinition } from '../../src/fhir/registry.js';
import { placementOf, POLICY_WORDING } from '../../src/fhir/access.js';
import { r4Definitions } from '../../src/fhir/r4/definitions.js';
import '../../src/fhir/resources/index.js';

type Staff = Exclude<Role, 'admin'>;
const STAFF: Staff[] = ['doctor', 'nurse', 'patient', 'finance'];
const READS: PolicyInteraction[] = ['read', 'vread', 'search', 'history'];
const WRITES: PolicyInteraction[] = ['create', 'update', 'delete'];
const r4 = r4Definitions().types;
const inCompartment = (type: string): boolean => !!r4[type]?.compartment?.length;
/** The category R4's compartment and the lists give each R4 type. */
const categoryOfR4 = (type: string): PolicyCategory => categoryOf(type, inCompartment(type));
/** The generic types of a category, as the R4 definitions place them (the store may not be registered). */
const genericOf = (c: PolicyCategory): string[] => Object.keys(r4).filter((t) => !hasOwnRules(t) && categoryOfR4(t) === c);

const root = fileURLToPath(new URL('../../', import.meta.url));

t.test('the policy names exactly the table-backed types the registry serves', async (t) => {
  t.same([...POLICY_TYPES].sort(), allResourceDefinitions().filter((d) => d.storageKind !== 'generic').map((d) => d.type).sort());
});

t.test('every subset, element group and view a rule names exists on its type; reaches have their column', async (t) => {
  for (const [role, cells] of Object.entries(POLICY)) {
    for (const [type, cell] of Object.entries(cells)) {
      const def = resourceDefinition(type);
      t.ok(def, `${role}: ${type} is served`);
      for (const [interaction, rule] of Object.entries(cell)) {
        const where = `${role} ${interaction} ${type}`;
        if (rule.only) t.ok(def?.subsets?.[rule.only], `${where}: subset ${rule.only}`);
        if (rule.changes) t.ok(def?.elementGroups?.[rule.changes], `${where}: element group ${rule.changes}`);
        if (rule.view) t.ok(def?.views?.[rule.view], `${where}: view ${rule.view}`);
        if (rule.reach === 'assigned' || rule.reach === 'own') t.ok(def?.patientColumn, `${where}: ${type} has a patient column`);
        if (rule.changes) t.equal(interaction, 'update', `${where}: element groups limit updates`);
        if (rule.joinCareTeam) t.equal(`${interaction} ${type}`, 'create Patient', `${where}: joining a care team follows creating a patient`);
      }
    }
  }
});

t.test('delete follows write, and the rules the issue states hold', async (t) => {
  for (const role of ROLES.filter((r) => r !== 'admin')) {
    for (const type of POLICY_TYPES) {
      const del = roleRule(role, type, 'delete');
      if (del) t.ok(roleRule(role, type, 'create') && roleRule(role, type, 'update'), `${role} deletes ${type} only if it creates and updates it`);
    }
  }
  t.notOk(roleRule('doctor', 'Patient', 'delete'), 'a Patient is deleted by admins only');
  t.notOk(roleRule('nurse', 'Patient', 'create') || roleRule('nurse', 'Encounter', 'create'), 'a nurse creates no Patient and no Encounter');
  t.notOk(roleRule('nurse', 'Invoice', 'read') || roleRule('nurse', 'Coverage', 'read'), 'nurses read no billing');
  t.notOk(roleRule('finance', 'CareTeam', 'read'), 'finance has no CareTeam access');
  for (const i of ['create', 'update', 'delete'] as const) for (const type of POLICY_TYPES) t.notOk(roleRule('patient', type, i), `patients write no ${type}`);
  for (const type of ['Observation', 'Condition', 'MedicationRequest', 'DiagnosticReport', 'ServiceRequest']) t.notOk(roleRule('finance', type, 'read'), `finance reads no ${type}`);
  t.notOk(systemRule('AuditEvent', 'read', () => true), 'no scope reaches the security log');
  for (const i of POLICY_INTERACTIONS) t.ok(roleRule('admin', 'AuditEvent', i), `admin ${i} AuditEvent`);
});

t.test('every R4 type lands in exactly one category, by the lists and the Patient compartment', async (t) => {
  const types = Object.keys(r4);
  t.equal(types.length, 146, 'R4 has 146 resource types');
  const lists: Record<string, readonly string[]> = {
    FINANCIAL_OF_PATIENT, FINANCIAL_NO_PATIENT, DIRECTORY_TYPES, DEFINITIONAL_TYPES, RESTRICTED_TYPES,
  };
  const seen = new Map<string, string>();
  for (const [name, list] of Object.entries(lists)) {
    for (const type of list) {
      t.ok(r4[type], `${name}: ${type} is an R4 type`);
      t.notOk(seen.has(type), `${type} is listed once (${name}${seen.has(type) ? `, ${seen.get(type)}` : ''})`);
      seen.set(type, name);
    }
  }
  for (const type of types) {
    const c = categoryOfR4(type);
    t.ok(POLICY_CATEGORIES.includes(c), `${type}: ${c}`);
    // the closed default (restricted for a type outside the compartment nobody listed) never applies to an R4 type
    if (!inCompartment(type)) t.ok(seen.has(type), `${type} is outside the compartment and listed`);
    if (inCompartment(type) && !seen.has(type)) t.equal(c, 'clinical', `${type}: in the compartment, not listed: clinical`);
  }
  // the rules reach through a patient only where R4 ties the resources to one
  for (const type of FINANCIAL_OF_PATIENT) t.ok(inCompartment(type), `${type} is in the Patient compartment`);
  for (const type of [...FINANCIAL_NO_PATIENT, ...DIRECTORY_TYPES, ...DEFINITIONAL_TYPES]) t.notOk(inCompartment(type), `${type} names no patient (outside the compartment): reach all is no patient's data`);
  t.equal(categoryOf('NotAType', false), 'restricted', 'an unknown type outside the compartment is closed');
  const counts = Object.fromEntries(POLICY_CATEGORIES.map((c) => [c, types.filter((ty) => categoryOfR4(ty) === c).length]));
  t.same(counts, { clinical: 54, financial: 16, directory: 11, definitional: 51, restricted: 14 }, 'types per category');
  for (const type of ['Immunization', 'Procedure', 'AllergyIntolerance', 'CarePlan', 'DocumentReference', 'ImagingStudy', 'Goal', 'FamilyMemberHistory', 'Provenance', 'Basic']) t.equal(categoryOfR4(type), 'clinical', `${type} clinical`);
  for (const type of ['Claim', 'ClaimResponse', 'ExplanationOfBenefit', 'Account', 'ChargeItem', 'ChargeItemDefinition', 'PaymentNotice', 'PaymentReconciliation', 'CoverageEligibilityRequest', 'CoverageEligibilityResponse', 'EnrollmentRequest', 'EnrollmentResponse', 'Contract', 'InsurancePlan']) t.equal(categoryOfR4(type), 'financial', `${type} financial`);
  for (const type of ['Organization', 'Location', 'Medication', 'HealthcareService', 'Endpoint', 'OrganizationAffiliation', 'Substance']) t.equal(categoryOfR4(type), 'directory', `${type} directory`);
  for (const type of ['Questionnaire', 'ValueSet', 'CodeSystem', 'StructureDefinition', 'PlanDefinition', 'ActivityDefinition', 'Library', 'Measure', 'SearchParameter']) t.equal(categoryOfR4(type), 'definitional', `${type} definitional`);
  for (const type of ['Binary', 'Bundle', 'MessageHeader', 'Parameters', 'Device', 'Group', 'Person', 'Subscription']) t.equal(categoryOfR4(type), 'restricted', `${type} restricted`);
});

t.test('the category rules are the seed types\' own: clinical as Condition, financial as Invoice', async (t) => {
  for (const role of STAFF) {
    t.same(CATEGORY_POLICY.clinical[role], POLICY[role].Condition ?? {}, `${role}: clinical = Condition`);
    t.same(CATEGORY_POLICY.financial[role], POLICY[role].Invoice ?? {}, `${role}: financial = Invoice`);
    t.same(CATEGORY_POLICY.financial[role], POLICY[role].Coverage ?? {}, `${role}: financial = Coverage`);
  }
});

t.test('the rules the issue states for each category', async (t) => {
  const at = (category: PolicyCategory, patientScoped: boolean): CategoryPlacement => ({ category, patientScoped });
  const reach = (role: Role, p: CategoryPlacement, i: PolicyInteraction): string => roleRule(role, 'Generic', i, p)?.reach ?? 'none';
  const all = (role: Role, p: CategoryPlacement, is: PolicyInteraction[], want: string, what: string) => {
    for (const i of is) t.equal(reach(role, p, i), want, `${what}: ${role} ${i} ${want}`);
  };
  // role: [reads, writes] per category in the compartment, as the issue states them
  const stated: [PolicyCategory, Role, string, string][] = [
    ['clinical', 'doctor', 'assigned', 'assigned'], ['clinical', 'nurse', 'assigned', 'none'],
    ['clinical', 'patient', 'own', 'none'], ['clinical', 'finance', 'none', 'none'],
    ['financial', 'finance', 'all', 'all'], ['financial', 'doctor', 'assigned', 'none'],
    ['financial', 'patient', 'own', 'none'], ['financial', 'nurse', 'none', 'none'],
  ];
  for (const [category, role, readReach, writeReach] of stated) {
    all(role, at(category, true), READS, readReach, category);
    all(role, at(category, true), WRITES, writeReach, category);
  }
  const unnamed = at('financial', false);
  all('finance', unnamed, [...READS, ...WRITES], 'all', 'financial naming no patient');
  for (const role of ['doctor', 'nurse', 'patient'] as const) all(role, unnamed, [...READS, ...WRITES], 'none', 'financial naming no patient');
  for (const c of ['directory', 'definitional'] as const) {
    for (const role of ['doctor', 'nurse', 'finance'] as const) {
      all(role, at(c, false), READS, 'all', c);
      all(role, at(c, false), WRITES, 'none', c);
    }
    all('patient', at(c, false), [...READS, ...WRITES], 'none', c);
  }
  for (const patientScoped of [true, false]) for (const role of STAFF) all(role, at('restricted', patientScoped), [...READS, ...WRITES], 'none', 'restricted');
  for (const c of POLICY_CATEGORIES) for (const p of [true, false]) all('admin', at(c, p), [...READS, ...WRITES], 'all', `${c} (admin)`);
  // a reach that needs a patient never applies to a type whose resources name none
  for (const c of POLICY_CATEGORIES) {
    for (const role of STAFF) {
      for (const i of POLICY_INTERACTIONS) {
        const rule = categoryRule(role, at(c, false), i);
        t.ok(!rule || rule.reach === 'all', `${c} naming no patient: ${role} ${i} reaches all or nothing`);
      }
    }
  }
  t.equal(roleRule('doctor', 'Condition', 'read', at('restricted', false))?.reach, 'assigned', 'a type with rules of its own keeps them');
  t.notOk(roleRule('doctor', 'Generic', 'read'), 'a type without rules and without a category is admins\' alone');
});

t.test('systems: scopes for every category; restricted types only by a scope naming them', async (t) => {
  const allows = (scope: string) => {
    const scopes = parseScopes(scope).scopes;
    return (type: string, perm: Parameters<typeof scopesAllow>[2], named: boolean) => scopesAllow(scopes, type, perm, named);
  };
  for (const c of POLICY_CATEGORIES) {
    const p = { category: c, patientScoped: c === 'clinical' };
    t.equal(systemRule('Generic', 'read', allows('system/Generic.rs'), p)?.reach, 'all', `${c}: a scope naming the type`);
    t.notOk(systemRule('Generic', 'create', allows('system/Generic.rs'), p), `${c}: not beyond the scope`);
    t.notOk(systemRule('Generic', 'read', allows('system/Other.rs'), p), `${c}: not another type's scope`);
    const wildcard = systemRule('Generic', 'read', allows('system/*.rs'), p);
    if (c === 'restricted') t.notOk(wildcard, 'restricted: system/* does not reach it');
    else t.equal(wildcard?.reach, 'all', `${c}: system/* reaches it`);
  }
  t.equal(systemRule('Observation', 'read', allows('system/*.read'), { category: 'restricted', patientScoped: false })?.reach, 'all', 'a table-backed type is not restricted by a category');
});

t.test('generic definitions stand where the policy puts them', async (t) => {
  const generic = allResourceDefinitions().filter((d) => d.storageKind === 'generic');
  if (generic.length === 0) { t.comment('no generic definitions registered yet'); return; }
  const unserved = Object.keys(r4).filter((type) => !resourceDefinition(type));
  if (unserved.length) t.comment(`R4 types not served: ${unserved.join(', ')}`);
  for (const def of generic) {
    t.ok(r4[def.type] && !hasOwnRules(def.type), `${def.type}: an R4 type without a table`);
    t.equal(def.category, categoryOfR4(def.type), `${def.type}: category ${def.category}`);
    t.equal(!!def.patientColumn, inCompartment(def.type), `${def.type}: a patient column exactly when in the compartment`);
    for (const role of STAFF) {
      for (const i of POLICY_INTERACTIONS) {
        const rule = roleRule(role, def.type, i, placementOf(def));
        if (rule && rule.reach !== 'all') t.ok(def.patientColumn, `${role} ${i} ${def.type}: reach ${rule.reach} has its column`);
      }
    }
    t.match(policySummary(def.type, POLICY_WORDING), new RegExp(`^Access \\(category ${def.category}`), `${def.type}: the summary names the category`);
  }
});

t.test('docs/security.md carries the policy tables as generated', async (t) => {
  const doc = readFileSync(`${root}docs/security.md`, 'utf8');
  const table = policyMarkdown(POLICY_TYPES, POLICY_WORDING);
  t.ok(table.includes(categoryMarkdown()), 'the category table is part of the generated output');
  t.ok(doc.includes(table), 'run `npx hms policy` and paste its tables into docs/security.md when the policy changes');
  const clinical = `Clinical types stored generically: ${genericOf('clinical').join(', ')}.`;
  t.ok(doc.includes(clinical), `docs/security.md lists the clinical types: ${clinical}`);
});
