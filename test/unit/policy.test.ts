/**
 * The access policy table against the registry and the docs: every type it names is served, every
 * named subset, element group and view exists on its type, reaches that need a patient column have
 * one, and docs/security.md carries the table as generated from it.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { POLICY, POLICY_INTERACTIONS, POLICY_TYPES, policyMarkdown, roleRule, systemRule } from '../../src/auth/policy.js';
import { ROLES } from '../../src/auth/principal.js';
import { allResourceDefinitions, resourceDefinition } from '../../src/fhir/registry.js';
import { POLICY_WORDING } from '../../src/fhir/access.js';
import '../../src/fhir/resources/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

t.test('the policy names exactly the types the registry serves', async (t) => {
  t.same([...POLICY_TYPES].sort(), allResourceDefinitions().map((d) => d.type).sort());
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

t.test('docs/security.md carries the policy table as generated', async (t) => {
  const doc = readFileSync(`${root}docs/security.md`, 'utf8');
  const table = policyMarkdown(POLICY_TYPES, POLICY_WORDING);
  t.ok(doc.includes(table), 'run `npx hms policy` and paste its table into docs/security.md when the policy changes');
});
