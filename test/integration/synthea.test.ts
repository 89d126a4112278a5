/**
 * The Synthea records in test/fixtures/synthea: every Patient, Encounter, Condition, Observation
 * and MedicationRequest is created one by one through the API (urn:uuid references rewritten to
 * the ids HMS gave, practitioners mapped onto one clinician: Synthea's have no email, which a
 * Practitioner needs) and reads back unchanged.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { testApp } from '../helpers/app.js';
import { makeClinician } from '../helpers/world.js';
import { withoutIdAndMeta } from '../helpers/fixtures.js';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'synthea');
const TYPES = ['Patient', 'Encounter', 'Condition', 'Observation', 'MedicationRequest'];

type Json = Record<string, unknown>;
interface BundleEntry { fullUrl: string; resource: Json }

/** A copy with every reference that names a key of `ids` replaced by its value. */
function rewrite(value: unknown, ids: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, ids));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'reference' && typeof v === 'string' && ids.has(v) ? ids.get(v) : rewrite(v, ids)]));
  }
  return value;
}

t.test('Synthea records: created one by one, read back unchanged', async (t) => {
  const h = await testApp(t);
  const clinician = await makeClinician(h, 'doctor');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const bundle = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { entry: BundleEntry[] };
    const ids = new Map<string, string>();
    for (const e of bundle.entry) if (e.resource.resourceType === 'Practitioner') ids.set(e.fullUrl, `Practitioner/${clinician}`);
    const counts: Record<string, number> = {};
    const failures: string[] = [];
    for (const type of TYPES) {
      for (const e of bundle.entry.filter((x) => x.resource.resourceType === type)) {
        const { id: _id, ...body } = rewrite(e.resource, ids) as Json;
        const created = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: body });
        if (created.statusCode !== 201) { failures.push(`${type} ${String(e.resource.id)}: ${created.statusCode} ${created.body.slice(0, 300)}`); continue; }
        const id = created.json().id as string;
        ids.set(e.fullUrl, `${type}/${id}`);
        const read = await h.fhir({ method: 'GET', url: `/fhir/${type}/${id}` });
        const same = isDeepStrictEqual(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
        if (read.statusCode !== 200 || !same) {
          failures.push(`${type} ${String(e.resource.id)} reads back differently:\n sent ${JSON.stringify(withoutIdAndMeta(body)).slice(0, 600)}\n read ${JSON.stringify(withoutIdAndMeta(read.json())).slice(0, 600)}`);
        }
        counts[type] = (counts[type] ?? 0) + 1;
      }
    }
    t.same(failures, [], `${file}: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }
});
