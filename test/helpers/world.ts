/**
 * Building blocks for tests of resources that refer to others: a patient (through the API), a
 * clinician (a users row: Practitioner is served over users), and a rewrite of an example's
 * references onto them.
 */
import { randomUUID } from 'node:crypto';
import type { TestApp } from './app.js';
import { resourceDefinition } from '../../src/fhir/registry.js';

export const unique = (): string => randomUUID().slice(0, 8);

/** Creates a Patient through the API and returns its id. */
export async function makePatient(h: TestApp, family = `Fam${unique()}`, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await h.fhir({
    method: 'POST', url: '/fhir/Patient',
    payload: { resourceType: 'Patient', name: [{ family, given: ['Test'] }], gender: 'female', birthDate: '1970-01-01', ...extra },
  });
  if (res.statusCode !== 201) throw new Error(`patient create failed: ${res.body}`);
  return res.json().id as string;
}

/** Inserts a clinician (users row, role doctor unless given) and returns its id. */
export async function makeClinician(h: TestApp, role: 'doctor' | 'nurse' = 'doctor', extra: Record<string, unknown> = {}): Promise<string> {
  const id = randomUUID();
  await h.db('users').insert({
    id, email: `${role}-${unique()}@test.example.org`, password_hash: '!', name: `Dr ${unique()}`, role,
    department: 'Cardiology', specialization: 'Cardiology', ...extra,
  });
  return id;
}

/** Where references of an example to resources no test has made are sent: another server, which HMS does not check. */
export const OTHER_SERVER = 'https://other.example.org/fhir';

/**
 * A copy of a resource whose literal references to the given types point at the given ids
 * (e.g. { Patient: p, Practitioner: d }). Other relative references to types HMS stores
 * (Condition/example ...) would be refused as missing, so they point at another server; the
 * rest are left as they are.
 */
export function rewriteReferences<T>(resource: T, targets: Record<string, string>): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === 'reference' && typeof x === 'string') {
          const m = x.match(/^(?:.*\/)?([A-Z][A-Za-z]+)\/[^/]+$/);
          out[k] = m && targets[m[1]!] ? `${m[1]}/${targets[m[1]!]}` : m && resourceDefinition(m[1]!) && !/^[a-z]+:/.test(x) ? `${OTHER_SERVER}/${x}` : x;
        } else out[k] = walk(x);
      }
      return out;
    }
    return v;
  };
  return walk(resource) as T;
}
