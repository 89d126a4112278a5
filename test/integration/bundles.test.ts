/**
 * Batch and transaction Bundles at POST /fhir (https://hl7.org/fhir/R4/http.html#transaction):
 * urn:uuid references rewritten to the ids given, conditional references resolved by search,
 * all or nothing, the spec's order, the entry conditions, entry-by-entry authorization and
 * audit, the entry limit, and race-free conditional creates across two app instances.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { buildApp } from '../../src/api/app.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { buildWorld, bodies } from '../helpers/access-world.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const patient = (system: string, value: string, family = 'Bundle'): J => ({
  resourceType: 'Patient', identifier: [{ system, value }], name: [{ family, given: ['Tess'] }], birthDate: '1980-05-05', gender: 'female',
});
const org = (system: string, value: string): J => ({ resourceType: 'Organization', identifier: [{ system, value }], name: `Clinic ${value}` });
const immunization = (patientRef: string, extra: J = {}): J => ({
  resourceType: 'Immunization', status: 'completed', vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
  patient: { reference: patientRef }, occurrenceDateTime: '2021-01-01T10:00:00Z', ...extra,
});
const urn = (): string => `urn:uuid:${randomUUID()}`;

async function post(h: TestApp, bundle: J, token?: string, headers: Record<string, string> = {}) {
  return h.fhir({ method: 'POST', url: '/fhir', payload: bundle, headers, ...(token ? { token } : {}) });
}
const count = async (h: TestApp, url: string): Promise<number> => (await h.fhir({ method: 'GET', url: `${url}&_total=accurate&_count=0` })).json().total;

t.test('bundles', async (t) => {
  const h = await testApp(t, { HMS_BUNDLE_MAX_ENTRIES: 50 });
  const sys = `urn:hms:bundle:${randomUUID()}`;

  t.test('a transaction writes its entries with their references rewritten to the new ids', async (t) => {
    const p = urn(); const o = urn();
    const res = await post(h, {
      resourceType: 'Bundle', type: 'transaction', entry: [
        // the Immunization comes first but refers to entries after it: it is written after them
        { fullUrl: urn(), resource: immunization(p, { performer: [{ actor: { reference: o } }] }), request: { method: 'POST', url: 'Immunization' } },
        { fullUrl: p, resource: patient(sys, 'tx-1'), request: { method: 'POST', url: 'Patient' } },
        { fullUrl: o, resource: org(sys, 'tx-org'), request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${sys}|tx-org` } },
      ],
    });
    t.equal(res.statusCode, 200, res.body.slice(0, 500));
    const b = res.json();
    t.equal(b.type, 'transaction-response');
    t.same(b.entry.map((e: J) => e.response.status), ['201 Created', '201 Created', '201 Created']);
    for (const e of b.entry) {
      t.match(e.response.location, /^[A-Za-z]+\/[^/]+\/_history\/1$/);
      t.equal(e.response.etag, 'W/"1"');
      t.ok(e.response.lastModified);
    }
    const [imm, pat, organization] = b.entry.map((e: J) => e.resource);
    t.equal(imm.patient.reference, `Patient/${pat.id}`, 'the urn:uuid reference now names the new Patient');
    t.equal(imm.performer[0].actor.reference, `Organization/${organization.id}`);
    const read = await h.fhir({ method: 'GET', url: `/fhir/Immunization/${imm.id}` });
    t.equal(read.json().patient.reference, `Patient/${pat.id}`);
    // each write is on record for the patient, committed with the data
    const rows = await h.db('security_logs').where({ patient_id: pat.id }).whereIn('action', ['create']).select('resource_type');
    t.same(rows.map((r: J) => r.resource_type).sort(), ['Immunization', 'Patient']);

    t.test('posted again, its conditional create matches: 200, nothing new', async (t) => {
      const again = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
        { fullUrl: urn(), resource: org(sys, 'tx-org'), request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${sys}|tx-org` } },
      ] });
      t.equal(again.json().entry[0].response.status, '200 OK');
      t.equal(again.json().entry[0].resource.id, organization.id);
      t.equal(again.json().entry[0].response.etag, 'W/"1"', 'no new version');
    });
  });

  t.test('one failing entry rolls the whole transaction back, naming the entry and element', async (t) => {
    const before = await count(h, `/fhir/Patient?identifier=${encodeURIComponent(sys)}|rollback`);
    const p = urn();
    const res = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: p, resource: patient(sys, 'rollback'), request: { method: 'POST', url: 'Patient' } },
      { fullUrl: urn(), resource: immunization(p, { occurrenceDateTime: '2021-02-30' }), request: { method: 'POST', url: 'Immunization' } },
    ] });
    t.equal(res.statusCode, 400, res.body.slice(0, 300));
    const issue = res.json().issue[0];
    t.match(issue.diagnostics, /^Bundle\.entry\[1\]/);
    t.ok(issue.expression.some((x: string) => x.startsWith('Bundle.entry[1].resource')), issue.expression.join());
    t.equal(await count(h, `/fhir/Patient?identifier=${encodeURIComponent(sys)}|rollback`), before, 'the Patient of entry 0 was not kept');
  });

  t.test('a batch runs each entry on its own', async (t) => {
    const res = await post(h, { resourceType: 'Bundle', type: 'batch', entry: [
      { resource: patient(sys, 'batch-ok'), request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Patient', birthDate: 'not a date' }, request: { method: 'POST', url: 'Patient' } },
      { request: { method: 'GET', url: 'Patient/does-not-exist' } },
      { request: { method: 'GET', url: `Patient?identifier=${encodeURIComponent(sys)}|batch-ok` } },
    ] });
    t.equal(res.statusCode, 200);
    const e = res.json().entry;
    t.equal(res.json().type, 'batch-response');
    t.equal(e[0].response.status, '201 Created');
    t.match(e[1].response.status, /^400/);
    t.equal(e[1].response.outcome.resourceType, 'OperationOutcome');
    t.match(e[2].response.status, /^404/);
    t.equal(e[3].response.status, '200 OK');
    t.equal(e[3].resource.resourceType, 'Bundle');
    t.equal(e[3].resource.entry?.[0]?.resource.id, e[0].resource.id, 'the search saw the first entry (entries run in order)');
    const refused = await h.db('security_logs').where({ action: 'refused', user_id: h.userId }).whereRaw('additional_data like ?', ['%"entry":1%']).count({ n: '*' });
    t.ok(Number((refused[0] as J).n) >= 1, 'the refused entry is on record');
  });

  t.test('a batch entry cannot refer to another entry', async (t) => {
    const p = urn();
    const res = await post(h, { resourceType: 'Bundle', type: 'batch', entry: [
      { fullUrl: p, resource: patient(sys, 'batch-ref'), request: { method: 'POST', url: 'Patient' } },
      { resource: immunization(p), request: { method: 'POST', url: 'Immunization' } },
    ] });
    t.equal(res.json().entry[0].response.status, '201 Created');
    t.match(res.json().entry[1].response.status, /^422/);
  });

  t.test('conditional references resolve by search: one match, none (412), several (412)', async (t) => {
    const made = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(sys, 'cond-ref') });
    const id = made.json().id;
    const ok = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: immunization(`Patient?identifier=${sys}|cond-ref`), request: { method: 'POST', url: 'Immunization' } },
    ] });
    t.equal(ok.statusCode, 200, ok.body.slice(0, 300));
    t.equal(ok.json().entry[0].resource.patient.reference, `Patient/${id}`);
    const none = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: immunization(`Patient?identifier=${sys}|nobody`), request: { method: 'POST', url: 'Immunization' } },
    ] });
    t.equal(none.statusCode, 412);
    t.match(none.json().issue[0].diagnostics, /Bundle\.entry\[0\].*matches no Patient/);
    t.same(none.json().issue[0].expression, ['Bundle.entry[0].resource.patient']);
    await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(sys, 'cond-ref') });
    const many = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: immunization(`Patient?identifier=${sys}|cond-ref`), request: { method: 'POST', url: 'Immunization' } },
    ] });
    t.equal(many.statusCode, 412);
    t.equal(many.json().issue[0].code, 'multiple-matches');
  });

  t.test('a conditional reference to an entry that conditionally creates it', async (t) => {
    const res = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: { resourceType: 'Location', name: 'Ward', managingOrganization: { reference: `Organization?identifier=${sys}|by-criteria` } }, request: { method: 'POST', url: 'Location' } },
      { fullUrl: urn(), resource: org(sys, 'by-criteria'), request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${sys}|by-criteria` } },
    ] });
    t.equal(res.statusCode, 200, res.body.slice(0, 300));
    t.equal(res.json().entry[0].resource.managingOrganization.reference, `Organization/${res.json().entry[1].resource.id}`);
  });

  t.test('a conditional reference is searched for once per transaction, and again after an entry writes its type', async (t) => {
    const first = (await h.fhir({ method: 'POST', url: '/fhir/Organization', payload: org(sys, 'searched-once') })).json().id;
    const location = (): J => ({ resource: { resourceType: 'Location', name: 'Ward', managingOrganization: { reference: `Organization?identifier=${sys}|searched-once` } }, request: { method: 'POST', url: 'Location' } });
    const locks: string[] = [];
    const on = (q: { sql: string }): void => { if (/conditional_locks/.test(q.sql)) locks.push(q.sql); };
    h.db.on('query', on);
    const res = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [location(), location(), location()] });
    h.db.off('query', on);
    t.equal(res.statusCode, 200, res.body.slice(0, 300));
    t.same(res.json().entry.map((e: J) => e.resource.managingOrganization.reference), Array(3).fill(`Organization/${first}`));
    t.equal(locks.length, 1, 'one search (and one lock) for the three references');
    // an entry between them creates a second match: the later reference is searched for again
    const again = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      location(), { resource: org(sys, 'searched-once'), request: { method: 'POST', url: 'Organization' } }, location(),
    ] });
    t.equal(again.statusCode, 412, again.body.slice(0, 300));
    t.equal(again.json().issue[0].code, 'multiple-matches');
    t.match(again.json().issue[0].diagnostics, /Bundle\.entry\[2\]/);
  });

  t.test('the spec\'s order: deletes, then writes, then reads; conditional update and delete', async (t) => {
    const victim = (await h.fhir({ method: 'POST', url: '/fhir/Organization', payload: org(sys, 'victim') })).json().id;
    const kept = (await h.fhir({ method: 'POST', url: '/fhir/Organization', payload: org(sys, 'kept') })).json().id;
    const res = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { request: { method: 'GET', url: `Organization?identifier=${encodeURIComponent(sys)}|kept` } },
      { resource: { ...org(sys, 'kept'), name: 'Renamed' }, request: { method: 'PUT', url: `Organization?identifier=${encodeURIComponent(sys)}|kept` } },
      { request: { method: 'DELETE', url: `Organization/${victim}` } },
      { request: { method: 'GET', url: `Organization/${victim}` } },
    ] });
    t.equal(res.statusCode, 410, 'the read of the deleted resource runs after the delete: the transaction fails');
    t.match(res.json().issue[0].diagnostics, /^Bundle\.entry\[3\]/);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Organization/${victim}` })).statusCode, 200, 'rolled back: still there');
    const ok = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { request: { method: 'GET', url: `Organization?identifier=${encodeURIComponent(sys)}|kept` } },
      { resource: { ...org(sys, 'kept'), name: 'Renamed' }, request: { method: 'PUT', url: `Organization?identifier=${encodeURIComponent(sys)}|kept` } },
      { request: { method: 'DELETE', url: `Organization?identifier=${encodeURIComponent(sys)}|victim` } },
    ] });
    t.equal(ok.statusCode, 200, ok.body.slice(0, 300));
    const [search, put, del] = ok.json().entry;
    t.equal(put.response.status, '200 OK');
    t.equal(put.resource.id, kept);
    t.equal(search.resource.entry[0].resource.name, 'Renamed', 'the search ran after the update');
    t.equal(del.response.status, '204 No Content');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Organization/${victim}` })).statusCode, 410);
  });

  t.test('ifMatch, ifNoneMatch and ifModifiedSince', async (t) => {
    const o = (await h.fhir({ method: 'POST', url: '/fhir/Organization', payload: org(sys, 'etag') })).json();
    const stale = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: { ...o, name: 'x' }, request: { method: 'PUT', url: `Organization/${o.id}`, ifMatch: 'W/"7"' } },
    ] });
    t.equal(stale.statusCode, 412);
    const res = await post(h, { resourceType: 'Bundle', type: 'batch', entry: [
      { request: { method: 'GET', url: `Organization/${o.id}`, ifNoneMatch: 'W/"1"' } },
      { request: { method: 'GET', url: `Organization/${o.id}`, ifNoneMatch: 'W/"0"' } },
      { request: { method: 'GET', url: `Organization/${o.id}`, ifModifiedSince: '2100-01-01T00:00:00Z' } },
      { resource: { ...o, name: 'y' }, request: { method: 'PUT', url: `Organization/${o.id}`, ifMatch: 'W/"1"' } },
    ] });
    const e = res.json().entry;
    t.equal(e[0].response.status, '304 Not Modified');
    t.notOk(e[0].resource);
    t.equal(e[1].response.status, '200 OK');
    t.equal(e[2].response.status, '304 Not Modified');
    t.equal(e[3].response.status, '200 OK');
    t.equal(e[3].response.etag, 'W/"2"');
  });

  t.test('malformed Bundles and entries: 400 / 404 / 413 / 422, nothing written', async (t) => {
    const cases: [string, J, number][] = [
      ['not a Bundle', { resourceType: 'Patient' }, 400],
      ['a collection', { resourceType: 'Bundle', type: 'collection', entry: [] }, 400],
      ['no request', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient(sys, 'x') }] }, 400],
      ['a bad method', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient(sys, 'x'), request: { method: 'TRACE', url: 'Patient' } }] }, 400],
      ['an unknown type', { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'GET', url: 'Spaceship/1' } }] }, 404],
      ['type and url differ', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient(sys, 'x'), request: { method: 'POST', url: 'Organization' } }] }, 400],
      ['two fullUrls alike', { resourceType: 'Bundle', type: 'transaction', entry: [
        { fullUrl: 'urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8', resource: patient(sys, 'x'), request: { method: 'POST', url: 'Patient' } },
        { fullUrl: 'urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8', resource: patient(sys, 'y'), request: { method: 'POST', url: 'Patient' } }] }, 400],
      ['an unresolved urn', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: immunization(urn()), request: { method: 'POST', url: 'Immunization' } }] }, 422],
      ['too many entries', { resourceType: 'Bundle', type: 'batch', entry: Array.from({ length: 51 }, () => ({ request: { method: 'GET', url: 'Patient?name=x' } })) }, 413],
    ];
    for (const [name, bundle, status] of cases) {
      const res = await post(h, bundle);
      t.equal(res.statusCode, status, `${name}: ${res.body.slice(0, 200)}`);
      t.equal(res.json().resourceType, 'OperationOutcome', name);
    }
    const a = urn(); const b = urn();
    const cycle = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: a, resource: { resourceType: 'Organization', name: 'A', partOf: { reference: b } }, request: { method: 'POST', url: 'Organization' } },
      { fullUrl: b, resource: { resourceType: 'Organization', name: 'B', partOf: { reference: a } }, request: { method: 'POST', url: 'Organization' } },
    ] });
    t.equal(cycle.statusCode, 422);
    t.match(cycle.json().issue[0].diagnostics, /cycle/);
  });

  t.test('entries see what earlier entries wrote; their history and index rows go in as one INSERT per table', async (t) => {
    const value = `seen-${randomUUID()}`;
    const p = urn();
    const statements: string[] = [];
    const patientLookups: unknown[][] = [];
    const on = (q: { sql: string; bindings?: unknown[] }): void => {
      statements.push(q.sql);
      if (/^select .* from .patients./i.test(q.sql)) patientLookups.push(q.bindings ?? []);
    };
    h.db.on('query', on);
    const res = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: urn(), resource: org(sys, value), request: { method: 'POST', url: 'Organization' } },
      // a later POST of the same Bundle matches it by its identifier (a search of the index rows just written)
      { fullUrl: urn(), resource: org(sys, value), request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${sys}|${value}` } },
      { fullUrl: p, resource: patient(sys, value), request: { method: 'POST', url: 'Patient' } },
      ...Array.from({ length: 10 }, (_, i) => ({ fullUrl: urn(), resource: immunization(p, { identifier: [{ system: sys, value }], occurrenceDateTime: `2021-01-${String(i + 1).padStart(2, '0')}T10:00:00Z` }), request: { method: 'POST', url: 'Immunization' } })),
      { request: { method: 'GET', url: `Immunization?identifier=${encodeURIComponent(sys)}|${value}&date=ge2021-01-05` } },
    ] }, undefined, { prefer: 'return=minimal' });
    h.db.off('query', on);
    t.equal(res.statusCode, 200, res.body.slice(0, 300));
    const entries = res.json().entry as J[];
    t.equal(entries[0].response.status, '201 Created');
    t.equal(entries[1].response.status, '200 OK', 'the conditional create found the first Organization');
    t.equal(entries[1].response.location.split('/')[1], entries[0].response.location.split('/')[1]);
    t.equal(entries[13].resource?.entry?.length, 6, `the search saw the Immunizations of this transaction: ${JSON.stringify(entries[13]).slice(0, 300)}`);
    const history = statements.filter((s) => /^insert into .resource_history/i.test(s)).length;
    t.ok(history <= 3, `the 12 history rows went in with ${history} INSERTs (written before each statement that reads the history or index)`);
    const patientId = entries[2].response.location.split('/')[1];
    t.same(patientLookups.filter((b) => b.includes(patientId)), [], 'the admin\'s Immunizations name the Patient this transaction created: not looked up');
    const read = await h.fhir({ method: 'GET', url: `/fhir/Immunization?patient=${entries[2].response.location.split('/')[1]}&_total=accurate` });
    t.equal(read.json().total, 10, 'all committed');
    const versions = await h.db('resource_history').where({ resource_type: 'Immunization' }).whereIn('resource_id', entries.slice(3, 13).map((e) => e.response.location.split('/')[1])).count({ n: '*' });
    t.equal(Number((versions[0] as J).n), 10, 'each with its version 1');
  });

  t.test('two concurrent transactions conditionally creating one identifier make one resource', async (t) => {
    const other = await buildApp({ config: h.config, logger: false });
    t.teardown(() => other.close());
    const value = `race-${randomUUID()}`;
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: urn(), resource: org(sys, value), request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${sys}|${value}` } },
      { resource: { resourceType: 'Location', name: 'Room', managingOrganization: { reference: `Organization?identifier=${sys}|${value}` } }, request: { method: 'POST', url: 'Location' } },
    ] };
    const headers = { authorization: `Bearer ${h.token}`, 'content-type': 'application/fhir+json' };
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? other : h.app).inject({ method: 'POST', url: '/fhir', headers, payload: bundle })));
    t.same(answers.map((r) => r.statusCode), [200, 200, 200, 200, 200, 200], answers.map((r) => r.body.slice(0, 200)).join('\n'));
    t.equal(answers.filter((r) => r.json().entry[0].response.status === '201 Created').length, 1, 'one create, five matches');
    t.equal(new Set(answers.map((r) => r.json().entry[0].resource.id)).size, 1);
    t.equal(await count(h, `/fhir/Organization?identifier=${encodeURIComponent(sys)}|${value}`), 1);
  });
});

t.test('entries are authorized one by one', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const nurse = w.principals.find((p) => p.name === 'assigned nurse')!;
  const rx = bodies.MedicationRequest(w.A, w.doctorA);
  const vital = bodies['Observation (vital sign)'](w.A, w.doctorA);
  const tx = await post(h, { resourceType: 'Bundle', type: 'transaction', entry: [
    { resource: vital, request: { method: 'POST', url: 'Observation' } },
    { resource: rx, request: { method: 'POST', url: 'MedicationRequest' } },
  ] }, nurse.token);
  t.equal(tx.statusCode, 403, 'a nurse may not prescribe: the transaction fails whole');
  t.match(tx.json().issue[0].diagnostics, /^Bundle\.entry\[1\]/);
  const batch = await post(h, { resourceType: 'Bundle', type: 'batch', entry: [
    { resource: vital, request: { method: 'POST', url: 'Observation' } },
    { resource: rx, request: { method: 'POST', url: 'MedicationRequest' } },
    { request: { method: 'GET', url: `Patient/${w.B}` } },
  ] }, nurse.token);
  const e = batch.json().entry;
  t.equal(e[0].response.status, '201 Created', 'a nurse records vitals');
  t.match(e[1].response.status, /^403/);
  t.match(e[2].response.status, /^404/, 'an unassigned patient reads as missing');
  const unauthenticated = await post(h, { resourceType: 'Bundle', type: 'batch', entry: [] }, 'nope');
  t.equal(unauthenticated.statusCode, 401);
});

t.test('conditional update and delete over REST', async (t) => {
  const h = await testApp(t);
  const sys = `urn:hms:cond:${randomUUID()}`;
  const q = (v: string): string => `identifier=${encodeURIComponent(sys)}|${v}`;
  const put = (v: string, body: J, headers: Record<string, string> = {}) => h.fhir({ method: 'PUT', url: `/fhir/Patient?${q(v)}`, payload: body, headers });

  const created = await put('one', patient(sys, 'one'));
  t.equal(created.statusCode, 201, 'no match: created');
  const id = created.json().id;
  const updated = await put('one', { ...patient(sys, 'one', 'Changed') });
  t.equal(updated.statusCode, 200, 'one match: updated');
  t.equal(updated.json().id, id);
  t.equal(updated.json().meta.versionId, '2');
  t.equal((await put('one', { ...patient(sys, 'one'), id: 'someone-else' })).statusCode, 400, 'a body id naming another resource');
  t.equal((await put('one', patient(sys, 'one'), { 'if-match': 'W/"1"' })).statusCode, 412, 'If-Match still applies');
  await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(sys, 'two') });
  await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(sys, 'two') });
  t.equal((await put('two', patient(sys, 'two'))).statusCode, 412, 'several matches');
  t.equal((await h.fhir({ method: 'PUT', url: '/fhir/Patient', payload: patient(sys, 'x') })).statusCode, 400, 'no criteria');

  t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Patient?${q('two')}` })).statusCode, 412, 'several matches');
  t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Patient?${q('one')}` })).statusCode, 204);
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${id}` })).statusCode, 410);
  t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Patient?${q('nobody')}` })).statusCode, 204, 'no match: nothing to do');
  t.equal((await h.fhir({ method: 'DELETE', url: '/fhir/Patient' })).statusCode, 400, 'no criteria: never everything');

  // race-free: concurrent conditional updates of a new identifier make one resource
  const value = `race-${randomUUID()}`;
  const answers = await Promise.all(Array.from({ length: 8 }, () => put(value, patient(sys, value))));
  t.same(answers.map((a) => a.statusCode).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
  t.equal(new Set(answers.map((a) => a.json().id)).size, 1);
});
