/**
 * Every entry of every Synthea record in test/fixtures/synthea (12 transaction Bundles, 16 types:
 * the seed types Patient, Encounter, Condition, Observation, MedicationRequest, DiagnosticReport
 * and the generic store's Organization, Claim, ExplanationOfBenefit, Immunization, Procedure,
 * CarePlan, Goal, AllergyIntolerance, ImagingStudy ...), created one by one through the API in an
 * order that creates each entry's targets first (urn:uuid references rewritten to the ids HMS
 * gave), read back unchanged apart from id and meta; then every resource of the generic store
 * (and every DiagnosticReport) found by a search over its own standard R4 parameters, with values
 * taken from the record, and every resource of each patient found in Patient/<id>/$everything,
 * paged through its next links.
 *
 * Practitioners: a Practitioner here is a user account (it needs an email, which Synthea's lack),
 * so Synthea's are mapped onto one clinician (makeClinician); one is offered to the API as it is,
 * to note the answer. Conditional references (`Organization?identifier=...`, `Location?...`,
 * `Practitioner?...`), which only a transaction could resolve, are resolved here: an Organization
 * or Location with that identifier is created once through the API, a Practitioner is the
 * clinician. (The records of this folder, Synthea's 2019 export, hold none: all are urn:uuid.)
 *
 * $everything holds, beyond the record's own resources, only what HMS derives from them: the lab
 * order (ServiceRequest, a read-only view of lab_results) of each laboratory Observation, and the
 * security log's AuditEvents of the accesses to the patient.
 *
 * Run time: all 12 records are created, read back, searched and paged through $everything (about
 * 2,240 creates, 2,240 reads, 900 searches, 30 pages): 46-57 s on SQLite, 67-108 s on MariaDB
 * on a loaded two-core machine.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { testApp, type TestApp } from '../helpers/app.js';
import { makeClinician } from '../helpers/world.js';
import { withoutIdAndMeta, searchToken, searchValue, everythingOf } from '../helpers/fixtures.js';
import '../../src/fhir/resources/index.js';
import { resourceDefinition } from '../../src/fhir/registry.js';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'synthea');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface BundleEntry { fullUrl: string; resource: Json }
/** One entry as stored: its type, the id HMS gave and the body sent (references rewritten). */
interface Stored { type: string; id: string; body: Json; source: string }
interface RecordResult { file: string; patient: string; stored: Stored[] }

const CONDITIONAL = /^(Organization|Location|Practitioner)\?identifier=(.+)$/;

/** A copy with every reference rewritten by `to` (undefined: left as it is). */
function rewrite(value: unknown, to: (ref: string) => string | undefined): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, to));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'reference' && typeof v === 'string' ? (to(v) ?? v) : rewrite(v, to)]));
  }
  return value;
}

/** Every reference string anywhere in a value. */
function referencesIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) referencesIn(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') out.push(v);
      else referencesIn(v, out);
    }
  }
  return out;
}

const ref = (r: Json | undefined): string => encodeURIComponent(String(r?.reference));
const date = (v: string): string => encodeURIComponent(v);
/** A date parameter that matches a dateTime (eq at its precision) or a Period (overlapping it). */
function dateOf(name: string, v: string | { start?: string; end?: string } | undefined): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') return [`${name}=${date(v)}`];
  return [...(v.start ? [`${name}=ge${date(v.start)}`] : []), ...(v.end ? [`${name}=le${date(v.end)}`] : [])];
}
const tok = (c: Json | undefined): string => encodeURIComponent(searchToken(c?.coding?.[0] ?? c));

/**
 * Per type, the searches (query strings) that must each find a resource, from its own values:
 * the standard R4 parameters of the type. A type of the records with no rule here fails the test.
 */
const SEARCHES: Record<string, (r: Json) => string[]> = {
  Immunization: (r) => [[`patient=${ref(r.patient)}`, `vaccine-code=${tok(r.vaccineCode)}`, ...dateOf('date', r.occurrenceDateTime)].join('&')],
  Procedure: (r) => [[`subject=${ref(r.subject)}`, `code=${tok(r.code)}`, ...dateOf('date', r.performedDateTime ?? r.performedPeriod)].join('&'),
    `patient=${ref(r.subject)}&encounter=${ref(r.encounter)}&status=${r.status}`],
  Claim: (r) => [[`patient=${ref(r.patient)}`, ...dateOf('created', r.created), `provider=${ref(r.provider)}`, `use=${r.use}`].join('&')],
  ExplanationOfBenefit: (r) => [[`patient=${ref(r.patient)}`, `claim=${ref(r.claim)}`, ...dateOf('created', r.created),
    `identifier=${encodeURIComponent(searchToken(r.identifier[0]))}`, `provider=${ref(r.provider)}`].join('&')],
  CarePlan: (r) => [[`subject=${ref(r.subject)}`, `category=${tok(r.category[0])}`, `encounter=${ref(r.encounter)}`, ...dateOf('date', r.period), `status=${r.status}`].join('&')],
  Goal: (r) => [[`patient=${ref(r.subject)}`, `lifecycle-status=${r.lifecycleStatus}`, ...(r.achievementStatus ? [`achievement-status=${tok(r.achievementStatus)}`] : [])].join('&')],
  AllergyIntolerance: (r) => [[`patient=${ref(r.patient)}`, `code=${tok(r.code)}`, ...dateOf('date', r.recordedDate), `clinical-status=${tok(r.clinicalStatus)}`,
    `criticality=${r.criticality}`].filter((q) => !q.endsWith('=undefined')).join('&')],
  ImagingStudy: (r) => [[`patient=${ref(r.subject)}`, ...dateOf('started', r.started), `modality=${encodeURIComponent(searchToken(r.series[0].modality))}`,
    `identifier=${encodeURIComponent(searchToken(r.identifier[0]))}`, `encounter=${ref(r.encounter)}`].join('&')],
  Organization: (r) => [[`identifier=${encodeURIComponent(searchToken(r.identifier[0]))}`, `name=${encodeURIComponent(searchValue(r.name))}`, `address-city=${encodeURIComponent(searchValue(r.address[0].city))}`].join('&')],
  DiagnosticReport: (r) => [[`subject=${ref(r.subject)}`, `code=${tok(r.code)}`, ...dateOf('date', r.effectiveDateTime)].join('&')],
};

/** The ids a search matches (one page: the searches are narrow), or an error. */
async function matches(h: TestApp, url: string): Promise<string[] | string> {
  // strict: a parameter HMS would ignore is an error, not a search that matches everything
  const res = await h.fhir({ method: 'GET', url, headers: { prefer: 'handling=strict' } });
  if (res.statusCode !== 200) return `${res.statusCode} ${res.body.slice(0, 300)}`;
  const b = res.json() as { entry?: { resource: { id: string }; search: { mode: string } }[] };
  return (b.entry ?? []).filter((e) => e.search.mode === 'match').map((e) => e.resource.id);
}

// up to ~110 s on MariaDB on a loaded two-core machine (the security log settles at close): room
// beyond tap's 120 s default, so that a slow machine does not cut it short
t.setTimeout(300_000);

t.test('Synthea records, every type: created, read back, searched, in $everything', async (t) => {
  const h = await testApp(t);
  const clinician = await makeClinician(h, 'doctor');
  const counts: Record<string, number> = {};
  const records: RecordResult[] = [];
  const conditionalTargets = new Map<string, string>();
  const started = Date.now();
  t.afterEach(() => { t.comment(`${((Date.now() - started) / 1000).toFixed(1)} s so far`); });

  /** The local reference for a conditional one, creating its target once. */
  async function resolveConditional(refStr: string): Promise<string> {
    const [, type, criteria] = refStr.match(CONDITIONAL)!;
    if (type === 'Practitioner') return `Practitioner/${clinician}`;
    const known = conditionalTargets.get(refStr);
    if (known) return known;
    const raw = decodeURIComponent(criteria!);
    const bar = raw.indexOf('|');
    const identifier = bar < 0 ? { value: raw } : { system: raw.slice(0, bar), value: raw.slice(bar + 1) };
    const res = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: { resourceType: type, identifier: [identifier], name: `${type} ${raw}` } });
    if (res.statusCode !== 201) throw new Error(`creating the target of ${refStr}: ${res.statusCode} ${res.body}`);
    const local = `${type}/${String(res.json().id)}`;
    conditionalTargets.set(refStr, local);
    return local;
  }

  await t.test('every entry created one by one, targets first, and read back unchanged', async (t) => {
    let practitionerProbed = false;
    let mapped = 0;
    const tagsDropped: Record<string, number> = {};
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
      const bundle = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { entry: BundleEntry[] };
      const ids = new Map<string, string>();
      const failures: string[] = [];
      const stored: Stored[] = [];
      const fileCounts: Record<string, number> = {};
      for (const e of bundle.entry.filter((x) => x.resource.resourceType === 'Practitioner')) {
        ids.set(e.fullUrl, `Practitioner/${clinician}`);
        if (!practitionerProbed) {
          // what the API says to one as it is (a finding, not a failure: a Practitioner is a user account)
          practitionerProbed = true;
          const { id: _id, ...body } = e.resource;
          const res = await h.fhir({ method: 'POST', url: '/fhir/Practitioner', payload: body });
          t.comment(`a Synthea Practitioner as it is: POST /fhir/Practitioner answers ${res.statusCode} ${res.body.slice(0, 240)}`);
        }
        mapped++;
      }
      // conditional references: resolved (their targets created once) before the entries that use them
      const conditionals = new Map<string, string>();
      for (const e of bundle.entry) for (const r of referencesIn(e.resource)) if (CONDITIONAL.test(r) && !conditionals.has(r)) conditionals.set(r, await resolveConditional(r));
      if (conditionals.size) t.comment(`${file}: ${conditionals.size} conditional references resolved`);
      const localOf = (r: string): string | undefined => ids.get(r) ?? conditionals.get(r);

      // targets first: an entry is created once every entry of the bundle it refers to has been
      const fullUrls = new Set(bundle.entry.map((e) => e.fullUrl));
      let pending = bundle.entry.filter((e) => e.resource.resourceType !== 'Practitioner');
      while (pending.length) {
        const ready = pending.filter((e) => referencesIn(e.resource).every((r) => !fullUrls.has(r) || ids.has(r)));
        if (!ready.length) {
          failures.push(`a reference cycle or a reference to a refused entry among: ${pending.map((e) => `${String(e.resource.resourceType)} ${String(e.resource.id)}`).join(', ').slice(0, 600)}`);
          break;
        }
        for (const e of ready) {
          const type = String(e.resource.resourceType);
          const { id: _id, ...body } = rewrite(e.resource, localOf) as Json;
          const created = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: body });
          if (created.statusCode !== 201) { failures.push(`${type} ${String(e.resource.id)}: ${created.statusCode} ${created.body.slice(0, 400)}`); continue; }
          const id = created.json().id as string;
          ids.set(e.fullUrl, `${type}/${id}`);
          const read = await h.fhir({ method: 'GET', url: `/fhir/${type}/${id}` });
          if (read.statusCode !== 200 || !isDeepStrictEqual(withoutIdAndMeta(read.json()), withoutIdAndMeta(body))) {
            failures.push(`${type} ${String(e.resource.id)} reads back differently (${read.statusCode}):\n sent ${JSON.stringify(withoutIdAndMeta(body)).slice(0, 800)}\n read ${JSON.stringify(withoutIdAndMeta(read.json())).slice(0, 800)}`);
          }
          // meta is not compared (the server owns it); whether Synthea's meta.tag was kept is noted
          const sentTags = (body.meta as Json | undefined)?.tag;
          if (sentTags && !isDeepStrictEqual(read.json().meta?.tag, sentTags)) tagsDropped[type] = (tagsDropped[type] ?? 0) + 1;
          stored.push({ type, id, body, source: String(e.resource.id) });
          fileCounts[type] = (fileCounts[type] ?? 0) + 1;
          counts[type] = (counts[type] ?? 0) + 1;
        }
        const done = new Set(ready);
        pending = pending.filter((e) => !done.has(e));
      }
      const patient = stored.find((s) => s.type === 'Patient');
      const expected = bundle.entry.filter((e) => e.resource.resourceType !== 'Practitioner').length;
      t.equal(stored.length, expected, `${file}: every entry stored (${Object.entries(fileCounts).map(([k, n]) => `${n} ${k}`).join(', ')})`);
      t.same(failures, [], `${file}: no entry refused or changed`);
      if (patient) records.push({ file, patient: patient.id, stored });
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    t.comment(`${mapped} Practitioners mapped onto the clinician (not stored: a Practitioner is a user account)`);
    t.comment(`stored over ${records.length} records (${total} entries): ${Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    t.comment(`meta.tag as sent not read back: ${Object.entries(tagsDropped).map(([k, n]) => `${k} ${n}`).join(', ') || 'none (kept by every type)'}`);
    const kinds = Object.keys(counts).filter((k) => resourceDefinition(k));
    t.comment(`generic store: ${kinds.filter((k) => resourceDefinition(k)!.storageKind === 'generic').join(', ')}; seed tables: ${kinds.filter((k) => resourceDefinition(k)!.storageKind !== 'generic').join(', ')}`);
  });

  await t.test('each resource of the generic store (and each DiagnosticReport) is found by its standard search parameters', async (t) => {
    const searched: Record<string, number> = {};
    let controls = 0;
    for (const [i, { file, patient, stored }] of records.entries()) {
      const failures: string[] = [];
      // a control per type: the first search of its first resource, for another record's patient, must not find it
      const other = records[(i + 1) % records.length]!.patient;
      const controlled = new Set<string>();
      for (const s of stored) {
        const def = resourceDefinition(s.type)!;
        const rule = SEARCHES[s.type];
        if (!rule) {
          if (def.storageKind === 'generic') failures.push(`${s.type}: no search rule in this test for a type of the records`);
          continue;
        }
        for (const q of rule(s.body)) {
          const url = `/fhir/${s.type}?${q}&_count=100`;
          const ids = await matches(h, url);
          if (typeof ids === 'string') failures.push(`GET ${url}: ${ids}`);
          else if (!ids.includes(s.id)) failures.push(`GET ${url} does not find ${s.type}/${s.id} (Synthea ${s.source}): ${ids.length} matches`);
          const mine = encodeURIComponent(`Patient/${patient}`);
          if (!controlled.has(s.type) && other !== patient && q.includes(mine)) {
            controlled.add(s.type);
            controls++;
            const wrong = `/fhir/${s.type}?${q.split(mine).join(encodeURIComponent(`Patient/${other}`))}&_count=100`;
            const none = await matches(h, wrong);
            if (typeof none === 'string' || none.includes(s.id)) failures.push(`GET ${wrong} (another patient) finds ${s.type}/${s.id}: ${String(none)}`);
          }
        }
        searched[s.type] = (searched[s.type] ?? 0) + 1;
      }
      t.same(failures, [], `${file}: every resource found`);
    }
    t.comment(`${controls} controls (the same search for another patient) found nothing`);
    t.comment(`searched: ${Object.entries(searched).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  });

  await t.test('each patient\'s resources are all in Patient/<id>/$everything', async (t) => {
    for (const { file, patient, stored } of records) {
      const got = await everythingOf(h, patient, 200);
      if (typeof got === 'string') { t.fail(`${file}: ${got}`); continue; }
      const have = new Set(got.matches);
      // the patient's data: every stored entry of a type in the Patient compartment
      const inCompartment = stored.filter((s) => s.type === 'Patient' || resourceDefinition(s.type)!.compartment?.length);
      const outside = [...new Set(stored.filter((s) => !inCompartment.includes(s)).map((s) => s.type))];
      const missing = inCompartment.filter((s) => !have.has(`${s.type}/${s.id}`)).map((s) => `${s.type}/${s.id}`);
      t.same(missing.slice(0, 20), [], `${file}: ${inCompartment.length} resources in ${got.pages} pages (${missing.length} missing; not in the compartment: ${outside.join(', ') || 'none'})`);
      // beyond them: only the lab orders HMS shows for its laboratory Observations (ServiceRequest
      // is a read-only view of lab_results, whose rows its laboratory Observations are stored in)
      const mine = new Set(inCompartment.map((s) => `${s.type}/${s.id}`));
      const observations = stored.filter((s) => s.type === 'Observation').map((s) => s.id);
      const labRows = new Set<string>();
      for (let i = 0; i < observations.length; i += 500) {
        const rows = await h.db('observations').whereIn('id', observations.slice(i, i + 500)).where({ source: 'lab' }).select('source_id') as { source_id: string }[];
        for (const r of rows) labRows.add(`ServiceRequest/${r.source_id}`);
      }
      const extra = got.matches.filter((m) => !mine.has(m));
      const orders = extra.filter((m) => labRows.has(m) && got.resources[m]?.subject?.reference === `Patient/${patient}`);
      // and the security log's record of the accesses to its data (AuditEvent, in the compartment)
      const audit = extra.filter((m) => m.startsWith('AuditEvent/') && JSON.stringify(got.resources[m]).includes(`"Patient/${patient}"`));
      t.same(extra.filter((m) => !orders.includes(m) && !audit.includes(m)).slice(0, 20), [],
        `${file}: nothing else (${orders.length} lab orders of its ${labRows.size} laboratory Observations, ${audit.length} AuditEvents of the accesses to it)`);
      t.equal(orders.length, labRows.size, `${file}: the lab order of each of its laboratory Observations`);
      t.ok(got.included.includes(`Practitioner/${clinician}`), `${file}: the practitioner they name is included`);
    }
  });
});
