import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { rewriteReferences } from '../helpers/world.js';

const unique = () => randomUUID().slice(0, 8);
const patient = (family = `Fam${unique()}`, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system: 'urn:hms:test', value: unique() }],
  name: [{ use: 'official', family, given: ['Ann', 'Lee'] }],
  gender: 'female',
  birthDate: '1980-04-05',
  ...extra,
});

t.test('Patient create, read, vread, update, delete, history', async (t) => {
  const h = await testApp(t);

  t.test('create answers 201 with Location, ETag, Last-Modified and meta', async (t) => {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient() });
    t.equal(res.statusCode, 201);
    const body = res.json();
    t.match(body.id, /^[0-9a-f-]{36}$/);
    t.equal(body.meta.versionId, '1');
    t.match(body.meta.lastUpdated, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    t.match(res.headers.location, new RegExp(`/fhir/Patient/${body.id}/_history/1$`));
    t.equal(res.headers.etag, 'W/"1"');
    t.ok(res.headers['last-modified']);
    t.match(res.headers['content-type'], /^application\/fhir\+json/);
  });

  for (const { name, resource } of officialExamples('Patient')) {
    t.test(`the official example ${name} reads back unchanged apart from id and meta`, async (t) => {
      // a link to another patient must name a stored one: pat1's partner pat2 is made first
      const other = (await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient() })).json().id as string;
      const body = rewriteReferences(resource, { Patient: other });
      const created = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: body });
      t.equal(created.statusCode, 201, created.body);
      const read = await h.fhir({ method: 'GET', url: `/fhir/Patient/${created.json().id}` });
      t.equal(read.statusCode, 200);
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
    });
  }

  t.test('a link to a patient that does not exist is refused (422 at the element)', async (t) => {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(undefined, { link: [{ other: { reference: `Patient/${randomUUID()}` }, type: 'seealso' }] }) });
    t.equal(res.statusCode, 422);
    t.same(res.json().issue[0].expression, ['Patient.link[0].other']);
  });

  t.test('keeps meta.profile and tags the client sent but assigns versionId and lastUpdated', async (t) => {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(undefined, { meta: { versionId: '99', lastUpdated: '2001-01-01T00:00:00Z', profile: ['http://example.org/p'], tag: [{ code: 't1' }] } }) });
    const read = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${res.json().id}` })).json();
    t.equal(read.meta.versionId, '1');
    t.not(read.meta.lastUpdated, '2001-01-01T00:00:00Z');
    t.same(read.meta.profile, ['http://example.org/p']);
    t.same(read.meta.tag, [{ code: 't1' }]);
  });

  t.test('update bumps the version; vread returns each version; If-Match guards against stale writes', async (t) => {
    const created = (await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient('Before') })).json();
    const url = `/fhir/Patient/${created.id}`;
    const upd = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: { ...patient('After'), id: created.id } });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal(upd.json().meta.versionId, '2');
    t.equal(upd.headers.etag, 'W/"2"');
    const stale = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: { ...patient('Stale'), id: created.id } });
    t.equal(stale.statusCode, 412);
    t.equal(stale.json().resourceType, 'OperationOutcome');
    t.equal((await h.fhir({ method: 'GET', url })).json().name[0].family, 'After', 'the stale write changed nothing');
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().name[0].family, 'Before');
    const v2 = await h.fhir({ method: 'GET', url: `${url}/_history/2` });
    t.equal(v2.json().name[0].family, 'After');
    t.equal(v2.headers.etag, 'W/"2"');
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/3` })).statusCode, 404);
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/x` })).statusCode, 404);
  });

  t.test('update of an unknown id creates it (201) with version 1', async (t) => {
    const id = randomUUID();
    const res = await h.fhir({ method: 'PUT', url: `/fhir/Patient/${id}`, payload: { ...patient(), id } });
    t.equal(res.statusCode, 201);
    t.equal(res.json().meta.versionId, '1');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${id}` })).statusCode, 200);
  });

  t.test('refuses an id mismatch on PUT with 400 pointing at Patient.id and writes nothing', async (t) => {
    const created = (await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient('Same') })).json();
    const res = await h.fhir({ method: 'PUT', url: `/fhir/Patient/${created.id}`, payload: { ...patient('Changed'), id: 'other-id' } });
    t.equal(res.statusCode, 400);
    t.same(res.json().issue[0].expression, ['Patient.id']);
    const read = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${created.id}` })).json();
    t.equal(read.name[0].family, 'Same');
    t.equal(read.meta.versionId, '1');
  });

  t.test('delete is soft: the patient reads as 410, leaves search, keeps its history', async (t) => {
    const family = `Gone${unique()}`;
    const created = (await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(family) })).json();
    const url = `/fhir/Patient/${created.id}`;
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    const read = await h.fhir({ method: 'GET', url });
    t.equal(read.statusCode, 410);
    t.equal(read.json().resourceType, 'OperationOutcome');
    const search = (await h.fhir({ method: 'GET', url: `/fhir/Patient?family=${family}` })).json();
    t.equal(search.total, 0);
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204, 'deleting again is idempotent');
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.equal(hist.type, 'history');
    t.same(hist.entry.map((e: { request: { method: string } }) => e.request.method), ['DELETE', 'POST']);
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/2` })).statusCode, 410);
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).statusCode, 200);
    const row = await h.db('patients').where({ id: created.id }).first();
    t.ok(row.deleted_at, 'the row stays, marked deleted');
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Patient/${randomUUID()}` })).statusCode, 404);
  });

  t.test('history lists versions newest first and pages with next links', async (t) => {
    const created = (await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient('V1') })).json();
    const url = `/fhir/Patient/${created.id}`;
    for (const v of ['V2', 'V3']) await h.fhir({ method: 'PUT', url, payload: { ...patient(v), id: created.id } });
    const page1 = (await h.fhir({ method: 'GET', url: `${url}/_history?_count=2` })).json();
    t.same(page1.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId), ['3', '2']);
    const next = page1.link.find((l: { relation: string }) => l.relation === 'next');
    t.ok(next);
    const page2 = (await h.fhir({ method: 'GET', url: new URL(next.url).pathname + new URL(next.url).search })).json();
    t.same(page2.entry.map((e: { resource: { name: { family: string }[] } }) => e.resource.name[0].family), ['V1']);
    t.notOk(page2.link.find((l: { relation: string }) => l.relation === 'next'));
  });

  t.test('ids are case-sensitive: a client id differing only by case is another resource', async (t) => {
    const id = `case-${unique()}`;
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/Patient/${id}`, payload: { ...patient(), id } })).statusCode, 201);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${id.toUpperCase()}` })).statusCode, 404);
    const upper = await h.fhir({ method: 'PUT', url: `/fhir/Patient/${id.toUpperCase()}`, payload: { ...patient('Upper'), id: id.toUpperCase() } });
    t.ok([201, 409].includes(upper.statusCode), `201 (SQLite) or 409 (MySQL's case-insensitive key), got ${upper.statusCode}`);
    const lower = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${id}` })).json();
    t.equal(lower.meta.versionId, '1', 'the lower-case resource was not overwritten');
  });

  t.test('concurrent updates that create the same new id give no 500', async (t) => {
    const id = `race-${unique()}`;
    const results = await Promise.all(Array.from({ length: 6 }, () => h.fhir({ method: 'PUT', url: `/fhir/Patient/${id}`, payload: { ...patient(), id } })));
    const statuses = results.map((r) => r.statusCode);
    t.ok(statuses.every((s) => s === 200 || s === 201), `every writer succeeds: ${statuses.join(',')}`);
    t.equal(statuses.filter((s) => s === 201).length, 1, statuses.join(','));
    const versions = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${id}` })).json().meta.versionId;
    t.equal(Number(versions), statuses.filter((s) => s === 200 || s === 201).length, 'one version per successful write');
  });

  t.test('values larger than a TEXT column are stored cut and returned whole', async (t) => {
    const long = 'é'.repeat(40_000); // 80,000 bytes > TEXT's 65,535
    const body = patient(undefined, {
      extension: [{ url: 'http://hms.example.org/fhir/StructureDefinition/patient-allergies', valueString: long }],
      address: [{ line: ['x'.repeat(70_000)], city: 'Big' }],
    });
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: body });
    t.equal(res.statusCode, 201, res.body.slice(0, 300));
    const read = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${res.json().id}` })).json();
    t.equal(read.extension[0].valueString, long);
    t.equal(read.address[0].line[0].length, 70_000);
    const row = await h.db('patients').where({ id: res.json().id }).first();
    t.ok(Buffer.byteLength(row.allergies, 'utf8') <= 65_535);
  });

  t.test('history paging parameters are validated', async (t) => {
    const created = (await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient() })).json();
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${created.id}/_history?_count=-5` })).statusCode, 400);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${created.id}/_history?_below=abc` })).statusCode, 400);
    const empty = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${created.id}/_history?_below=1` })).json();
    t.equal(empty.entry, undefined, 'no empty entry array');
    t.equal((await h.fhir({ method: 'GET', url: '/fhir/Patient/_history' })).statusCode, 200, 'type history is served (test/integration/history.test.ts)');
  });

  t.test('read of an unknown id is 404; an invalid id is 400', async (t) => {
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${randomUUID()}` })).statusCode, 404);
    t.equal((await h.fhir({ method: 'GET', url: '/fhir/Patient/bad$id' })).statusCode, 400);
  });

  t.test('Prefer: return=minimal answers without a body; return=OperationOutcome with an outcome', async (t) => {
    const minimal = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: { prefer: 'return=minimal' }, payload: patient() });
    t.equal(minimal.statusCode, 201);
    t.equal(minimal.body, '');
    t.ok(minimal.headers.location);
    const oo = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: { prefer: 'return=OperationOutcome' }, payload: patient() });
    t.equal(oo.statusCode, 201);
    t.equal(oo.json().resourceType, 'OperationOutcome');
    const rep = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: { prefer: 'return=representation' }, payload: patient() });
    t.equal(rep.json().resourceType, 'Patient');
  });

  t.test('every access writes a security_logs row naming the user and the resource', async (t) => {
    const created = (await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: patient(), headers: { 'user-agent': 'crud-test' } })).json();
    await h.fhir({ method: 'GET', url: `/fhir/Patient/${created.id}`, headers: { 'user-agent': 'crud-test' } });
    await h.app.auditLog.settle();
    const rows = await h.db('security_logs').where({ resource_type: 'Patient', resource_id: created.id }).orderBy('timestamp');
    t.same(rows.map((r: { action: string }) => r.action).sort(), ['create', 'read']);
    for (const r of rows) {
      t.equal(r.user_id, h.userId);
      t.equal(r.user_agent, 'crud-test');
      t.ok(r.ip_address);
      t.equal(Number(r.success), 1);
    }
  });
});

t.test('Patient validation: nothing malformed is written', async (t) => {
  const h = await testApp(t);
  const countBefore = async () => Number(((await h.db('patients').count({ n: '*' }))[0] as { n: number }).n);

  const cases: { name: string; body: unknown; status: number; expression?: string }[] = [
    { name: 'a bad date', body: patient(undefined, { birthDate: '1980-13-45' }), status: 400, expression: 'Patient.birthDate' },
    { name: 'an impossible day (R4: dates SHALL be valid dates)', body: patient(undefined, { birthDate: '1981-02-29' }), status: 400, expression: 'Patient.birthDate' },
    { name: 'a wrong type', body: patient(undefined, { active: 'yes' }), status: 400, expression: 'Patient.active' },
    { name: 'an unknown element', body: patient(undefined, { favouriteColour: 'blue' }), status: 400, expression: 'Patient.favouriteColour' },
    { name: 'a wrong resourceType', body: { ...patient(), resourceType: 'Observation' }, status: 400, expression: 'Patient.resourceType' },
    { name: 'an invalid gender code', body: patient(undefined, { gender: 'f' }), status: 400, expression: 'Patient.gender' },
    { name: 'a nested error', body: patient(undefined, { name: [{ given: 'Ann' }] }), status: 400, expression: 'Patient.name[0].given' },
    { name: 'a generalPractitioner that is a user but not a clinician', body: { generalPractitionerIsAdmin: true }, status: 422, expression: 'Patient.generalPractitioner' },
    { name: 'a reference to a missing practitioner', body: patient(undefined, { generalPractitioner: [{ reference: `Practitioner/${randomUUID()}` }] }), status: 422, expression: 'Patient.generalPractitioner' },
    { name: 'an unknown blood type', body: patient(undefined, { extension: [{ url: 'http://hms.example.org/fhir/StructureDefinition/patient-blood-type', valueCode: 'Z+' }] }), status: 422 },
    { name: 'a birth date in the future', body: patient(undefined, { birthDate: '2999-01-01' }), status: 422, expression: 'Patient.birthDate' },
    { name: 'a JSON array', body: [patient()], status: 400 },
  ];
  for (const c of cases) {
    t.test(`refuses ${c.name} with ${c.status} and an OperationOutcome`, async (t) => {
      const before = await countBefore();
      const payload = (c.body as { generalPractitionerIsAdmin?: boolean }).generalPractitionerIsAdmin
        ? patient(undefined, { generalPractitioner: [{ reference: `Practitioner/${h.userId}` }] })
        : c.body;
      const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: payload as object });
      t.equal(res.statusCode, c.status, res.body);
      const body = res.json();
      t.equal(body.resourceType, 'OperationOutcome');
      if (c.expression) t.ok(body.issue.some((i: { expression?: string[] }) => i.expression?.includes(c.expression!)), JSON.stringify(body.issue));
      t.equal(await countBefore(), before, 'nothing was written');
    });
  }
});
