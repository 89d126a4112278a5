/**
 * The admin API for people and their accounts (/admin/users) over HTTP on the real database:
 * every route's answer and refusals, clinicians as Practitioners through the FHIR write path,
 * patient links (also raced), paging, the audit rows, and that no answer ever carries a password
 * hash. Users get random emails and logins their own client IP, so runs sharing a database
 * (MariaDB) do not meet.
 */
import t, { type Test } from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { testApp } from '../helpers/app.js';
import { makePatient, unique } from '../helpers/world.js';
import { PRACTITIONER_EXTENSIONS } from '../../src/mappers/practitioner-mapper.js';

const PASSWORD = 'correct horse battery staple';
// HMS_SESSION_CACHE 0: revocations are checked on the very next request (sessions.test.ts covers the cache)
const h = await testApp(t, { HMS_SESSION_CACHE: 0 });

const freshIp = (): string => `10.${[...randomBytes(3)].join('.')}`;
const freshEmail = (tag: string): string => `${tag}-${randomUUID()}@admin.test.example.org`;
let bodiesChecked = 0;

/** Every answer of the admin API (and of logins) passes through here: none may carry a hash. */
function checked(res: LightMyRequestResponse): LightMyRequestResponse {
  if (/password_hash|\$2[aby]\$\d\d\$/.test(res.body)) throw new Error(`a response carries a password hash: ${res.body}`);
  bodiesChecked++;
  return res;
}

async function api(opts: InjectOptions & { token?: string | null }): Promise<LightMyRequestResponse> {
  const { token, ...rest } = opts;
  const headers: Record<string, string> = { ...(rest.headers as Record<string, string>) };
  if (token !== null) headers.authorization ??= `Bearer ${token ?? h.token}`;
  if (rest.payload !== undefined) headers['content-type'] ??= 'application/json';
  return checked(await h.app.inject({ remoteAddress: freshIp(), ...rest, headers }));
}

async function createUser(body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await api({ method: 'POST', url: '/admin/users', payload: { password: PASSWORD, name: `User ${unique()}`, ...body } });
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

async function login(email: string, password = PASSWORD): Promise<LightMyRequestResponse> {
  return checked(await h.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: freshIp() }));
}

async function loginToken(email: string): Promise<string> {
  const res = await login(email);
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.json().access_token as string;
}

function isOutcome(tt: Test, res: LightMyRequestResponse, status: number, msg = ''): void {
  tt.equal(res.statusCode, status, `${msg} status ${status}: ${res.body.slice(0, 200)}`);
  tt.equal(res.json().resourceType, 'OperationOutcome', `${msg} an OperationOutcome`);
}

const logs = (where: Record<string, unknown>) => h.db('security_logs').where(where).orderBy('id').select();
const data = (row: Record<string, unknown>): Record<string, any> => (typeof row.additional_data === 'string' ? JSON.parse(row.additional_data) : row.additional_data) as Record<string, any>;
const ext = (r: { extension?: { url: string; [k: string]: unknown }[] }, url: string) => r.extension?.find((e) => e.url === url);
const practitioner = (id: string) => h.fhir({ method: 'GET', url: `/fhir/Practitioner/${id}` });

t.test('POST /admin/users creates every role; a doctor or nurse is Practitioner/{id} version 1', async (t) => {
  for (const role of ['admin', 'finance', 'patient', 'doctor', 'nurse']) {
    const email = freshEmail(role);
    const res = await api({ method: 'POST', url: '/admin/users', payload: { email, password: PASSWORD, name: `A ${role}`, role, department: 'Ward 7', phone: '555-0100' } });
    t.equal(res.statusCode, 201, `${role}: 201 ${res.body}`);
    t.match(String(res.headers['content-type']), /^application\/json/, 'JSON');
    const u = res.json();
    t.equal(res.headers.location, `/admin/users/${u.id}`);
    t.strictSame(Object.keys(u).sort(), ['created_at', 'department', 'email', 'has_password', 'id', 'last_login', 'name', 'patient', 'phone', 'practitioner', 'role', 'specialization', 'status', 'updated_at']);
    t.match(u, { email, role, status: 'active', department: 'Ward 7', phone: '555-0100', specialization: null, patient: null, has_password: true, last_login: null });
    t.match(u.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const row = await h.db('users').where({ id: u.id }).first();
    t.match(row.password_hash, /^\$2b\$12\$/, 'a bcrypt hash of cost 12');
    t.equal((await login(email)).statusCode, 200, `${role}: logs in`);
    const read = await practitioner(u.id);
    if (role === 'doctor' || role === 'nurse') {
      t.equal(u.practitioner, `Practitioner/${u.id}`);
      t.equal(read.statusCode, 200, 'reads as a Practitioner');
      t.equal(read.headers.etag, 'W/"1"', 'version 1');
      t.match(read.json(), { active: true, name: [{ text: `A ${role}` }], telecom: [{ system: 'email', value: email }, { system: 'phone', value: '555-0100' }] });
      t.equal(ext(read.json(), PRACTITIONER_EXTENSIONS.department)?.valueString, 'Ward 7');
      t.equal(ext(read.json(), PRACTITIONER_EXTENSIONS.role)?.valueCode, role);
      const history = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${u.id}/_history` })).json();
      t.equal(history.total ?? history.entry.length, 1, 'one version in the history');
      t.equal(history.entry[0].request.method, 'POST');
      const byName = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner?name=${encodeURIComponent(`A ${role}`)}&email=${encodeURIComponent(email)}` })).json();
      t.equal(byName.entry?.length, 1, 'found by name: the write path filled the search index');
    } else {
      t.equal(u.practitioner, null);
      t.equal(read.statusCode, 404, 'not a Practitioner');
    }
  }
  const created = await logs({ action: 'user-create', user_id: h.userId });
  t.ok(created.length >= 5, 'user-create rows name the acting admin');
  t.ok(created.every((r) => Number(r.success) === 1 && r.resource_type === 'User'));
});

t.test('POST /admin/users refuses bad input with 400 and writes nothing', async (t) => {
  const email = freshEmail('bad');
  const base = { email, password: PASSWORD, name: 'Bad Input', role: 'finance' };
  const cases: [string, Record<string, unknown>][] = [
    ['no email', { ...base, email: undefined }],
    ['no password', { ...base, password: undefined }],
    ['no role', { ...base, role: undefined }],
    ['an unknown role', { ...base, role: 'superuser' }],
    ['a bad email', { ...base, email: 'not-an-email' }],
    ['a 7-character password', { ...base, password: 'short12' }],
    ['a 73-byte password', { ...base, password: 'a' + 'é'.repeat(36) }],
    ['an unknown property', { ...base, password_hash: '$2b$12$abc' }],
    ['a phone over 20 characters', { ...base, phone: '1'.repeat(21) }],
    ['an empty name', { ...base, name: '' }],
    ['a malformed patient reference', { ...base, role: 'patient', patient: 'Person/1' }],
  ];
  for (const [what, payload] of cases) isOutcome(t, await api({ method: 'POST', url: '/admin/users', payload: JSON.parse(JSON.stringify(payload)) }), 400, what);
  const msg = (await api({ method: 'POST', url: '/admin/users', payload: { ...base, password: 'a' + 'é'.repeat(36) } })).json().issue[0].diagnostics;
  t.match(msg, /at most 72 bytes/, 'the password rule is named');
  t.equal(await h.db('users').where({ email }).first(), undefined, 'no user was created');
});

t.test('409 for a taken email, whatever its case, also one a Practitioner created through FHIR holds', async (t) => {
  const u = await createUser({ email: freshEmail('dup'), role: 'finance' });
  isOutcome(t, await api({ method: 'POST', url: '/admin/users', payload: { email: u.email, password: PASSWORD, name: 'Dup', role: 'admin' } }), 409);
  isOutcome(t, await api({ method: 'POST', url: '/admin/users', payload: { email: u.email.toUpperCase(), password: PASSWORD, name: 'Dup', role: 'doctor' } }), 409, 'upper case, clinician');
  const fhirEmail = freshEmail('fhir-dup');
  t.equal((await h.fhir({ method: 'POST', url: '/fhir/Practitioner', payload: { resourceType: 'Practitioner', telecom: [{ system: 'email', value: fhirEmail }] } })).statusCode, 201);
  const res = await api({ method: 'POST', url: '/admin/users', payload: { email: fhirEmail, password: PASSWORD, name: 'Dup', role: 'nurse' } });
  isOutcome(t, res, 409);
  t.equal(res.json().issue[0].code, 'duplicate');
  const racing = freshEmail('race');
  const results = await Promise.all([0, 1, 2].map((i) => api({ method: 'POST', url: '/admin/users', payload: { email: racing, password: PASSWORD, name: `Race ${i}`, role: i ? 'doctor' : 'finance' } })));
  t.strictSame(results.map((r) => r.statusCode).sort(), [201, 409, 409], 'three concurrent creations of one email: one account');
  t.equal((await h.db('users').whereRaw('LOWER(email) = ?', [racing.toLowerCase()]).select('id')).length, 1);
});

t.test('patient links: 422 for a missing, deleted or linked patient or a role other than patient; a race links once', async (t) => {
  const patientId = await makePatient(h);
  const u = await createUser({ email: freshEmail('pat'), role: 'patient', patient: `Patient/${patientId}` });
  t.equal(u.patient, `Patient/${patientId}`);
  t.equal((await h.db('patients').where({ id: patientId }).first()).user_id, u.id, 'patients.user_id is the account');
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${patientId}` })).headers.etag, 'W/"1"', 'the Patient resource did not change version');

  const again = await api({ method: 'POST', url: '/admin/users', payload: { email: freshEmail('pat2'), password: PASSWORD, name: 'Second', role: 'patient', patient: `Patient/${patientId}` } });
  isOutcome(t, again, 422, 'already linked');
  t.match(again.json().issue[0].diagnostics, /already linked/);
  isOutcome(t, await api({ method: 'POST', url: '/admin/users', payload: { email: freshEmail('pat3'), password: PASSWORD, name: 'Nobody', role: 'patient', patient: `Patient/${randomUUID()}` } }), 422, 'missing');
  const deleted = await makePatient(h);
  t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Patient/${deleted}` })).statusCode, 204);
  isOutcome(t, await api({ method: 'POST', url: '/admin/users', payload: { email: freshEmail('pat4'), password: PASSWORD, name: 'Deleted', role: 'patient', patient: `Patient/${deleted}` } }), 422, 'deleted');
  const free = await makePatient(h);
  const wrongRole = freshEmail('pat5');
  isOutcome(t, await api({ method: 'POST', url: '/admin/users', payload: { email: wrongRole, password: PASSWORD, name: 'Doc', role: 'doctor', patient: `Patient/${free}` } }), 422, 'role doctor');
  t.equal(await h.db('users').where({ email: wrongRole }).first(), undefined, 'nothing written on a refusal');

  const raced = await makePatient(h);
  const emails = [freshEmail('race0'), freshEmail('race1')];
  const results = await Promise.all(emails.map((email, i) => api({ method: 'POST', url: '/admin/users', payload: { email, password: PASSWORD, name: `Race ${i}`, role: 'patient', patient: `Patient/${raced}` } })));
  t.strictSame(results.map((r) => r.statusCode).sort(), [201, 422], 'two concurrent links of one patient: one succeeds');
  const winner = results.find((r) => r.statusCode === 201)!.json();
  t.equal((await h.db('patients').where({ id: raced }).first()).user_id, winner.id);
  t.equal((await h.db('users').whereIn('email', emails).select('id')).length, 1, 'the other account was not kept');

  t.test('PATCH links and releases; a patient account that changes role releases its record', async (t) => {
    const other = await makePatient(h);
    const acct = await createUser({ email: freshEmail('relink'), role: 'patient' });
    t.equal(acct.patient, null, 'a patient account may start unlinked');
    const linked = await api({ method: 'PATCH', url: `/admin/users/${acct.id}`, payload: { patient: `Patient/${other}` } });
    t.equal(linked.statusCode, 200, linked.body);
    t.equal(linked.json().patient, `Patient/${other}`);
    isOutcome(t, await api({ method: 'PATCH', url: `/admin/users/${u.id}`, payload: { patient: `Patient/${other}` } }), 422, 'linked elsewhere');
    const finance = await api({ method: 'PATCH', url: `/admin/users/${acct.id}`, payload: { role: 'finance' } });
    t.equal(finance.json().patient, null, 'the record is released with the role');
    t.equal((await h.db('patients').where({ id: other }).first()).user_id, null);
  });
});

t.test('a non-admin caller gets 403 on every route, no caller 401, and the refusals are audited', async (t) => {
  const victim = await createUser({ email: freshEmail('victim'), role: 'finance' });
  for (const role of ['doctor', 'finance', 'patient']) {
    const u = await createUser({ email: freshEmail(`caller-${role}`), role });
    const token = await loginToken(u.email);
    const routes: InjectOptions[] = [
      { method: 'GET', url: '/admin/users' },
      { method: 'POST', url: '/admin/users', payload: { email: freshEmail('x'), password: PASSWORD, name: 'X', role: 'admin' } },
      { method: 'POST', url: '/admin/users', payload: { nonsense: true } },
      { method: 'GET', url: `/admin/users/${victim.id}` },
      { method: 'PATCH', url: `/admin/users/${victim.id}`, payload: { status: 'suspended' } },
      { method: 'PATCH', url: `/admin/users/${u.id}`, payload: { role: 'admin' } },
      { method: 'DELETE', url: `/admin/users/${victim.id}` },
      { method: 'POST', url: `/admin/users/${victim.id}/password`, payload: { password: 'a new long password' } },
      { method: 'GET', url: `/admin/users/${victim.id}/sessions` },
      { method: 'DELETE', url: `/admin/users/${victim.id}/sessions` },
    ];
    for (const r of routes) isOutcome(t, await api({ ...r, token }), 403, `${role} ${r.method} ${r.url}`);
    const refused = await logs({ user_id: u.id, action: 'refused' });
    t.equal(refused.length, routes.length, `${role}: every refusal is logged`);
  }
  t.equal((await h.db('users').where({ id: victim.id }).first()).status, 'active', 'nothing changed');
  isOutcome(t, await api({ method: 'GET', url: '/admin/users', token: null }), 401, 'no token');
});

t.test('GET /admin/users/{id}, unknown ids 404 on every route', async (t) => {
  const u = await createUser({ email: freshEmail('read'), role: 'nurse', specialization: 'ICU' });
  const res = await api({ method: 'GET', url: `/admin/users/${u.id}` });
  t.equal(res.statusCode, 200);
  t.strictSame(res.json(), u, 'the user as created');
  const unknown = randomUUID();
  for (const r of [
    { method: 'GET', url: `/admin/users/${unknown}` },
    { method: 'PATCH', url: `/admin/users/${unknown}`, payload: { name: 'X' } },
    { method: 'DELETE', url: `/admin/users/${unknown}` },
    { method: 'POST', url: `/admin/users/${unknown}/password`, payload: { password: PASSWORD } },
    { method: 'GET', url: `/admin/users/${unknown}/sessions` },
    { method: 'DELETE', url: `/admin/users/${unknown}/sessions` },
    { method: 'GET', url: '/admin/users/not%20an%20id' },
  ] as InjectOptions[]) isOutcome(t, await api(r), 404, `${r.method} ${r.url}`);
  t.ok((await logs({ action: 'user-read', resource_id: u.id })).length === 1, 'the read is audited');
});

t.test('PATCH changes a clinician through the FHIR write path: each change is a new Practitioner version', async (t) => {
  const u = await createUser({ email: freshEmail('doc'), role: 'doctor', name: 'Dr Before', specialization: 'Cardiology' });
  const token = await loginToken(u.email);
  const patch = (payload: Record<string, unknown>) => api({ method: 'PATCH', url: `/admin/users/${u.id}`, payload });

  const renamed = await patch({ name: 'Dr After', department: 'Oncology', phone: null });
  t.equal(renamed.statusCode, 200, renamed.body);
  t.match(renamed.json(), { name: 'Dr After', department: 'Oncology', phone: null, role: 'doctor' });
  let p = await practitioner(u.id);
  t.equal(p.headers.etag, 'W/"2"', 'version 2');
  t.match(p.json().name, [{ text: 'Dr After' }]);
  // a doctor's live token is authenticated and then refused as no admin (403); a revoked one is 401
  isOutcome(t, await api({ method: 'GET', url: '/admin/users', token }), 403, 'a name change keeps the sessions');
  t.equal((await patch({ name: 'Dr After' })).statusCode, 200, 'a PATCH that changes nothing');
  t.equal((await practitioner(u.id)).headers.etag, 'W/"2"', 'writes no version');

  const fhirUpdate = await h.fhir({ method: 'PUT', url: `/fhir/Practitioner/${u.id}`, payload: { ...(p.json() as Record<string, unknown>), identifier: [{ system: 'urn:hms:staff', value: 'S-1' }], gender: 'female' } });
  t.equal(fhirUpdate.statusCode, 200, 'a FHIR update in between (version 3)');
  const suspended = await patch({ status: 'suspended' });
  t.equal(suspended.json().status, 'suspended');
  p = await practitioner(u.id);
  t.equal(p.headers.etag, 'W/"4"', 'version 4');
  t.equal(p.json().active, false);
  t.equal(ext(p.json(), PRACTITIONER_EXTENSIONS.status)?.valueCode, 'suspended');
  t.match(p.json(), { identifier: [{ value: 'S-1' }], gender: 'female' }, 'elements written through FHIR stay');
  isOutcome(t, await api({ method: 'GET', url: '/admin/users', token }), 401, 'the suspension ended the session');
  t.equal((await login(u.email)).statusCode, 401, 'and login is refused');

  const nurse = await patch({ status: 'active', role: 'nurse' });
  t.match(nurse.json(), { status: 'active', role: 'nurse', practitioner: `Practitioner/${u.id}` });
  p = await practitioner(u.id);
  t.equal(p.headers.etag, 'W/"5"');
  t.equal(p.json().active, true);
  t.equal(ext(p.json(), PRACTITIONER_EXTENSIONS.role)?.valueCode, 'nurse');
  t.equal(ext(p.json(), PRACTITIONER_EXTENSIONS.status), undefined, 'no longer suspended');

  const privilege = await logs({ action: 'privilege-change', resource_id: u.id });
  t.equal(privilege.length, 2, 'the suspension and the role change are privilege changes; the rename is not');
  t.match(data(privilege[0]!), { changed: ['status'], status: { from: 'active', to: 'suspended' }, sessions_revoked: 1 });
  t.notOk('role' in data(privilege[0]!), 'only what changed');
  t.match(data(privilege[1]!), { changed: ['status', 'role'], role: { from: 'doctor', to: 'nurse' }, status: { from: 'suspended', to: 'active' } });
  const updates = await logs({ action: 'update', resource_type: 'Practitioner', resource_id: u.id, user_id: h.userId });
  t.ok(updates.length >= 3, 'the write path audited its Practitioner updates as the admin');
});

t.test('a role change across the clinician line moves the row out of and into the Practitioner view', async (t) => {
  const u = await createUser({ email: freshEmail('mover'), role: 'doctor', name: 'Dr Mover' });
  const token = await loginToken(u.email);
  const out = await api({ method: 'PATCH', url: `/admin/users/${u.id}`, payload: { role: 'finance', department: 'Billing' } });
  t.equal(out.statusCode, 200, out.body);
  t.match(out.json(), { role: 'finance', department: 'Billing', practitioner: null });
  isOutcome(t, await practitioner(u.id), 410, 'Practitioner/{id} reads as deleted');
  const history = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${u.id}/_history` })).json();
  t.strictSame(history.entry.map((e: any) => e.request.method), ['DELETE', 'POST'], 'a DELETE version ends it');
  isOutcome(t, await api({ method: 'GET', url: '/admin/users', token }), 401, 'the role change ended the session');
  t.equal((await api({ method: 'GET', url: `/admin/users/${u.id}` })).statusCode, 200, 'the account itself lives on');
  t.equal((await login(u.email)).statusCode, 200, 'and logs in');

  const back = await api({ method: 'PATCH', url: `/admin/users/${u.id}`, payload: { role: 'doctor' } });
  t.equal(back.json().practitioner, `Practitioner/${u.id}`);
  const p = await practitioner(u.id);
  t.equal(p.statusCode, 200, 'a Practitioner again');
  t.equal(p.headers.etag, 'W/"3"', 'as the version after the DELETE');
  t.equal(ext(p.json(), PRACTITIONER_EXTENSIONS.department)?.valueString, 'Billing');

  const admin = await createUser({ email: freshEmail('admin-to-nurse'), role: 'admin', name: 'Was Admin' });
  await api({ method: 'PATCH', url: `/admin/users/${admin.id}`, payload: { role: 'nurse' } });
  const nurse = await practitioner(admin.id);
  t.equal(nurse.statusCode, 200);
  t.equal(nurse.headers.etag, 'W/"1"', 'an account that never was a Practitioner enters as version 1');
  const hist = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${admin.id}/_history` })).json();
  t.equal(hist.entry.length, 1);
  const found = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner?name=${encodeURIComponent('Was Admin')}&role=nurse` })).json();
  t.ok(found.entry?.some((e: any) => e.resource.id === admin.id), 'and is found by name');
});

t.test('nobody changes their own role or status or deletes themselves', async (t) => {
  const self = `/admin/users/${h.userId}`;
  isOutcome(t, await api({ method: 'PATCH', url: self, payload: { role: 'doctor' } }), 403, 'own role');
  isOutcome(t, await api({ method: 'PATCH', url: self, payload: { status: 'inactive' } }), 403, 'own status');
  isOutcome(t, await api({ method: 'DELETE', url: self }), 403, 'own account');
  const same = await api({ method: 'PATCH', url: self, payload: { role: 'admin', status: 'active', department: 'IT' } });
  t.equal(same.statusCode, 200, 'restating one\'s own role and status, with another change, is no change of them');
  t.equal(same.json().department, 'IT');
  t.match(await h.db('users').where({ id: h.userId }).first(), { role: 'admin', status: 'active', deleted_at: null });
  t.equal((await api({ method: 'GET', url: '/admin/users?limit=1' })).statusCode, 200, 'the session still works');
  isOutcome(t, await api({ method: 'PATCH', url: self, payload: {} }), 400, 'an empty change');
});

t.test('DELETE is soft; a deleted user reads 410, cannot log in, leaves the list; DELETE again succeeds', async (t) => {
  const patientId = await makePatient(h);
  const pat = await createUser({ email: freshEmail('del-pat'), role: 'patient', patient: `Patient/${patientId}` });
  const doc = await createUser({ email: freshEmail('del-doc'), role: 'doctor' });
  const token = await loginToken(doc.email);
  for (const u of [pat, doc]) {
    const res = await api({ method: 'DELETE', url: `/admin/users/${u.id}` });
    t.equal(res.statusCode, 204);
    t.equal(res.body, '');
    t.not((await h.db('users').where({ id: u.id }).first()).deleted_at, null, 'users.deleted_at is set');
    isOutcome(t, await api({ method: 'GET', url: `/admin/users/${u.id}` }), 410, 'reads as gone');
    isOutcome(t, await api({ method: 'PATCH', url: `/admin/users/${u.id}`, payload: { name: 'Zombie' } }), 410, 'cannot be changed');
    t.equal((await login(u.email)).statusCode, 401, 'cannot log in');
    const listed = (await api({ method: 'GET', url: `/admin/users?email=${encodeURIComponent(u.email)}` })).json();
    t.strictSame(listed.users, [], 'leaves the list');
    t.equal((await api({ method: 'DELETE', url: `/admin/users/${u.id}` })).statusCode, 204, 'deleting again succeeds');
  }
  isOutcome(t, await api({ method: 'GET', url: '/admin/users', token }), 401, 'the deleted doctor\'s session ended');
  isOutcome(t, await practitioner(doc.id), 410, 'the Practitioner reads as deleted');
  const hist = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${doc.id}/_history` })).json();
  t.equal(hist.entry[0].request.method, 'DELETE', 'through the write path');
  t.equal((await h.db('patients').where({ id: patientId }).first()).user_id, null, 'the patient record is released');
  const rows = await logs({ action: 'privilege-change', resource_id: doc.id });
  t.equal(rows.length, 1, 'one privilege change, not one per DELETE');
  t.match(data(rows[0]!), { changed: ['deleted'], role: { from: 'doctor', to: null } });
  t.equal((await logs({ action: 'user-delete', resource_id: doc.id })).length, 2, 'both DELETEs are audited');
});

t.test('a Practitioner created through FHIR gets a login with the password call', async (t) => {
  const email = freshEmail('fhir-doc');
  const created = await h.fhir({ method: 'POST', url: '/fhir/Practitioner', payload: { resourceType: 'Practitioner', name: [{ family: 'Fhir', given: ['Flo'] }], telecom: [{ system: 'email', value: email }] } });
  t.equal(created.statusCode, 201);
  const id = created.json().id as string;
  const before = (await api({ method: 'GET', url: `/admin/users/${id}` })).json();
  t.match(before, { email, role: 'doctor', has_password: false, practitioner: `Practitioner/${id}` });
  t.equal((await login(email)).statusCode, 401, 'no login before');

  isOutcome(t, await api({ method: 'POST', url: `/admin/users/${id}/password`, payload: { password: 'short' } }), 400, 'too short');
  isOutcome(t, await api({ method: 'POST', url: `/admin/users/${id}/password`, payload: { password: 'é'.repeat(37) } }), 400, 'over 72 bytes');
  isOutcome(t, await api({ method: 'POST', url: `/admin/users/${id}/password`, payload: {} }), 400, 'no password');
  const set = await api({ method: 'POST', url: `/admin/users/${id}/password`, payload: { password: PASSWORD } });
  t.equal(set.statusCode, 204, set.body);
  const ok = await login(email);
  t.equal(ok.statusCode, 200, 'logs in with it');
  t.equal((await api({ method: 'GET', url: `/admin/users/${id}` })).json().has_password, true);
  t.equal((await practitioner(id)).headers.etag, 'W/"1"', 'a password is not part of the Practitioner: no new version');

  const token = ok.json().access_token as string;
  t.equal((await api({ method: 'POST', url: `/admin/users/${id}/password`, payload: { password: 'another long password' } })).statusCode, 204);
  isOutcome(t, await api({ method: 'GET', url: '/admin/users', token }), 401, 'a password change ends the sessions');
  t.equal((await login(email)).statusCode, 401, 'the old password no longer works');
  t.equal((await login(email, 'another long password')).statusCode, 200);
  const rows = await logs({ action: 'privilege-change', resource_id: id });
  t.equal(rows.length, 2);
  t.strictSame(data(rows[1]!).changed, ['password'], 'names the field only');
  t.equal((await logs({ action: 'password-set', resource_id: id })).length, 2);
});

t.test('sessions: listed without tokens, revoked all at once', async (t) => {
  const u = await createUser({ email: freshEmail('sess'), role: 'admin' });
  const tokens = [await loginToken(u.email), await loginToken(u.email)];
  const list = await api({ method: 'GET', url: `/admin/users/${u.id}/sessions` });
  t.equal(list.statusCode, 200);
  const sessions = list.json();
  t.equal(sessions.length, 2);
  t.strictSame(Object.keys(sessions[0]).sort(), ['active', 'created_at', 'expires_at', 'id', 'ip_address', 'last_activity', 'live', 'user_agent']);
  t.ok(sessions.every((s: any) => s.active && s.live));
  for (const tok of tokens) t.notOk(list.body.includes(tok), 'no token in the list');
  const stored = await h.db('user_sessions').where({ user_id: u.id }).select('session_token');
  for (const s of stored) t.notOk(list.body.includes(s.session_token), 'no token hash either');

  const revoke = await api({ method: 'DELETE', url: `/admin/users/${u.id}/sessions` });
  t.equal(revoke.statusCode, 204);
  for (const tok of tokens) isOutcome(t, await api({ method: 'GET', url: '/admin/users', token: tok }), 401, 'revoked');
  const after = (await api({ method: 'GET', url: `/admin/users/${u.id}/sessions` })).json();
  t.ok(after.every((s: any) => !s.active && !s.live), 'listed as ended');
  const row = (await logs({ action: 'sessions-revoke', resource_id: u.id }))[0]!;
  t.equal(data(row).sessions_revoked, 2);
  t.equal((await logs({ action: 'sessions-list', resource_id: u.id })).length, 2);
});

t.test('GET /admin/users filters by role, status and email and pages by id', async (t) => {
  // ids are UUIDv7 (time-ordered): a walk from a marker made first meets this test's users in order;
  // other tests' users (the database is shared) may sort among them, so only ours are compared
  const role = 'finance';
  const marker = await createUser({ email: freshEmail('marker'), role });
  const made: string[] = [];
  for (let i = 0; i < 5; i++) made.push((await createUser({ email: freshEmail(`page${i}`), role })).id);
  await api({ method: 'PATCH', url: `/admin/users/${made[1]}`, payload: { status: 'suspended' } });

  const seen: string[] = [];
  let url: string | null = `/admin/users?role=${role}&limit=2&cursor=${marker.id}`;
  let pages = 0;
  let sizesOk = true;
  while (url && pages++ < 500) {
    const res = await api({ method: 'GET', url });
    if (res.statusCode !== 200) { t.fail(res.body); break; }
    const page = res.json();
    sizesOk &&= page.users.length <= 2 && (page.next === null) === (page.next_cursor === null) && (page.next === null || page.users.length === 2);
    for (const u of page.users) { if (u.role !== role) t.fail(`role ${u.role}`); seen.push(u.id); }
    url = page.next;
  }
  t.ok(sizesOk, 'pages of at most 2, a next link exactly when a page is full');
  t.ok(seen.every((id, i) => i === 0 || seen[i - 1]! < id), 'in id order, none twice');
  t.strictSame(seen.filter((id) => made.includes(id)), made, 'every user once, in id order');

  const suspended = (await api({ method: 'GET', url: `/admin/users?status=suspended&role=${role}&cursor=${marker.id}` })).json();
  t.strictSame(suspended.users.map((u: any) => u.id), [made[1]]);
  const one = (await api({ method: 'GET', url: `/admin/users?email=${encodeURIComponent(marker.email.toUpperCase())}` })).json();
  t.strictSame(one.users.map((u: any) => u.id), [marker.id], 'email: whole, any case');
  t.strictSame((await api({ method: 'GET', url: `/admin/users?email=${freshEmail('none')}` })).json(), { users: [], next_cursor: null, next: null });
  for (const q of ['limit=0', 'limit=201', 'limit=ten', 'role=king', 'status=gone', 'cursor=not%20an%20id', 'unknown=1']) {
    isOutcome(t, await api({ method: 'GET', url: `/admin/users?${q}` }), 400, q);
  }
  const listed = (await logs({ action: 'user-list', user_id: h.userId })).map(data);
  t.ok(listed.some((d) => JSON.stringify(d.filters) === '["email"]'), 'the filters are recorded by name');
  t.notOk(JSON.stringify(listed).includes(marker.email), 'but not the email searched for');
});

t.test('the security log: every route audited, no password or hash in any row', async (t) => {
  for (const action of ['user-create', 'user-list', 'user-read', 'user-update', 'user-delete', 'password-set', 'sessions-list', 'sessions-revoke', 'privilege-change']) {
    t.ok((await logs({ action, user_id: h.userId })).length > 0, `${action} rows by the admin`);
  }
  const everything = JSON.stringify(await h.db('security_logs').select());
  t.notOk(everything.includes(PASSWORD), 'no password');
  t.notOk(/\$2[aby]\$\d\d\$/.test(everything), 'no bcrypt hash');
});

t.test('the OpenAPI document lists the admin routes with their schemas', async (t) => {
  const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, any>> };
  const paths: Record<string, string[]> = {
    '/admin/users': ['post', 'get'], '/admin/users/{id}': ['get', 'patch', 'delete'],
    '/admin/users/{id}/password': ['post'], '/admin/users/{id}/sessions': ['get', 'delete'],
  };
  for (const [path, methods] of Object.entries(paths)) {
    for (const m of methods) {
      t.ok(doc.paths[path]?.[m], `${m.toUpperCase()} ${path}`);
      t.strictSame(doc.paths[path]?.[m]?.tags, ['admin']);
    }
  }
  t.ok(doc.paths['/admin/users']!.post.requestBody, 'with its body schema');
  const userSchema = doc.paths['/admin/users']!.post.responses['201'].content['application/json'].schema;
  t.notOk(Object.keys(userSchema.properties).some((k) => k.includes('hash') || k === 'password'), 'the user schema has no password or hash');
});

t.test('every answer was checked for password hashes', async (t) => {
  t.ok(bodiesChecked > 100, `${bodiesChecked} bodies checked`);
});
