import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp, type TestApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences, unique } from '../helpers/world.js';
import { PRACTITIONER_EXTENSIONS } from '../../src/mappers/practitioner-mapper.js';
import { PRACTITIONER_ROLE_SYSTEM } from '../../src/mappers/practitioner-role-mapper.js';

const roleExt = (code: string) => ({ url: PRACTITIONER_EXTENSIONS.role, valueCode: code });
const practitioner = (extra: Record<string, unknown> = {}, email = `p-${unique()}@test.example.org`) => ({
  resourceType: 'Practitioner',
  identifier: [{ system: 'urn:hms:test', value: unique() }],
  name: [{ family: `Fam${unique()}`, given: ['Ann'], prefix: ['Dr'] }],
  telecom: [{ system: 'email', value: email }],
  ...extra,
});

const userCount = async (h: TestApp): Promise<number> => Number(((await h.db('users').count({ n: '*' }))[0] as { n: number }).n);
const create = async (h: TestApp, body: Record<string, unknown>): Promise<Record<string, any>> => {
  const res = await h.fhir({ method: 'POST', url: '/fhir/Practitioner', payload: body });
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`);
  return res.json();
};

t.test('Practitioner create, read, vread, update, delete, history', async (t) => {
  const h = await testApp(t);

  t.test('create makes a users row (role doctor by default) and answers 201 with meta', async (t) => {
    const body = practitioner({ extension: [{ url: PRACTITIONER_EXTENSIONS.department, valueString: 'Cardiology' }] });
    const res = await h.fhir({ method: 'POST', url: '/fhir/Practitioner', payload: body });
    t.equal(res.statusCode, 201, res.body);
    const created = res.json();
    t.match(created.id, /^[0-9a-f-]{36}$/);
    t.equal(created.meta.versionId, '1');
    t.match(res.headers.location, new RegExp(`/fhir/Practitioner/${created.id}/_history/1$`));
    const row = await h.db('users').where({ id: created.id }).first();
    t.equal(row.role, 'doctor');
    t.equal(row.email, body.telecom[0]!.value);
    t.equal(row.name, `Dr Ann ${body.name[0]!.family}`);
    t.equal(row.department, 'Cardiology');
    t.equal(row.status, 'active');
    t.equal(row.password_hash, '!');
    t.equal(Number(row.version_id), 1);
    const read = await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${created.id}` });
    t.equal(read.statusCode, 200);
    t.same(withoutIdAndMeta(read.json()), body);
    t.equal(read.headers.etag, 'W/"1"');
  });

  for (const { name, resource } of officialExamples('Practitioner')) {
    t.test(`the official example ${name} (with an email added) reads back unchanged apart from id and meta`, async (t) => {
      const body = rewriteReferences({ ...resource, telecom: [{ system: 'email', value: `careful-${unique()}@acme.example.org` }] }, {});
      const created = await h.fhir({ method: 'POST', url: '/fhir/Practitioner', payload: body });
      t.equal(created.statusCode, 201, created.body);
      const read = await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${created.json().id}` });
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
      const hist = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${created.json().id}/_history/1` })).json();
      t.same(withoutIdAndMeta(hist), withoutIdAndMeta(body));
    });
  }

  t.test('update bumps the version, changes the columns, keeps the password hash; vread and history', async (t) => {
    const created = await create(h, practitioner());
    const url = `/fhir/Practitioner/${created.id}`;
    const hash = '$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0';
    await h.db('users').where({ id: created.id }).update({ password_hash: hash });
    const email = `changed-${unique()}@test.example.org`;
    const body = {
      ...created, meta: undefined, telecom: [{ system: 'email', value: email }, { system: 'phone', value: '555-0142' }],
      extension: [roleExt('nurse')], active: false, qualification: [{ code: { text: 'Midwifery' } }],
    };
    const upd = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: body });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal(upd.json().meta.versionId, '2');
    const row = await h.db('users').where({ id: created.id }).first();
    t.same([row.email, row.phone, row.role, row.status, row.specialization], [email, '555-0142', 'nurse', 'inactive', 'Midwifery']);
    t.equal(row.password_hash, hash, 'an update never touches the password');
    const stale = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: body });
    t.equal(stale.statusCode, 412);
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().telecom[0].value, created.telecom[0].value);
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/2` })).json().active, false);
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.same(hist.entry.map((e: { request: { method: string } }) => e.request.method), ['PUT', 'POST']);
  });

  t.test('update of an unknown id creates the user with that id', async (t) => {
    const id = `prac-${unique()}`;
    const res = await h.fhir({ method: 'PUT', url: `/fhir/Practitioner/${id}`, payload: { ...practitioner(), id } });
    t.equal(res.statusCode, 201, res.body);
    t.equal((await h.db('users').where({ id }).first()).password_hash, '!');
  });

  t.test('delete is soft: 410, history keeps a DELETE, and the practitioner is no longer a valid generalPractitioner', async (t) => {
    const created = await create(h, practitioner());
    const url = `/fhir/Practitioner/${created.id}`;
    const gp = { generalPractitioner: [{ reference: `Practitioner/${created.id}` }] };
    await makePatient(h, undefined, gp); // accepted while the practitioner exists
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/PractitionerRole/${created.id}` })).statusCode, 410);
    const row = await h.db('users').where({ id: created.id }).first();
    t.ok(row.deleted_at, 'the users row stays, marked deleted');
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.same(hist.entry.map((e: { request: { method: string } }) => e.request.method), ['DELETE', 'POST']);
    const search = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner?email=${encodeURIComponent(created.telecom[0].value)}` })).json();
    t.equal(search.total, 0, 'search no longer finds it');
    const patient = await h.fhir({
      method: 'POST', url: '/fhir/Patient',
      payload: { resourceType: 'Patient', name: [{ family: 'Orphan' }], gender: 'male', birthDate: '1970-01-01', ...gp },
    });
    t.equal(patient.statusCode, 422, patient.body);
    t.same(patient.json().issue[0].expression, ['Patient.generalPractitioner']);
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Practitioner/${randomUUID()}` })).statusCode, 404);
    const revived = await h.fhir({ method: 'PUT', url, payload: { ...created, meta: undefined } });
    t.equal(revived.statusCode, 201, 'a PUT revives a deleted practitioner');
    t.equal(revived.json().meta.versionId, '3');
    t.equal((await h.db('users').where({ id: created.id }).first()).deleted_at, null);
  });

  t.test('a created Practitioner cannot log in until an admin sets a password', async (t) => {
    const email = `nologin-${unique()}@test.example.org`;
    await create(h, practitioner({}, email));
    for (const password of ['!', 'correct horse battery']) {
      const res = await h.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
      t.equal(res.statusCode, 401, `password '${password}'`);
    }
  });

  t.test('a users row written natively reads as a Practitioner from its columns', async (t) => {
    const id = await makeClinician(h, 'nurse', { phone: '555-0199', status: 'suspended' });
    const row = await h.db('users').where({ id }).first();
    const res = await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${id}` });
    t.equal(res.statusCode, 200, res.body);
    const p = res.json();
    t.same(p.name, [{ text: row.name }]);
    t.same(p.telecom, [{ system: 'email', value: row.email }, { system: 'phone', value: '555-0199' }]);
    t.same(p.qualification, [{ code: { text: 'Cardiology' } }]);
    t.equal(p.active, false);
    t.same(p.extension, [
      { url: PRACTITIONER_EXTENSIONS.department, valueString: 'Cardiology' }, roleExt('nurse'),
      { url: PRACTITIONER_EXTENSIONS.status, valueCode: 'suspended' },
    ]);
    t.equal(p.meta.versionId, '1');
    t.notMatch(res.body, /password|last_login/);
    // writing it back changes no column
    const put = await h.fhir({ method: 'PUT', url: `/fhir/Practitioner/${id}`, payload: { ...p, meta: undefined } });
    t.equal(put.statusCode, 200, put.body);
    const after = await h.db('users').where({ id }).first();
    for (const c of ['name', 'email', 'phone', 'role', 'status', 'department', 'specialization', 'password_hash']) t.equal(after[c], row[c], c);
  });

  t.test('a native change to a column shows through the kept resource', async (t) => {
    const created = await create(h, practitioner({ active: true }));
    await h.db('users').where({ id: created.id }).update({ status: 'suspended', department: 'ICU' });
    const p = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${created.id}` })).json();
    t.equal(p.active, false);
    t.same(p.extension, [{ url: PRACTITIONER_EXTENSIONS.department, valueString: 'ICU' }, { url: PRACTITIONER_EXTENSIONS.status, valueCode: 'suspended' }]);
    t.same(p.identifier, created.identifier);
  });

  t.test('users that are not doctors or nurses are not Practitioners', async (t) => {
    const id = randomUUID();
    await h.db('users').insert({ id, email: `admin-${unique()}@test.example.org`, password_hash: '!', name: 'An Admin', role: 'admin' });
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${id}` })).statusCode, 404);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/PractitionerRole/${id}` })).statusCode, 404);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${h.userId}` })).statusCode, 404, 'the test admin either');
    const put = await h.fhir({ method: 'PUT', url: `/fhir/Practitioner/${id}`, payload: { ...practitioner(), id } });
    t.equal(put.statusCode, 409, 'a PUT cannot take over the id of another account');
    const row = await h.db('users').where({ id }).first();
    t.equal(row.role, 'admin');
    t.equal(row.name, 'An Admin');
  });
});

t.test('Practitioner business rules: nothing is written when refused', async (t) => {
  const h = await testApp(t);
  const refused = async (t: Test, body: unknown, status: number, expression: string | undefined, method = 'POST', url = '/fhir/Practitioner') => {
    const before = await userCount(h);
    const res = await h.fhir({ method: method as 'POST', url, payload: body as Record<string, unknown> });
    t.equal(res.statusCode, status, res.body);
    t.equal(res.json().resourceType, 'OperationOutcome');
    if (expression) t.same(res.json().issue[0].expression, [expression]);
    t.equal(await userCount(h), before, 'no users row was written');
    return res;
  };

  t.test('422 without an email (the login of the account)', async (t) => {
    await refused(t, practitioner({ telecom: [{ system: 'phone', value: '555-0100' }] }), 422, 'Practitioner.telecom');
    await refused(t, practitioner({ telecom: undefined }), 422, 'Practitioner.telecom');
    await refused(t, practitioner({}, 'not-an-email'), 422, 'Practitioner.telecom');
  });

  t.test('409 when another user already has the email, whatever its case', async (t) => {
    const email = `dup-${unique()}@test.example.org`;
    await create(h, practitioner({}, email));
    const res = await refused(t, practitioner({}, email.toUpperCase()), 409, 'Practitioner.telecom');
    t.equal(res.json().issue[0].code, 'duplicate');
    const admin = await h.db('users').where({ id: h.userId }).first();
    await refused(t, practitioner({}, admin.email), 409, 'Practitioner.telecom', 'POST');
  });

  t.test('concurrent creates with one email: one 201, the others 409, never a 500', async (t) => {
    const email = `race-${unique()}@test.example.org`;
    const results = await Promise.all(Array.from({ length: 4 }, () => h.fhir({ method: 'POST', url: '/fhir/Practitioner', payload: practitioner({}, email) })));
    const statuses = results.map((r) => r.statusCode).sort();
    t.same(statuses, [201, 409, 409, 409]);
    t.equal(Number((await h.db('users').whereRaw('LOWER(email) = ?', [email]).count({ n: '*' }))[0]!.n), 1);
  });

  t.test('409 when an update takes the email of another user; the version stays', async (t) => {
    const a = await create(h, practitioner());
    const b = await create(h, practitioner());
    await refused(t, { ...b, meta: undefined, telecom: a.telecom }, 409, 'Practitioner.telecom', 'PUT', `/fhir/Practitioner/${b.id}`);
    const read = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${b.id}` })).json();
    t.equal(read.meta.versionId, '1');
    t.same(read.telecom, b.telecom);
  });

  t.test('422 for a role other than doctor or nurse (no admin can be made here) and for contradictory status', async (t) => {
    const url = PRACTITIONER_EXTENSIONS.role;
    await refused(t, practitioner({ extension: [roleExt('admin')] }), 422, `Practitioner.extension('${url}')`);
    await refused(t, practitioner({ active: true, extension: [{ url: PRACTITIONER_EXTENSIONS.status, valueCode: 'suspended' }] }), 422, 'Practitioner.active');
    await refused(t, practitioner({ extension: [{ url: PRACTITIONER_EXTENSIONS.status, valueCode: 'retired' }] }), 422, `Practitioner.extension('${PRACTITIONER_EXTENSIONS.status}')`);
  });

  t.test('PractitionerRole is read-only', async (t) => {
    const id = await makeClinician(h);
    const post = await h.fhir({ method: 'POST', url: '/fhir/PractitionerRole', payload: { resourceType: 'PractitionerRole' } });
    t.ok([404, 405].includes(post.statusCode), `POST answers ${post.statusCode}`);
    const put = await h.fhir({ method: 'PUT', url: `/fhir/PractitionerRole/${id}`, payload: { resourceType: 'PractitionerRole', id } });
    t.ok([404, 405].includes(put.statusCode), `PUT answers ${put.statusCode}`);
    const del = await h.fhir({ method: 'DELETE', url: `/fhir/PractitionerRole/${id}` });
    t.ok([404, 405].includes(del.statusCode), `DELETE answers ${del.statusCode}`);
    t.notOk((await h.db('users').where({ id }).first()).deleted_at);
  });
});

type Bundle = { total?: number; entry?: { resource: Record<string, any>; search: { mode: string } }[] };

t.test('Practitioner and PractitionerRole search', async (t) => {
  const h = await testApp(t);
  const run = `urn:hms:prac-search:${randomUUID()}`;
  const scope = `identifier=${encodeURIComponent(run + '|')}`;
  const tag = unique();
  const spec = (s: string) => `${s}${tag}`;
  const people = {
    careful: { name: [{ family: 'Careful', given: ['Adam'], prefix: ['Dr'] }], telecom: [{ system: 'email', value: `careful.${tag}@acme.org` }, { system: 'phone', value: `555-1${tag.slice(0, 4)}` }], qualification: [{ code: { text: spec('Cardio') } }], active: true },
    nightingale: { name: [{ family: 'Nightingale', given: ['Florence'] }], telecom: [{ system: 'email', value: `florence.${tag}@acme.org` }, { system: 'fax', value: '555-0999' }, { system: 'email', value: `second.${tag}@acme.org` }], extension: [roleExt('nurse')], qualification: [{ code: { text: spec('Midwifery') } }] },
    carter: { name: [{ text: 'John Carter', family: 'Carter', given: ['John'] }], telecom: [{ system: 'email', value: `carter.${tag}@acme.org` }], active: false, qualification: [{ code: { text: spec('Cardio') } }] },
  };
  const ids: Record<string, string> = {};
  for (const [key, body] of Object.entries(people)) {
    ids[key] = (await create(h, { resourceType: 'Practitioner', identifier: [{ system: run, value: key }], ...body })).id;
  }
  const keysOf = (b: Bundle): string[] =>
    (b.entry ?? []).filter((e) => e.search.mode === 'match').map((e) => Object.keys(ids).find((k) => ids[k] === e.resource.id) ?? e.resource.id);
  const search = async (type: string, q: string): Promise<Bundle> => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/${type}?${q}` });
    t.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const expectKeys = async (q: string, expected: string[], type = 'Practitioner') =>
    t.same(keysOf(await search(type, type === 'Practitioner' ? `${scope}&${q}` : q)).sort(), [...expected].sort(), `${type}?${q}`);

  t.test('identifier, name, family, given (starts-with, :exact, :contains)', async () => {
    await expectKeys(`identifier=${encodeURIComponent(run + '|carter')}`, ['carter']);
    await expectKeys('_count=50', ['careful', 'nightingale', 'carter']);
    await expectKeys('name=car', ['careful', 'carter']);
    await expectKeys('name=john carter', ['carter']);
    await expectKeys('name=dr', ['careful']);
    await expectKeys('family=night', ['nightingale']);
    await expectKeys('family:exact=careful', []);
    await expectKeys('family:exact=Careful', ['careful']);
    await expectKeys('given:contains=lorenc', ['nightingale']);
    await expectKeys('given=adam,john', ['careful', 'carter']);
  });

  t.test('email (case-insensitive, the account email), phone, telecom', async () => {
    await expectKeys(`email=${encodeURIComponent(`CAREFUL.${tag}@ACME.ORG`)}`, ['careful']);
    await expectKeys(`email=${encodeURIComponent(`email|florence.${tag}@acme.org`)}`, ['nightingale']);
    await expectKeys(`email=${encodeURIComponent(`phone|florence.${tag}@acme.org`)}`, []);
    await expectKeys(`phone=555-1${tag.slice(0, 4)}`, ['careful']);
    await expectKeys('phone:missing=true', ['nightingale', 'carter']);
    await expectKeys(`telecom=${encodeURIComponent('fax|555-0999')}`, ['nightingale']);
    await expectKeys(`telecom=${encodeURIComponent(`second.${tag}@acme.org`)}`, ['nightingale']);
  });

  t.test('active, role (with :not), specialty', async () => {
    await expectKeys('active=true', ['careful', 'nightingale']);
    await expectKeys('active=false', ['carter']);
    await expectKeys('role=nurse', ['nightingale']);
    await expectKeys(`role=${encodeURIComponent(PRACTITIONER_ROLE_SYSTEM + '|doctor')}`, ['careful', 'carter']);
    await expectKeys('role:not=doctor', ['nightingale']);
    await expectKeys('role=admin', []);
    await expectKeys(`specialty=${spec('cardio')}`, ['careful', 'carter']);
  });

  t.test('_sort on name', async () => {
    t.same(keysOf(await search('Practitioner', `${scope}&_sort=name`)), ['careful', 'nightingale', 'carter']); // Dr Adam Careful, Florence Nightingale, John Carter
    t.same(keysOf(await search('Practitioner', `${scope}&_sort=-name`)), ['carter', 'nightingale', 'careful']);
  });

  t.test('the CapabilityStatement names the HMS search parameters', async () => {
    const cs = (await h.fhir({ method: 'GET', url: '/fhir/metadata' })).json();
    const prac = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Practitioner');
    const role = prac.searchParam.find((p: { name: string }) => p.name === 'role');
    t.equal(role.definition, 'http://hms.example.org/fhir/SearchParameter/Practitioner-role');
    const pr = cs.rest[0].resource.find((r: { type: string }) => r.type === 'PractitionerRole');
    t.same(pr.interaction.map((i: { code: string }) => i.code).sort(), ['read', 'search-type']);
    const specialty = pr.searchParam.find((p: { name: string }) => p.name === 'specialty');
    t.equal(specialty.definition, 'http://hms.example.org/fhir/SearchParameter/PractitionerRole-specialty', 'specialty matches text, not system|code');
  });

  t.test('PractitionerRole read and search: practitioner, role, specialty, active, email, phone', async () => {
    const native = await makeClinician(h, 'nurse', { specialization: spec('Midwifery'), phone: `555-2${tag.slice(0, 4)}`, status: 'inactive' });
    ids.native = native;
    const read = await h.fhir({ method: 'GET', url: `/fhir/PractitionerRole/${ids.careful}` });
    t.equal(read.statusCode, 200, read.body);
    const r = read.json();
    t.same(r.practitioner, { reference: `Practitioner/${ids.careful}`, display: 'Dr Adam Careful' });
    t.same(r.code, [{ coding: [{ system: PRACTITIONER_ROLE_SYSTEM, code: 'doctor', display: 'Doctor' }] }]);
    t.same(r.specialty, [{ text: spec('Cardio') }]);
    t.equal(r.active, true);
    t.equal(r.meta.versionId, '1');
    await expectKeys(`practitioner=Practitioner/${ids.careful}`, ['careful'], 'PractitionerRole');
    await expectKeys(`practitioner=${ids.nightingale},${native}`, ['nightingale', 'native'], 'PractitionerRole');
    await expectKeys(`specialty=${spec('Midwifery')}`, ['nightingale', 'native'], 'PractitionerRole');
    await expectKeys(`specialty=${spec('Midwifery')}&role=nurse&active=false`, ['native'], 'PractitionerRole');
    await expectKeys(`specialty=${spec('Cardio')}&role=doctor&active=true`, ['careful'], 'PractitionerRole');
    await expectKeys(`email=${encodeURIComponent(`Carter.${tag}@acme.org`)}`, ['carter'], 'PractitionerRole');
    await expectKeys(`phone=555-2${tag.slice(0, 4)}`, ['native'], 'PractitionerRole');
    await expectKeys(`practitioner.family=Nightingale&specialty=${spec('Midwifery')}`, ['nightingale'], 'PractitionerRole');
    const unscoped = keysOf(await search('Practitioner', `specialty=${spec('Midwifery')}`)).sort();
    t.same(unscoped, ['native', 'nightingale'], 'column-backed Practitioner parameters find rows written natively too');
  });
});
