/**
 * Whole Synthea records as transaction Bundles (POST /fhir), the way current Synthea exports
 * them: first the hospitalInformation Bundle (Organizations and Locations, each a conditional
 * create on its Synthea identifier) and the practitionerInformation Bundle (Practitioners,
 * conditional on their NPI), then the patient records. Every entry is stored and reads back as
 * sent apart from id, meta and its references, which now name the ids HMS gave (urn:uuid fullUrls
 * and conditional references `Organization?identifier=...` resolved); the hospital and
 * practitioner Bundles sent again change nothing; a transaction with one bad entry writes
 * nothing and names the entry; concurrent conditional creates make one resource.
 *
 * The records: the 12 of test/fixtures/synthea (Synthea's 2019 export: each holds its own
 * Organization and Practitioner entries, plain creates by urn:uuid) and the three rewritten by
 * test/fixtures/synthea-exchange/derive.ts to use conditional references instead. A 2019 record
 * as it is cannot be stored: its Practitioners have no email, which a Practitioner (a user account
 * in HMS) needs; that is the bad entry. To store them, each Organization and Practitioner entry is
 * given the conditional create (and the email) current Synthea's shared bundles carry, so it
 * matches the one the hospital/practitioner Bundle stored (200) rather than making a second.
 *
 * The database may be shared with other test files (CI, MariaDB) that stored the same Synthea
 * organizations: the Synthea identifiers, NPIs and emails are made unique to this run.
 */
import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { randomBytes, randomUUID } from 'node:crypto';
import { testApp, type TestApp } from '../helpers/app.js';
import { withoutIdAndMeta } from '../helpers/fixtures.js';
import {
  SYNTHEA_SYSTEM as SYNTHEA, criteriaOf, storable, syntheaExchange, type Entry, type TransactionBundle as Bundle,
} from '../fixtures/synthea-exchange/records.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Answer { status: string; location?: string; etag?: string; outcome?: Json }

/** A copy with every reference rewritten by `to` (undefined: left as it is). */
function rewrite(value: unknown, to: (ref: string) => string | undefined): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, to));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'reference' && typeof v === 'string' ? (to(v) ?? v) : rewrite(v, to)]));
  }
  return value;
}

/** `Type/id` of a response location (absolute or relative, with or without _history). */
function located(location: string | undefined): string | undefined {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(location ?? '');
  return m ? `${m[1]}/${m[2]}` : undefined;
}

async function total(h: TestApp, type: string): Promise<number> {
  const res = await h.fhir({ method: 'GET', url: `/fhir/${type}?_summary=count` });
  if (res.statusCode !== 200) throw new Error(`counting ${type}: ${res.statusCode} ${res.body.slice(0, 300)}`);
  return Number(res.json().total);
}

async function totals(h: TestApp, types: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const type of types) out[type] = await total(h, type);
  return out;
}

const typesOf = (b: Bundle): string[] => [...new Set(b.entry.map((e) => String(e.resource.resourceType)))].sort();
const countByType = (types: string[]): Record<string, number> => types.reduce<Record<string, number>>((c, k) => ({ ...c, [k]: (c[k] ?? 0) + 1 }), {});

async function postTransaction(h: TestApp, bundle: Bundle): Promise<{ status: number; body: Json }> {
  const res = await h.fhir({ method: 'POST', url: '/fhir', payload: bundle });
  return { status: res.statusCode, body: res.json() as Json };
}

/**
 * Checks a transaction's answers: entry i answered `expect(i)` (201 or 200) with a location; then
 * reads each entry's resource back: as sent apart from id and meta, with its references rewritten
 * (urn:uuid fullUrls to the locations of this bundle, conditional ones through `known`).
 * Returns the failures and `fullUrl -> Type/id`.
 */
async function verify(h: TestApp, bundle: Bundle, answer: Json, expect: (e: Entry) => 201 | 200, known: Map<string, string>): Promise<{ failures: string[]; ids: Map<string, string> }> {
  const failures: string[] = [];
  const ids = new Map<string, string>();
  const answers = (answer.entry ?? []) as { response?: Answer }[];
  if (answer.type !== 'transaction-response') failures.push(`answered a ${String(answer.type)} Bundle`);
  if (answers.length !== bundle.entry.length) failures.push(`${answers.length} answers to ${bundle.entry.length} entries`);
  bundle.entry.forEach((e, i) => {
    const res = answers[i]?.response;
    const want = expect(e);
    const at = located(res?.location);
    if (!res || !res.status.startsWith(String(want)) || !at) failures.push(`entry ${i} (${String(e.resource.resourceType)}): ${JSON.stringify(res)} (expected ${want} with a location)`);
    else if (!at.startsWith(`${String(e.resource.resourceType)}/`)) failures.push(`entry ${i}: location ${String(res.location)} is not a ${String(e.resource.resourceType)}`);
    if (at && e.fullUrl) ids.set(e.fullUrl, at);
  });
  const to = (r: string): string | undefined => ids.get(r) ?? known.get(r);
  const work = bundle.entry.map((e, i) => ({ e, i, at: ids.get(e.fullUrl ?? '') ?? located(answers[i]?.response?.location) })).filter((w) => w.at);
  for (let k = 0; k < work.length; k += 8) {
    await Promise.all(work.slice(k, k + 8).map(async ({ e, i, at }) => {
      const res = await h.fhir({ method: 'GET', url: `/fhir/${at!}` });
      const expected = withoutIdAndMeta(rewrite(e.resource, to) as Json);
      const unresolved = JSON.stringify(expected).match(/"reference":"(urn:uuid:[^"]+|[A-Za-z]+\?[^"]+)"/);
      if (unresolved) failures.push(`entry ${i}: the test cannot resolve ${unresolved[1]}`);
      if (res.statusCode !== 200) failures.push(`entry ${i}: GET ${at!} answers ${res.statusCode}`);
      else if (!isDeepStrictEqual(withoutIdAndMeta(res.json()), expected)) {
        failures.push(`entry ${i} (${at!}) reads back differently:\n sent ${JSON.stringify(expected).slice(0, 700)}\n read ${JSON.stringify(withoutIdAndMeta(res.json())).slice(0, 700)}`);
      }
    }));
  }
  return { failures, ids };
}

// about 2,800 entries stored and read back: 20-40 s; room on a loaded machine
t.setTimeout(240_000);

t.test('Synthea transaction Bundles: hospitals and practitioners first, then whole records', async (t) => {
  const h = await testApp(t);
  // unique to this run: the database may hold the same Synthea organizations from other test files
  const { hospital, practitioner, originals, rewritten } = syntheaExchange(randomBytes(4).toString('hex'));
  /** conditional reference (`Organization?identifier=...`) -> `Type/id` of what the shared bundles stored */
  const shared = new Map<string, string>();
  const started = Date.now();
  t.afterEach(() => { t.comment(`${((Date.now() - started) / 1000).toFixed(1)} s so far`); });

  await t.test('a 2019 record as it is is refused whole: nothing written, the OperationOutcome names the Practitioner entry', async (t) => {
    const { file, bundle } = originals.find((o) => o.file.startsWith('Stanley_'))!;
    const bad = bundle.entry.findIndex((e) => e.resource.resourceType === 'Practitioner');
    const org = bundle.entry.find((e) => e.resource.resourceType === 'Organization')!.resource;
    t.ok(bad > bundle.entry.findIndex((e) => e.resource.resourceType === 'Organization'), `${file}: entries before the bad one (${bad}) would be written`);
    const types = typesOf(bundle);
    const before = await totals(h, types);
    const res = await postTransaction(h, bundle);
    t.equal(res.status, 422, `422 (a Practitioner needs an email): ${JSON.stringify(res.body).slice(0, 400)}`);
    t.equal(res.body.resourceType, 'OperationOutcome');
    const said = JSON.stringify(res.body.issue);
    t.match(said, new RegExp(`entry\\D{0,3}${bad}\\b`), `names entry ${bad}`);
    t.match(said, /email/i, 'and why');
    t.same(await totals(h, types), before, 'no resource of any of its types written');
    const orgs = await h.fhir({ method: 'GET', url: `/fhir/Organization?identifier=${encodeURIComponent(`${SYNTHEA}|${String(org.identifier[0].value)}`)}` });
    t.equal(orgs.json().total ?? orgs.json().entry?.length ?? 0, 0, 'its Organization (entry before the bad one) is not there');
  });

  await t.test('hospitalInformation and practitionerInformation: every entry created', async (t) => {
    for (const [name, bundle] of [['hospitalInformation', hospital], ['practitionerInformation', practitioner]] as const) {
      const res = await postTransaction(h, bundle);
      t.equal(res.status, 200, `${name}: 200 ${res.status === 200 ? '' : JSON.stringify(res.body).slice(0, 400)}`);
      if (res.status !== 200) continue;
      const { failures, ids } = await verify(h, bundle, res.body, () => 201, shared);
      t.same(failures.slice(0, 10), [], `${name}: each entry 201 with a location, read back as sent (${failures.length} failures)`);
      const created = bundle.entry.map((e) => located(res.body.entry[bundle.entry.indexOf(e)]?.response?.location)?.split('/')[0] ?? '?');
      t.same(countByType(created), countByType(bundle.entry.map((e) => String(e.resource.resourceType))), `${name}: ${JSON.stringify(countByType(created))}`);
      for (const e of bundle.entry) shared.set(criteriaOf(e.resource), ids.get(e.fullUrl!)!);
    }
    t.equal(shared.size, hospital.entry.length + practitioner.entry.length, 'each has its own id');
  });

  await t.test('the 12 records: each entry stored (its providers matching the ones stored), read back with its references resolved', async (t) => {
    let entries = 0;
    for (const { file, bundle: record } of originals) {
      const bundle = storable(record, practitioner);
      const res = await postTransaction(h, bundle);
      if (res.status !== 200) { t.fail(`${file}: ${res.status} ${JSON.stringify(res.body).slice(0, 600)}`); continue; }
      const provider = (e: Entry) => ['Organization', 'Practitioner'].includes(String(e.resource.resourceType));
      const { failures, ids } = await verify(h, bundle, res.body, (e) => (provider(e) ? 200 : 201), shared);
      const mismatched = bundle.entry.filter((e) => provider(e) && ids.get(e.fullUrl!) !== shared.get(criteriaOf(e.resource)));
      t.same(failures.slice(0, 10), [], `${file}: ${bundle.entry.length} entries, ${failures.length} failures`);
      t.same(mismatched.map((e) => e.fullUrl), [], `${file}: its Organizations and Practitioners are the ones the shared bundles stored`);
      entries += bundle.entry.length;
    }
    t.comment(`${entries} entries over ${originals.length} records`);
  });

  await t.test('the records rewritten with conditional references: every entry created, references resolved to the shared ids', async (t) => {
    for (const { file, bundle } of rewritten) {
      const conditional = new Set(JSON.stringify(bundle).match(/"reference":"[A-Za-z]+\?identifier=[^"]+"/g) ?? []);
      t.ok(conditional.size > 0, `${file}: ${conditional.size} distinct conditional references`);
      const types = typesOf(bundle);
      const before = await totals(h, types);
      const res = await postTransaction(h, bundle);
      if (res.status !== 200) { t.fail(`${file}: ${res.status} ${JSON.stringify(res.body).slice(0, 600)}`); continue; }
      const { failures } = await verify(h, bundle, res.body, () => 201, shared);
      t.same(failures.slice(0, 10), [], `${file}: ${bundle.entry.length} entries, ${failures.length} failures`);
      const after = await totals(h, types);
      const added = Object.fromEntries(types.map((k) => [k, after[k]! - before[k]!]));
      t.same(added, countByType(bundle.entry.map((e) => String(e.resource.resourceType))), `${file}: the count of each type grew by the bundle's`);
    }
  });

  await t.test('the hospital and practitioner bundles sent again change nothing', async (t) => {
    const types = ['Organization', 'Location', 'Practitioner'];
    const before = await totals(h, types);
    for (const [name, bundle] of [['hospitalInformation', hospital], ['practitionerInformation', practitioner]] as const) {
      const res = await postTransaction(h, bundle);
      t.equal(res.status, 200, name);
      const answers = (res.body.entry ?? []) as { response?: Answer }[];
      const wrong = bundle.entry.map((e, i) => ({ i, r: answers[i]?.response, want: shared.get(criteriaOf(e.resource)) }))
        .filter(({ r, want }) => !r?.status.startsWith('200') || located(r.location) !== want);
      t.same(wrong.slice(0, 5), [], `${name}: every entry 200 naming the resource stored the first time`);
    }
    t.same(await totals(h, types), before, 'no resource added');
    const versions = await Promise.all([...shared.values()].map(async (at) => (await h.fhir({ method: 'GET', url: `/fhir/${at}` })).json().meta?.versionId));
    t.same([...new Set(versions)], ['1'], 'every one still at version 1');
  });

  await t.test('two concurrent transactions conditionally creating the same Organization make one', async (t) => {
    const value = `race-${randomUUID()}`;
    const tx = (n: number): Bundle => ({
      resourceType: 'Bundle', type: 'transaction',
      entry: [{
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: { resourceType: 'Organization', identifier: [{ system: `${SYNTHEA}/race`, value }], name: `Race ${n}` },
        request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${SYNTHEA}/race|${value}` },
      }],
    });
    const results = await Promise.all([1, 2, 3, 4].map((n) => postTransaction(h, tx(n))));
    t.same(results.map((r) => r.status), [200, 200, 200, 200], `every transaction succeeds: ${results.map((r) => r.status === 200 ? '' : JSON.stringify(r.body).slice(0, 200)).join(' ')}`);
    const statuses = results.map((r) => String(r.body.entry?.[0]?.response?.status).slice(0, 3)).sort();
    t.same(statuses, ['200', '200', '200', '201'], 'one created, the others matched it');
    t.equal(new Set(results.map((r) => located(r.body.entry?.[0]?.response?.location))).size, 1, 'all name the same Organization');
    const found = await h.fhir({ method: 'GET', url: `/fhir/Organization?identifier=${encodeURIComponent(`${SYNTHEA}/race|${value}`)}` });
    t.equal(found.json().entry?.length ?? 0, 1, 'one Organization stored');
  });
});
