/**
 * Access to the generic store's types by policy category (src/auth/policy.ts: categoryOf,
 * CATEGORY_POLICY), over HTTP on the real database: a type of each category (clinical
 * Immunization, financial Account naming a patient and InsurancePlan naming none, directory
 * Organization, definitional Questionnaire, restricted Binary and Group) x every principal of the
 * access world (doctor and nurse assigned to A or not, patients A and B, finance, admin, systems
 * with a scope naming the types, with system/* and without any) x read, vread, history, search,
 * create, update, delete, on A's resource and B's. Expected answers come from the policy; a table
 * written by hand pins the issue's rules; then a doctor's search, a patient's $everything and the
 * CapabilityStatement.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { buildWorld, clientToken } from '../helpers/access-world.js';
import { roleRule, systemRule, type PolicyInteraction, type Rule } from '../../src/auth/policy.js';
import { parseScopes, scopesAllow } from '../../src/auth/scopes.js';
import { resourceDefinition } from '../../src/fhir/registry.js';
import { placementOf } from '../../src/fhir/access.js';
import '../../src/fhir/resources/index.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Target = 'A' | 'B';
type Expected = 'allow' | 'absent' | 403 | 404 | 422;

interface Who {
  name: string;
  token: string;
  role?: 'admin' | 'doctor' | 'nurse' | 'patient' | 'finance';
  scope?: string;
  patientId?: string;
  assignedToA?: boolean;
}

/** A type of each category, a body of it for a patient, and a change any writer of it may make. */
const TYPES: Record<string, { body(patient: string): J; change(body: J): void }> = {
  Immunization: {
    body: (p) => ({
      resourceType: 'Immunization', status: 'completed', vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '208' }] },
      patient: { reference: `Patient/${p}` }, occurrenceDateTime: '2024-01-15',
    }),
    change: (b) => { b.identifier = [{ system: 'urn:hms:categories', value: randomUUID() }]; },
  },
  Account: {
    body: (p) => ({ resourceType: 'Account', status: 'active', name: 'Inpatient stay', subject: [{ reference: `Patient/${p}` }] }),
    change: (b) => { b.identifier = [{ system: 'urn:hms:categories', value: randomUUID() }]; },
  },
  InsurancePlan: {
    body: () => ({ resourceType: 'InsurancePlan', status: 'active', name: `Plan ${randomUUID().slice(0, 8)}` }),
    change: (b) => { b.identifier = [{ system: 'urn:hms:categories', value: randomUUID() }]; },
  },
  Organization: {
    body: () => ({ resourceType: 'Organization', active: true, name: `Clinic ${randomUUID().slice(0, 8)}` }),
    change: (b) => { b.identifier = [{ system: 'urn:hms:categories', value: randomUUID() }]; },
  },
  Questionnaire: {
    body: () => ({ resourceType: 'Questionnaire', status: 'active', title: 'Intake', item: [{ linkId: '1', text: 'How do you feel?', type: 'string' }] }),
    change: (b) => { b.identifier = [{ system: 'urn:hms:categories', value: randomUUID() }]; },
  },
  Binary: {
    body: (p) => ({ resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from(`notes about ${p}`).toString('base64') }),
    change: (b) => { b.data = Buffer.from(`changed ${randomUUID()}`).toString('base64'); },
  },
  Group: {
    body: (p) => ({ resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${p}` } }] }),
    change: (b) => { b.identifier = [{ system: 'urn:hms:categories', value: randomUUID() }]; },
  },
};
const TYPE_NAMES = Object.keys(TYPES);

/** The types' own scopes (and Patient's: a write naming a patient must be able to see it). */
const NAMED_SCOPE = ['system/Patient.rs', ...TYPE_NAMES.map((type) => `system/${type}.cruds`)].join(' ');

const INTERACTIONS: PolicyInteraction[] = ['read', 'vread', 'history', 'search', 'create', 'update', 'delete'];
const SUCCESS: Record<PolicyInteraction, number> = { read: 200, vread: 200, search: 200, history: 200, create: 201, update: 200, delete: 204 };

/** The rule the policy gives a principal on a type. */
function ruleOf(p: Who, type: string, interaction: PolicyInteraction): Rule | undefined {
  const def = resourceDefinition(type)!;
  const placement = placementOf(def);
  if (p.role) return roleRule(p.role, type, interaction, placement);
  const scopes = parseScopes(p.scope!).scopes;
  return systemRule(type, interaction, (ty, perm, named) => scopesAllow(scopes, ty, perm, named), placement);
}

/** What the policy says a probe answers. */
function expected(p: Who, type: string, interaction: PolicyInteraction, target: Target): Expected {
  const rule = ruleOf(p, type, interaction);
  if (!rule) return 403;
  let reached: boolean;
  switch (rule.reach) {
    case 'all': reached = true; break;
    case 'assigned': reached = !!p.assignedToA && target === 'A'; break;
    default: reached = (p.name === 'patient A' && target === 'A') || (p.name === 'patient B' && target === 'B');
  }
  if (reached) return 'allow';
  return interaction === 'search' ? 'absent' : interaction === 'create' ? 422 : 404;
}

/** The issue's rules, written by hand (status of a read, search, create, update and delete of A's resource). */
const BY_HAND: [string, string, Record<'read' | 'search' | 'create' | 'update' | 'delete', number | 'absent'>][] = [
  ['assigned doctor', 'Immunization', { read: 200, search: 200, create: 201, update: 200, delete: 204 }],
  ['unassigned doctor', 'Immunization', { read: 404, search: 'absent', create: 422, update: 404, delete: 404 }],
  ['assigned nurse', 'Immunization', { read: 200, search: 200, create: 403, update: 403, delete: 403 }],
  ['unassigned nurse', 'Immunization', { read: 404, search: 'absent', create: 403, update: 403, delete: 403 }],
  ['patient A', 'Immunization', { read: 200, search: 200, create: 403, update: 403, delete: 403 }],
  ['patient B', 'Immunization', { read: 404, search: 'absent', create: 403, update: 403, delete: 403 }],
  ['finance', 'Immunization', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['finance', 'Account', { read: 200, search: 200, create: 201, update: 200, delete: 204 }],
  ['assigned doctor', 'Account', { read: 200, search: 200, create: 403, update: 403, delete: 403 }],
  ['unassigned doctor', 'Account', { read: 404, search: 'absent', create: 403, update: 403, delete: 403 }],
  ['assigned nurse', 'Account', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['patient A', 'Account', { read: 200, search: 200, create: 403, update: 403, delete: 403 }],
  ['patient B', 'Account', { read: 404, search: 'absent', create: 403, update: 403, delete: 403 }],
  ['finance', 'InsurancePlan', { read: 200, search: 200, create: 201, update: 200, delete: 204 }],
  ['assigned doctor', 'InsurancePlan', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['patient A', 'InsurancePlan', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['unassigned nurse', 'Organization', { read: 200, search: 200, create: 403, update: 403, delete: 403 }],
  ['finance', 'Organization', { read: 200, search: 200, create: 403, update: 403, delete: 403 }],
  ['patient A', 'Organization', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['unassigned doctor', 'Questionnaire', { read: 200, search: 200, create: 403, update: 403, delete: 403 }],
  ['patient A', 'Questionnaire', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['admin', 'Binary', { read: 200, search: 200, create: 201, update: 200, delete: 204 }],
  ['assigned doctor', 'Binary', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['patient A', 'Group', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['assigned doctor', 'Group', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['named client', 'Binary', { read: 200, search: 200, create: 201, update: 200, delete: 204 }],
  ['named client', 'Immunization', { read: 200, search: 200, create: 201, update: 200, delete: 204 }],
  ['wildcard client', 'Binary', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['wildcard client', 'Group', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
  ['wildcard client', 'Organization', { read: 200, search: 200, create: 201, update: 200, delete: 204 }],
  ['narrow client', 'Immunization', { read: 403, search: 403, create: 403, update: 403, delete: 403 }],
];

t.test('generic types: every principal x category x interaction, as the policy says', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const patientOf: Record<Target, string> = { A: w.A, B: w.B };
  const named = await clientToken(h, NAMED_SCOPE);
  const wildcard = await clientToken(h, 'system/*.cruds');
  const who: Who[] = [
    ...w.principals.filter((p) => p.name !== 'lab client' && p.name !== 'insurer client'),
    { name: 'named client', token: named.token, scope: named.scope },
    { name: 'wildcard client', token: wildcard.token, scope: wildcard.scope },
  ];
  const byName = (name: string): Who => who.find((p) => p.name === name)!;
  t.equal(who.length, 11, 'admin, 2 doctors, 2 nurses, 2 patients, finance, 3 systems');
  for (const type of TYPE_NAMES) t.ok(resourceDefinition(type)?.storageKind === 'generic', `${type} is a generic type (${resourceDefinition(type)?.category})`);

  const fresh = async (type: string, target: Target): Promise<string> => String((await w.post(type, TYPES[type]!.body(patientOf[target]))).id);
  const of: Record<string, Record<Target, string>> = {};
  for (const type of TYPE_NAMES) of[type] = { A: await fresh(type, 'A'), B: await fresh(type, 'B') };
  const cleanup = async (type: string, id: string) => { await w.inject(h.token, { method: 'DELETE', url: `/fhir/${type}/${id}` }); };

  async function request(p: Who | string, type: string, interaction: PolicyInteraction, id: string, target: Target) {
    switch (interaction) {
      case 'read': return w.inject(p as never, { method: 'GET', url: `/fhir/${type}/${id}` });
      case 'vread': return w.inject(p as never, { method: 'GET', url: `/fhir/${type}/${id}/_history/1` });
      case 'history': return w.inject(p as never, { method: 'GET', url: `/fhir/${type}/${id}/_history` });
      case 'search': return w.inject(p as never, { method: 'GET', url: `/fhir/${type}?_id=${id}` });
      case 'delete': return w.inject(p as never, { method: 'DELETE', url: `/fhir/${type}/${id}` });
      case 'create': return w.inject(p as never, { method: 'POST', url: `/fhir/${type}`, payload: TYPES[type]!.body(patientOf[target]) });
      case 'update': {
        const current = (await w.inject(h.token, { method: 'GET', url: `/fhir/${type}/${id}` })).json() as J;
        const body: J = current.resourceType === type ? current : { ...TYPES[type]!.body(patientOf[target]), id };
        delete body.meta;
        TYPES[type]!.change(body);
        return w.inject(p as never, { method: 'PUT', url: `/fhir/${type}/${id}`, payload: body });
      }
    }
  }

  /** The answer for an id that does not exist, with the probe's id put in: what an out-of-reach 404 must equal. */
  async function missingAnswer(p: Who, type: string, interaction: PolicyInteraction, id: string): Promise<string> {
    const ghost = randomUUID();
    const res = interaction === 'update'
      ? await w.inject(p as never, { method: 'PUT', url: `/fhir/${type}/${ghost}`, payload: { ...TYPES[type]!.body(w.A), id: ghost } })
      : await request(p, type, interaction, ghost, 'A');
    return `${res.statusCode} ${res.body.split(ghost).join(id)}`;
  }

  const answers = new Map<string, number | 'absent' | 'present'>();
  let probes = 0;
  let mismatched = 0;
  for (const p of who) {
    await t.test(p.name, async (t) => {
      for (const type of TYPE_NAMES) {
        for (const interaction of INTERACTIONS) {
          for (const target of ['A', 'B'] as const) {
            const want = expected(p, type, interaction, target);
            const destructive = interaction === 'delete';
            const id = destructive ? await fresh(type, target) : of[type]![target];
            const res = await request(p, type, interaction, id, target);
            const found = res.statusCode === 200 && interaction === 'search' ? (((res.json().entry ?? []) as J[]).some((e) => e.resource?.id === id) ? 'present' : 'absent') : undefined;
            answers.set(`${p.name} ${type} ${interaction} ${target}`, found ?? res.statusCode);
            let ok: boolean;
            if (want === 'allow') ok = res.statusCode === SUCCESS[interaction] && (interaction !== 'search' || found === 'present');
            else if (want === 'absent') ok = found === 'absent';
            else ok = res.statusCode === want;
            if (ok && want === 404) ok = `${res.statusCode} ${res.body}` === await missingAnswer(p, type, interaction, id);
            if (ok && res.statusCode >= 400) ok = res.json().resourceType === 'OperationOutcome';
            probes++;
            if (!ok) mismatched++;
            const label = `${interaction} ${type} of ${target}: ${want}`;
            if (ok) t.pass(label);
            else t.fail(label, { got: res.statusCode, body: res.body.slice(0, 400) });
            if (interaction === 'create' && res.statusCode === 201) await cleanup(type, String(res.json().id));
            if (destructive) await cleanup(type, id);
          }
        }
      }
    });
  }
  t.test('the policy as the issue states it (by hand)', async (t) => {
    for (const [name, type, cells] of BY_HAND) {
      t.ok(byName(name), `${name} is a principal`);
      for (const [interaction, status] of Object.entries(cells)) {
        const got = answers.get(`${name} ${type} ${interaction} A`);
        t.equal(got, status === 200 && interaction === 'search' ? 'present' : status, `${name} ${interaction} ${type} of A: ${status}`);
      }
    }
  });
  t.test('summary', async (t) => {
    t.equal(probes, who.length * TYPE_NAMES.length * INTERACTIONS.length * 2, `${probes} probes ran`);
    t.equal(mismatched, 0, `${mismatched} of ${probes} probes answered otherwise than the policy says`);
  });

  t.test('a doctor\'s search returns only assigned patients\' Immunizations', async (t) => {
    const more = { A: await fresh('Immunization', 'A'), B: await fresh('Immunization', 'B') };
    const doctor = byName('assigned doctor');
    const res = await w.inject(doctor as never, { method: 'GET', url: '/fhir/Immunization?_count=1000' });
    t.equal(res.statusCode, 200);
    const entries = (res.json().entry ?? []) as J[];
    const ids = entries.map((e) => e.resource.id as string);
    t.ok(ids.includes(of.Immunization!.A) && ids.includes(more.A), 'A\'s Immunizations are found');
    t.notOk(ids.includes(of.Immunization!.B) || ids.includes(more.B), 'B\'s are not');
    t.ok(entries.every((e) => e.resource.patient.reference === `Patient/${w.A}`), 'every Immunization found is A\'s');
    const byB = await w.inject(doctor as never, { method: 'GET', url: `/fhir/Immunization?patient=Patient/${w.B}&_total=accurate` });
    t.equal(byB.statusCode, 200);
    t.equal((byB.json().entry ?? []).length, 0, 'a search by B finds nothing');
    if (byB.json().total !== undefined) t.equal(byB.json().total, 0, 'and counts nothing');
    const nurseU = await w.inject(byName('unassigned nurse') as never, { method: 'GET', url: '/fhir/Immunization?_count=1000' });
    t.equal((nurseU.json().entry ?? []).length, 0, 'an unassigned nurse finds none');
    const admin = await w.inject(h.token, { method: 'GET', url: `/fhir/Immunization?patient=Patient/${w.B}` });
    t.ok(((admin.json().entry ?? []) as J[]).some((e) => e.resource.id === more.B), 'admins find B\'s');
  });

  t.test('Patient/$everything as a patient does not leak another patient\'s generic data', async (t) => {
    // a Communication about B, sent to A: in both compartments by R4, tied to B (its subject) by the store
    const aboutB = String((await w.post('Communication', {
      resourceType: 'Communication', status: 'completed', subject: { reference: `Patient/${w.B}` }, recipient: [{ reference: `Patient/${w.A}` }],
      payload: [{ contentString: 'results of B' }],
    })).id);
    const patientA = byName('patient A');
    const everything = async (p: Who, patient: string) => {
      const found: J[] = [];
      let url: string | undefined = `/fhir/Patient/${patient}/$everything?_count=50`;
      while (url) {
        const res = await w.inject(p as never, { method: 'GET', url });
        if (res.statusCode !== 200) return { status: res.statusCode, found };
        found.push(...((res.json().entry ?? []) as J[]).map((e) => e.resource));
        const next = ((res.json().link ?? []) as J[]).find((l) => l.relation === 'next')?.url as string | undefined;
        url = next ? next.replace(/^https?:\/\/[^/]+/, '') : undefined;
      }
      return { status: 200, found };
    };
    const own = await everything(patientA, w.A);
    t.equal(own.status, 200);
    const ids = new Set(own.found.map((r) => `${r.resourceType}/${r.id}`));
    t.ok(ids.has(`Immunization/${of.Immunization!.A}`), 'A\'s Immunization is in A\'s $everything');
    t.ok(ids.has(`Account/${of.Account!.A}`), 'A\'s Account too');
    for (const type of ['Immunization', 'Account', 'Group'] as const) t.notOk(ids.has(`${type}/${of[type]!.B}`), `B's ${type} is not`);
    t.notOk(ids.has(`Group/${of.Group!.A}`), 'a Group naming A is restricted: not in A\'s $everything either');
    t.notOk(ids.has(`Communication/${aboutB}`), 'a Communication about B sent to A is not');
    t.notOk(JSON.stringify(own.found).includes(w.B), 'nothing in it names B');
    t.equal((await everything(patientA, w.B)).status, 404, 'B\'s $everything is 404 to patient A');
    const asB = await everything(byName('patient B'), w.B);
    t.ok(asB.found.some((r) => r.resourceType === 'Communication' && r.id === aboutB), 'the Communication is in B\'s own $everything');
    t.notOk(asB.found.some((r) => r.resourceType === 'Immunization' && r.id === of.Immunization!.A), 'A\'s Immunization is not in B\'s');
    const doctor = await everything(byName('assigned doctor'), w.A);
    t.ok(doctor.found.some((r) => r.resourceType === 'Immunization' && r.id === of.Immunization!.A), 'the assigned doctor sees A\'s Immunization in A\'s $everything');
    t.notOk(doctor.found.some((r) => r.resourceType === 'Communication' && r.id === aboutB), 'but not B\'s Communication');
    t.equal((await everything(byName('finance'), w.A)).found.filter((r) => r.resourceType === 'Immunization').length, 0, 'finance gets no Immunization in $everything');
  });

  t.test('the CapabilityStatement names each generic type\'s category', async (t) => {
    const res = await w.inject(h.token, { method: 'GET', url: '/fhir/metadata' });
    const resources = (res.json().rest[0].resource ?? []) as J[];
    const doc = (type: string) => String(resources.find((r) => r.type === type)?.documentation ?? '');
    t.match(doc('Immunization'), /Access \(category clinical, by the patient it names\)/);
    t.match(doc('Account'), /Access \(category financial, by the patient it names\)/);
    t.match(doc('InsurancePlan'), /Access \(category financial, naming no patient\)/);
    t.match(doc('Organization'), /Access \(category directory, naming no patient\)/);
    t.match(doc('Questionnaire'), /Access \(category definitional/);
    t.match(doc('Binary'), /Access \(category restricted.*systems: scopes naming the type \(not system\/\*\)/);
    t.notMatch(doc('Condition'), /Access \(category/, 'a table-backed type has rules of its own');
  });
});
