/**
 * The authorization matrix, generated from the policy table (src/auth/policy.ts) and the registry:
 * every principal x every resource type x every interaction (read, vread, search, create, update,
 * delete, history), on patient A's data and patient B's, through HTTP on the real database. The
 * expected answer of each probe is derived from the policy, never written by hand:
 * 405 when the type has no such interaction, 403 when the principal's role (or scopes) never has
 * it, 404 (422 for a create, a search without the resource) when the resource is out of reach,
 * else success. A 404 must be byte for byte the answer for an id that does not exist.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { bodies, buildWorld, makePractitioner, NOTES_EXTENSION, type Principal } from '../helpers/access-world.js';
import { makePatient } from '../helpers/world.js';
import { POLICY_INTERACTIONS, roleRule, systemRule, type PolicyInteraction, type Rule } from '../../src/auth/policy.js';
import { parseScopes, scopesAllow } from '../../src/auth/scopes.js';
import { resourceDefinition } from '../../src/fhir/registry.js';
import { REGISTRY_INTERACTION } from '../../src/fhir/access.js';
import '../../src/fhir/resources/index.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Expected = 'allow' | 'absent' | 403 | 404 | 405 | 422;

const KINDS = [
  'Patient', 'Practitioner', 'PractitionerRole', 'Appointment', 'Encounter', 'Condition', 'MedicationRequest', 'Observation (vital sign)',
  'Observation (laboratory)', 'ServiceRequest', 'DiagnosticReport', 'Invoice', 'Coverage', 'CareTeam', 'AuditEvent',
] as const;
type Kind = (typeof KINDS)[number];
const typeOf = (kind: Kind): string => kind.split(' ')[0]!;


/** The rule the policy gives a principal. */
function ruleOf(p: Principal, type: string, interaction: PolicyInteraction): Rule | undefined {
  if (p.role) return roleRule(p.role, type, interaction);
  const scopes = parseScopes(p.scope!).scopes;
  return systemRule(type, interaction, (ty, perm) => scopesAllow(scopes, ty, perm));
}

/** The kinds of a type's subsets (the policy's `only`). */
const SUBSET_KINDS: Record<string, Kind[]> = { 'vital-signs': ['Observation (vital sign)'] };

/** What the policy says a probe answers. */
function expected(p: Principal, kind: Kind, interaction: PolicyInteraction, target: 'A' | 'B'): Expected {
  const type = typeOf(kind);
  if (!resourceDefinition(type)!.interactions.includes(REGISTRY_INTERACTION[interaction])) return 405;
  const rule = ruleOf(p, type, interaction);
  if (!rule) return 403;
  const outsideSubset = !!rule.only && !SUBSET_KINDS[rule.only]!.includes(kind);
  // a body of another subset is refused before anything is looked up; a stored one only once it is in reach
  if (outsideSubset && interaction === 'create') return 403;
  let reached: boolean;
  switch (rule.reach) {
    case 'all': reached = true; break;
    case 'assigned': reached = !!p.assignedToA && target === 'A'; break;
    // patient A's record is A's, and names A's doctor; B's likewise
    case 'own': case 'own-clinicians': reached = (p.name === 'patient A' && target === 'A') || (p.name === 'patient B' && target === 'B'); break;
  }
  if (reached) return outsideSubset ? 403 : 'allow';
  return interaction === 'search' ? 'absent' : interaction === 'create' ? 422 : 404;
}

const SUCCESS: Record<PolicyInteraction, number> = { read: 200, vread: 200, search: 200, history: 200, create: 201, update: 200, delete: 204 };

t.test('authorization matrix: every principal x type x interaction, on A and on B, as the policy says', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const { A, B } = w;
  const patientOf = { A, B };
  const doctorOf = { A: w.doctorA, B: w.doctorB };
  let probes = 0;
  let mismatched = 0;

  /** A fresh resource of a kind of a patient (for probes that change or remove it), made as admin. */
  async function fresh(kind: Kind, target: 'A' | 'B', order = 3): Promise<string> {
    const type = typeOf(kind);
    if (type === 'Patient') return makePatient(w.h, undefined, { generalPractitioner: [{ reference: `Practitioner/${doctorOf[target]}` }] });
    if (type === 'Practitioner') return makePractitioner(w.h);
    const make = bodies[kind as keyof typeof bodies];
    return String((await w.post(type, (make as (p: string, d: string, o?: number) => J)(patientOf[target], doctorOf[target], order))).id);
  }
  /** Removes what a probe left (as admin). */
  const cleanup = async (type: string, id: string) => { await w.inject(h.token, { method: 'DELETE', url: `/fhir/${type}/${id}` }); };

  /** The request of a probe on a resource id. */
  async function request(p: Principal, kind: Kind, interaction: PolicyInteraction, id: string, target: 'A' | 'B') {
    const type = typeOf(kind);
    switch (interaction) {
      case 'read': return w.inject(p, { method: 'GET', url: `/fhir/${type}/${id}` });
      case 'vread': return w.inject(p, { method: 'GET', url: `/fhir/${type}/${id}/_history/1` });
      case 'history': return w.inject(p, { method: 'GET', url: `/fhir/${type}/${id}/_history` });
      case 'search': return w.inject(p, { method: 'GET', url: `/fhir/${type}?_id=${id}` });
      case 'delete': return w.inject(p, { method: 'DELETE', url: `/fhir/${type}/${id}` });
      case 'update': {
        const current = (await w.inject(h.token, { method: 'GET', url: `/fhir/${type}/${id}` })).json() as J;
        const body: J = current.resourceType === type ? current : { resourceType: type, id };
        delete body.meta;
        // a change every writer of the type may make: the notes of an encounter, else an identifier
        if (type === 'Encounter') body.extension = [{ url: NOTES_EXTENSION, valueString: `notes ${randomUUID()}` }];
        else body.identifier = [{ system: 'urn:hms:matrix', value: randomUUID() }];
        return w.inject(p, { method: 'PUT', url: `/fhir/${type}/${id}`, payload: body });
      }
      case 'create': {
        const make = bodies[kind as keyof typeof bodies] as ((p: string, d: string, o?: number) => J) | undefined;
        const body = type === 'Patient' ? { resourceType: 'Patient', name: [{ family: `Created${randomUUID().slice(0, 6)}` }], gender: 'male', birthDate: '1980-01-01' }
          : type === 'Practitioner' ? { resourceType: 'Practitioner', name: [{ family: 'New' }], telecom: [{ system: 'email', value: `new-${randomUUID()}@test.example.org` }] }
          : make ? make(patientOf[target], doctorOf[target], 2) : { resourceType: type };
        return w.inject(p, { method: 'POST', url: `/fhir/${type}`, payload: body });
      }
    }
  }

  /** The answer for an id that does not exist, with the probe's id put in: what an out-of-reach 404 must equal. */
  async function missingAnswer(p: Principal, kind: Kind, interaction: PolicyInteraction, id: string): Promise<string> {
    const ghost = randomUUID();
    const type = typeOf(kind);
    const res = interaction === 'update'
      ? await w.inject(p, { method: 'PUT', url: `/fhir/${type}/${ghost}`, payload: { ...((bodies[kind as keyof typeof bodies] as ((a: string, b: string) => J) | undefined)?.(A, w.doctorA) ?? { resourceType: type }), id: ghost } })
      : await request(p, kind, interaction, ghost, 'A');
    return `${res.statusCode} ${res.body.split(ghost).join(id)}`;
  }

  for (const p of w.principals) {
    t.test(p.name, async (t) => {
      for (const kind of KINDS) {
        for (const interaction of POLICY_INTERACTIONS) {
          // creating a Patient or a Practitioner is not on A's or B's data: probed once
          const targets: ('A' | 'B')[] = interaction === 'create' && (kind === 'Patient' || kind === 'Practitioner') ? ['A'] : ['A', 'B'];
          for (const target of targets) {
            const want = expected(p, kind, interaction, target);
            const type = typeOf(kind);
            const destructive = interaction === 'delete' && want !== 405;
            const id = destructive ? await fresh(kind, target) : w.of[kind]![target];
            const res = await request(p, kind, interaction, id, target);
            const label = `${interaction} ${kind} of ${target}: ${want}`;
            let ok: boolean;
            if (want === 'allow') ok = res.statusCode === SUCCESS[interaction];
            else if (want === 'absent') ok = res.statusCode === 200 && !((res.json().entry ?? []) as J[]).some((e) => e.resource?.id === id);
            else ok = res.statusCode === want;
            if (ok && want === 'allow' && interaction === 'search') ok = ((res.json().entry ?? []) as J[]).some((e) => e.resource?.id === id);
            if (ok && want === 404) ok = `${res.statusCode} ${res.body}` === await missingAnswer(p, kind, interaction, id);
            if (ok && res.statusCode >= 400) ok = res.json().resourceType === 'OperationOutcome';
            probes++;
            if (!ok) mismatched++;
            if (ok) t.pass(label);
            else t.fail(label, { got: res.statusCode, body: res.body.slice(0, 400) });
            if (interaction === 'create' && res.statusCode === 201) await cleanup(type, String(res.json().id));
            if (destructive) await cleanup(type, id);
          }
        }
      }
    });
  }
  t.teardown(() => { console.log(`# authorization matrix: ${probes} probes, ${mismatched} mismatched`); });
  t.test('summary', async (t) => {
    t.ok(probes > 2000, `${probes} probes ran`);
    t.equal(mismatched, 0, `${mismatched} of ${probes} probes answered otherwise than the policy says`);
  });
});
