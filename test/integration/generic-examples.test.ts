/**
 * Every official R4 example in test/fixtures/r4 of a type the generic store holds (decided by the
 * registry: storageKind 'generic'; today Organization-hl7 and the Bundles bundle-transaction and
 * lipids, stored as Bundle resources) is created through the API, read back unchanged apart from
 * id and meta, found by standard search parameters (chosen from its own values, and then every
 * parameter of the type that has a value in it, as the index extracted it), and found in the
 * $everything of the patient it names when its type is in the Patient compartment.
 *
 * References of an example to resources that do not exist here would be refused (422, by
 * design): each is pointed at a resource created for it first. A reference to an entry of the
 * same Bundle (Bundle-lipids' DiagnosticReport names its Observations, all name Patient/pat2)
 * gets that entry, created on its own, as target; any other gets a Patient, a clinician, or a
 * minimal resource of its type. The example as it is is offered first: when HMS takes it (it does
 * not check the references inside a Bundle's entries, which R4 resolves against their fullUrl), it
 * is the one tested, unchanged.
 */
import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { testApp, type TestApp } from '../helpers/app.js';
import { makeClinician, makePatient } from '../helpers/world.js';
import { allOfficialExamples, everythingOf, searchToken, searchValue, withoutIdAndMeta } from '../helpers/fixtures.js';
import '../../src/fhir/resources/index.js';
import { resourceDefinition, type IndexSearchParam, type IndexValue, type TokenValue } from '../../src/fhir/registry.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A minimal valid resource of a type, for a reference no example entry answers. */
const MINIMAL: Record<string, () => Json> = {
  Organization: () => ({ resourceType: 'Organization', name: 'A referenced organization' }),
  Endpoint: () => ({
    resourceType: 'Endpoint', status: 'active', address: 'https://endpoint.example.org/fhir',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
    payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'any' }] }],
  }),
  Location: () => ({ resourceType: 'Location', name: 'A referenced location' }),
};

/** The relative references (`Type/id`, to a type HMS stores) anywhere in a value, nested resources included. */
function localReferences(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) localReferences(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') {
        const m = v.match(/^([A-Z][A-Za-z]+)\/([^/]+)$/);
        if (m && resourceDefinition(m[1]!)) out.add(v);
      } else localReferences(v, out);
    }
  }
  return out;
}

function rewrite(value: unknown, ids: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, ids));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'reference' && typeof v === 'string' && ids.has(v) ? ids.get(v) : rewrite(v, ids)]));
  }
  return value;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The query string (parameter and value) that must match an indexed value. */
function queryFor(name: string, type: string, v: IndexValue): string | undefined {
  const q = (value: string): string => `${name}=${encodeURIComponent(value)}`;
  switch (type) {
    case 'string': case 'uri': return typeof v === 'string' ? q(searchValue(v)) : undefined;
    case 'reference': return typeof v === 'string' ? q(v) : undefined;
    case 'token': return typeof v === 'string' ? q(searchValue(v)) : typeof v === 'object' && 'code' in v ? q(searchToken(v as TokenValue)) : undefined;
    case 'number': return typeof v === 'number' ? q(String(v)) : undefined;
    case 'date': return typeof v === 'object' && 'low' in v ? `${q(`ge${iso(v.low)}`)}&${q(`lt${iso(v.high)}`)}` : undefined;
    case 'quantity': return typeof v === 'object' && 'value' in v ? q(`${v.value}|${v.system ? searchValue(v.system) : ''}|${v.code ? searchValue(v.code) : ''}`) : undefined;
    default: return undefined;
  }
}

/** Searches chosen from an example's own values (not from the index), per type; others fall back on the indexed ones. */
const OWN_SEARCHES: Record<string, (r: Json) => string[]> = {
  Organization: (r) => [
    ...(r.name ? [`name=${encodeURIComponent(searchValue(r.name))}`] : []),
    ...(r.alias ?? []).map((a: string) => `name=${encodeURIComponent(searchValue(a))}`),
    ...(r.address ?? []).flatMap((a: Json) => [a.city && `address-city=${encodeURIComponent(searchValue(a.city))}`, a.postalCode && `address-postalcode=${encodeURIComponent(searchValue(a.postalCode))}`].filter(Boolean)),
    ...(r.identifier ?? []).map((i: Json) => `identifier=${encodeURIComponent(searchToken(i))}`),
  ],
  Bundle: (r) => [
    [`type=${r.type}`, ...(r.identifier ? [`identifier=${encodeURIComponent(searchToken(r.identifier))}`] : []), ...(r.timestamp ? [`timestamp=${encodeURIComponent(r.timestamp)}`] : [])].join('&'),
  ],
};

async function matches(h: TestApp, url: string): Promise<string[] | string> {
  // strict: a parameter HMS would ignore is an error, not a search that matches everything
  const res = await h.fhir({ method: 'GET', url, headers: { prefer: 'handling=strict' } });
  if (res.statusCode !== 200) return `${res.statusCode} ${res.body.slice(0, 300)}`;
  return ((res.json().entry ?? []) as { resource: { id: string }; search: { mode: string } }[]).filter((e) => e.search.mode === 'match').map((e) => e.resource.id);
}

t.test('official R4 examples of the generic store\'s types', async (t) => {
  const h = await testApp(t);
  const examples = allOfficialExamples().filter((e) => resourceDefinition(String(e.resource.resourceType))?.storageKind === 'generic');
  t.ok(examples.length >= 3, `${examples.length} examples: ${examples.map((e) => e.name).join(', ')}`);

  for (const { name, resource } of examples) {
    await t.test(name, async (t) => {
      const type = String(resource.resourceType);
      const def = resourceDefinition(type)!;
      const { id: _id, ...asItIs } = resource;
      const refs = localReferences(resource);
      // as it is first: a reference HMS does not check (one inside a Bundle's entry) is kept
      const plain = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: asItIs });
      t.comment(`as it is (${refs.size} local references: ${[...refs].join(', ') || 'none'}): ${plain.statusCode}${plain.statusCode === 201 ? '' : ` ${plain.body.slice(0, 300)}`}`);
      let body = asItIs as Json;
      let created = plain;
      if (plain.statusCode === 422 && refs.size > 0) {
        // refused for a reference to a resource that does not exist (by design): a target for each, created first
        const ids = new Map<string, string>();
        const entries = ((resource.entry ?? []) as Json[]).filter((e) => e.resource && typeof e.fullUrl === 'string');
        const resolve = async (ref: string, seen: string[]): Promise<void> => {
          if (ids.has(ref)) return;
          if (seen.includes(ref)) throw new Error(`a reference cycle: ${[...seen, ref].join(' -> ')}`);
          const [rtype] = ref.split('/') as [string];
          const entry = entries.find((e) => (e.fullUrl as string).endsWith(`/${ref}`) && e.resource.resourceType === rtype);
          let local: string;
          if (entry) {
            for (const r of localReferences(entry.resource)) await resolve(r, [...seen, ref]);
            const { id: _eid, ...entryBody } = rewrite(entry.resource, ids) as Json;
            const res = await h.fhir({ method: 'POST', url: `/fhir/${rtype}`, payload: entryBody });
            if (res.statusCode !== 201) throw new Error(`creating ${ref} from its entry: ${res.statusCode} ${res.body}`);
            local = `${rtype}/${String(res.json().id)}`;
          } else if (rtype === 'Patient') local = `Patient/${await makePatient(h)}`;
          else if (rtype === 'Practitioner') local = `Practitioner/${await makeClinician(h)}`;
          else if (MINIMAL[rtype]) {
            const res = await h.fhir({ method: 'POST', url: `/fhir/${rtype}`, payload: MINIMAL[rtype]() });
            if (res.statusCode !== 201) throw new Error(`creating a ${rtype} for ${ref}: ${res.statusCode} ${res.body}`);
            local = `${rtype}/${String(res.json().id)}`;
          } else throw new Error(`no target for ${ref}: add a minimal ${rtype} to this test`);
          ids.set(ref, local);
        };
        for (const r of refs) await resolve(r, []);
        t.comment(`targets: ${[...ids].map(([a, b]) => `${a} -> ${b}`).join(', ')}`);
        body = rewrite(asItIs, ids) as Json;
        created = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: body });
      }
      t.equal(created.statusCode, 201, `created: ${created.body.slice(0, 300)}`);
      if (created.statusCode !== 201) return;
      const id = created.json().id as string;
      const read = await h.fhir({ method: 'GET', url: `/fhir/${type}/${id}` });
      t.equal(read.statusCode, 200);
      t.ok(isDeepStrictEqual(withoutIdAndMeta(read.json()), withoutIdAndMeta(body)), 'reads back unchanged apart from id and meta');
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));

      // searches from its own values
      const own = OWN_SEARCHES[type]?.(body) ?? [];
      for (const q of own) {
        const url = `/fhir/${type}?${q}&_count=100`;
        const found = await matches(h, url);
        t.ok(Array.isArray(found) && found.includes(id), `GET ${url} finds it${typeof found === 'string' ? `: ${found}` : ''}`);
      }
      // every standard parameter with a value in it, as the index holds it
      const used: string[] = [];
      for (const p of def.searchParams.filter((p) => p.source === 'index')) {
        for (const v of p.extract(body as never)) {
          const q = queryFor(p.name, p.type, v);
          if (!q) continue;
          const url = `/fhir/${type}?${q}&_count=100`;
          const found = await matches(h, url);
          t.ok(Array.isArray(found) && found.includes(id), `GET ${url} finds it${typeof found === 'string' ? `: ${found}` : ''}`);
          used.push(p.name);
        }
      }
      t.ok(own.length + used.length > 0, `found by at least one standard parameter (own values: ${own.length}; indexed: ${[...new Set(used)].join(', ')})`);

      // $everything, when the type is in the Patient compartment and the example names a patient
      const compartmentParams = def.searchParams.filter((p): p is IndexSearchParam => p.source === 'index' && (def.compartment ?? []).includes(p.name));
      const patients = compartmentParams.flatMap((p) => p.extract(body as never))
        .filter((v): v is string => typeof v === 'string' && v.startsWith('Patient/')).map((v) => v.slice('Patient/'.length));
      if (!def.compartment?.length) t.comment(`${type} is not in the Patient compartment (R4): no $everything to look in${localReferences(body).size && [...localReferences(body)].some((v) => v.startsWith('Patient/')) ? ' (it names a patient in its entries)' : ''}`);
      for (const patient of new Set(patients)) {
        const got = await everythingOf(h, patient, 200);
        t.ok(typeof got !== 'string' && got.matches.includes(`${type}/${id}`), `in Patient/${patient}/$everything${typeof got === 'string' ? `: ${got}` : ''}`);
      }
    });
  }
});
