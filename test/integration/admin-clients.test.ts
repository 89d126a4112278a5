/**
 * /admin/clients over HTTP on the real database: registration (201 shape, refusals), admin-only
 * access, reads, filtered and paged lists, changes, revocation and their audit rows.
 */
import t, { type Test } from 'tap';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { exportJWK, generateKeyPair } from 'jose';
import { testApp } from '../helpers/app.js';
import { insertUser } from '../../src/db/user-repository.js';
import { startSession } from '../../src/auth/sessions.js';
import { clientKey, freshIp, registerClient, signAssertion, tokenEndpoint, tokenForm, tokenRequest } from '../helpers/smart.js';

const h = await testApp(t, { HMS_SESSION_CACHE: 0 });
const { app, db } = h;
const [rsa, ec] = await Promise.all([clientKey('RS384'), clientKey('ES384')]);

type Body = Record<string, unknown>;
const admin = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Body, token = h.token, ip = freshIp()): Promise<LightMyRequestResponse> =>
  app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, remoteAddress: ip, ...(payload ? { payload } : {}) });

const newClient = (over: Body = {}): Body => ({ name: `Lab ${randomUUID()}`, kind: 'lab', scope: 'system/Patient.rs system/Observation.cru', jwks: { keys: [rsa.jwk] }, ...over });

function assertOutcome(tt: Test, res: LightMyRequestResponse, status: number): string {
  tt.equal(res.statusCode, status, `status ${status}`);
  tt.match(String(res.headers['content-type']), /^application\/fhir\+json/);
  const body = res.json();
  tt.equal(body.resourceType, 'OperationOutcome');
  return String(body.issue?.[0]?.diagnostics ?? '');
}

async function auditRows(ip: string, action?: string): Promise<Array<Record<string, unknown>>> {
  await app.auditLog.settle();
  return db('security_logs').where({ ip_address: ip, ...(action ? { action } : {}) }).select();
}

t.test('POST /admin/clients registers a client: 201 with client_id, name, kind, scope, status, jwks, created_at; audited', async (t) => {
  const ip = freshIp();
  const body = newClient({ scope: 'system/Observation.cru system/Patient.read system/Patient.rs' });
  const res = await admin('POST', '/admin/clients', body, h.token, ip);
  t.equal(res.statusCode, 201, res.body);
  t.match(String(res.headers['content-type']), /^application\/json/);
  const c = res.json();
  t.match(c.client_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a UUIDv7');
  t.equal(c.name, body.name);
  t.equal(c.kind, 'lab');
  t.equal(c.scope, 'system/Observation.cru system/Patient.rs', 'canonical: v1 spelled v2, duplicates merged');
  t.equal(c.status, 'active');
  t.strictSame(c.jwks, { keys: [rsa.jwk] }, 'the public JWKS as registered');
  t.notOk('jwks_url' in c);
  t.match(c.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.equal(c.created_by, h.userId);
  const rows = await auditRows(ip, 'client-create');
  t.equal(rows.length, 1, 'a client-create row');
  t.equal(rows[0]!.resource_id, c.client_id);
  t.equal(rows[0]!.user_id, h.userId);

  const read = await admin('GET', `/admin/clients/${c.client_id}`);
  t.equal(read.statusCode, 200);
  t.strictSame(read.json(), c, 'reads back the same');
});

t.test('an ES384 key and several keys with distinct kids are accepted', async (t) => {
  const res = await admin('POST', '/admin/clients', newClient({ kind: 'ehr', jwks: { keys: [rsa.jwk, ec.jwk] } }));
  t.equal(res.statusCode, 201, res.body);
  const bare = { ...ec.jwk };
  delete bare.alg;
  delete bare.use;
  t.equal((await admin('POST', '/admin/clients', newClient({ jwks: { keys: [bare] } }))).statusCode, 201, 'alg implied by an EC P-384 key');
});

t.test('bad scopes are refused with 400', async (t) => {
  for (const scope of ['system/Patient.rs?category=x', 'patient/Patient.rs', 'user/*.read', 'system/Patient.xyz', 'system/Patient.sr', 'openid', 'system/Nonexistent.rs', 'system/Patient.constructor', '   ']) {
    const res = await admin('POST', '/admin/clients', newClient({ scope }));
    assertOutcome(t, res, 400);
  }
  const res = await admin('POST', '/admin/clients', newClient({ scope: 'system/Patient.rs launch/patient' }));
  t.match(assertOutcome(t, res, 400), /launch\/patient/, 'names the scope it refused');
});

t.test('private keys, symmetric keys, weak or malformed keys and unsupported algorithms are refused with 400', async (t) => {
  const { privateKey } = await generateKeyPair('RS384', { extractable: true });
  const priv = { ...(await exportJWK(privateKey)), kid: 'private', alg: 'RS384' };
  t.match(assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [priv] } })), 400), /private/);
  const ecPriv = { ...(await exportJWK((await generateKeyPair('ES384', { extractable: true })).privateKey)), kid: 'ec-private' };
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [ecPriv] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] } })), 400);
  // jose will not make a 1024-bit key; node:crypto still does
  const weak = { ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), kid: 'weak' };
  t.match(assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [weak] } })), 400), /2048/);
  const p256 = { ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid: 'p256' };
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [p256] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [{ ...rsa.jwk, alg: 'RS256' }] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [{ ...rsa.jwk, n: 'not-a-modulus' }] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [{ ...rsa.jwk, kid: undefined }] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [rsa.jwk, { ...ec.jwk, kid: rsa.kid }] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [{ ...rsa.jwk, use: 'enc' }] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: [] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: { keys: ['x'] } })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks: undefined })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ jwks_url: 'https://keys.example.org/jwks.json' })), 400);
});

t.test('a bad kind, a missing name or an unknown field is refused with 400', async (t) => {
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ kind: 'pharmacy' })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ name: undefined })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ name: '' })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ secret: 'x' })), 400);
  assertOutcome(t, await admin('POST', '/admin/clients', newClient({ status: 'revoked' })), 400);
});

t.test('only admins reach /admin/clients: 401 without a token, 403 for a non-admin user', async (t) => {
  const email = `finance-${randomUUID()}@clients.test.example.org`;
  const financeId = await insertUser(db, { email, passwordHash: 'not-a-login-account', name: 'Finance User', role: 'finance' });
  const financeToken = await startSession(db, financeId, { ttlSeconds: 600 });
  const existing = (await admin('POST', '/admin/clients', newClient())).json().client_id as string;
  const calls: Array<[('GET' | 'POST' | 'PATCH' | 'DELETE'), string, Body?]> = [
    ['POST', '/admin/clients', newClient()], ['GET', '/admin/clients'], ['GET', `/admin/clients/${existing}`],
    ['PATCH', `/admin/clients/${existing}`, { name: 'taken over' }], ['DELETE', `/admin/clients/${existing}`],
  ];
  for (const [method, url, payload] of calls) {
    assertOutcome(t, await admin(method, url, payload, financeToken), 403);
    const res = await app.inject({ method, url, ...(payload ? { payload } : {}) });
    assertOutcome(t, res, 401);
  }
  const after = (await admin('GET', `/admin/clients/${existing}`)).json();
  t.equal(after.status, 'active', 'nothing changed');
  t.not(after.name, 'taken over');
  const ip = freshIp();
  await admin('GET', '/admin/clients', undefined, financeToken, ip);
  const refused = await auditRows(ip, 'refused');
  t.equal(refused.length, 1, 'the refusal is audited');
  t.equal(refused[0]!.user_id, financeId);
});

t.test('unknown ids answer 404', async (t) => {
  const id = uuidv7();
  assertOutcome(t, await admin('GET', `/admin/clients/${id}`), 404);
  assertOutcome(t, await admin('PATCH', `/admin/clients/${id}`, { name: 'x' }), 404);
  assertOutcome(t, await admin('DELETE', `/admin/clients/${id}`), 404);
  assertOutcome(t, await admin('GET', '/admin/clients/not-an-id'), 404);
});

t.test('GET /admin/clients filters by kind and status and pages newest first with a cursor', async (t) => {
  const mine: string[] = [];
  for (let i = 0; i < 5; i++) mine.push((await admin('POST', '/admin/clients', newClient({ kind: 'other' }))).json().client_id);
  const revokedOne = mine[1]!;
  t.equal((await admin('DELETE', `/admin/clients/${revokedOne}`)).statusCode, 200);

  const ip = freshIp();
  const seen: Array<{ client_id: string; kind: string; status: string }> = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 100; pages++) {
    const res = await admin('GET', `/admin/clients?kind=other&status=active&limit=2${cursor ? `&cursor=${cursor}` : ''}`, undefined, h.token, ip);
    t.equal(res.statusCode, 200);
    const body = res.json() as { clients: typeof seen; next_cursor: string | null };
    t.ok(body.clients.length <= 2, 'at most limit per page');
    seen.push(...body.clients);
    cursor = body.next_cursor;
    if (!cursor || mine.filter((id) => id !== revokedOne).every((id) => seen.some((c) => c.client_id === id))) break;
  }
  t.ok(seen.every((c) => c.kind === 'other' && c.status === 'active'), 'every client matches the filters');
  t.equal(new Set(seen.map((c) => c.client_id)).size, seen.length, 'no client twice across pages');
  const ids = seen.map((c) => c.client_id);
  t.strictSame([...ids].sort().reverse(), ids, 'newest first');
  const found = ids.filter((id) => mine.includes(id));
  t.strictSame(found, mine.filter((id) => id !== revokedOne).reverse(), 'my active clients, newest first; the revoked one is not among them');
  t.ok((await auditRows(ip, 'client-list')).length >= 1, 'client-list audited');

  const revoked = (await admin('GET', '/admin/clients?status=revoked&limit=200')).json().clients as Array<{ client_id: string; status: string }>;
  t.ok(revoked.some((c) => c.client_id === revokedOne), 'status=revoked lists the revoked one');
  t.ok(revoked.every((c) => c.status === 'revoked'));
  assertOutcome(t, await admin('GET', '/admin/clients?kind=pharmacy'), 400);
  assertOutcome(t, await admin('GET', '/admin/clients?limit=0'), 400);
  assertOutcome(t, await admin('GET', '/admin/clients?limit=1000'), 400);
  assertOutcome(t, await admin('GET', '/admin/clients?cursor=bogus'), 400);
});

t.test('PATCH changes name, scope and keys; a change of scope or keys ends live tokens', async (t) => {
  const clientId = await registerClient(h, newClient());
  const aud = await tokenEndpoint(app);
  const tokenOf = async (key = rsa): Promise<string> => {
    const res = await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud)));
    if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`);
    return res.json().access_token;
  };
  const live = async (token: string): Promise<boolean> => (await app.inject({ method: 'GET', url: '/fhir/Patient?_count=1', headers: { authorization: `Bearer ${token}` } })).statusCode !== 401;

  const ip = freshIp();
  const renamedToken = await tokenOf();
  const renamed = await admin('PATCH', `/admin/clients/${clientId}`, { name: 'Renamed lab' }, h.token, ip);
  t.equal(renamed.statusCode, 200, renamed.body);
  t.equal(renamed.json().name, 'Renamed lab');
  t.match(renamed.json().updated_at, /Z$/);
  t.ok(await live(renamedToken), 'a new name leaves tokens alone');
  t.equal((await auditRows(ip, 'client-update')).length, 1, 'client-update audited');

  const narrowed = await admin('PATCH', `/admin/clients/${clientId}`, { scope: 'system/Patient.r' });
  t.equal(narrowed.json().scope, 'system/Patient.r');
  t.notOk(await live(renamedToken), 'narrower scopes end the live token');
  const after = await tokenRequest(app, tokenForm(await signAssertion(rsa, clientId, aud), 'system/Observation.c'));
  t.equal(after.statusCode, 400, 'the removed scope is no longer granted');
  assertOutcome(t, await admin('PATCH', `/admin/clients/${clientId}`, { scope: 'system/Patient.rs?x=1' }), 400);

  const beforeKeys = await tokenOf();
  const rotated = await admin('PATCH', `/admin/clients/${clientId}`, { jwks: { keys: [ec.jwk] } });
  t.equal(rotated.statusCode, 200);
  t.strictSame(rotated.json().jwks, { keys: [ec.jwk] });
  t.notOk(await live(beforeKeys), 'new keys end the live token');
  t.equal((await tokenRequest(app, tokenForm(await signAssertion(rsa, clientId, aud)))).statusCode, 401, 'the old key no longer authenticates');
  t.ok(await live(await tokenOf(ec)), 'the new one does');

  assertOutcome(t, await admin('PATCH', `/admin/clients/${clientId}`, {}), 400);
  assertOutcome(t, await admin('PATCH', `/admin/clients/${clientId}`, { jwks: { keys: [ec.jwk] }, jwks_url: 'https://x.example/jwks' }), 400);
  assertOutcome(t, await admin('PATCH', `/admin/clients/${clientId}`, { kind: 'ehr' }), 400);
  assertOutcome(t, await admin('PATCH', `/admin/clients/${clientId}`, { status: 'paused' }), 400);
});

t.test('DELETE revokes: status revoked, every token revoked in the database, audited; PATCH status active starts afresh', async (t) => {
  const clientId = await registerClient(h, newClient());
  const aud = await tokenEndpoint(app);
  const tokens: string[] = [];
  for (let i = 0; i < 2; i++) tokens.push((await tokenRequest(app, tokenForm(await signAssertion(rsa, clientId, aud)))).json().access_token);
  const ip = freshIp();
  const res = await admin('DELETE', `/admin/clients/${clientId}`, undefined, h.token, ip);
  t.equal(res.statusCode, 200);
  t.equal(res.json().status, 'revoked');
  const rows = await db('client_tokens').where({ client_id: clientId }).select('revoked');
  t.equal(rows.length, 2);
  t.ok(rows.every((r) => Number(r.revoked) === 1), 'every token row revoked');
  const audit = await auditRows(ip, 'client-revoke');
  t.equal(audit.length, 1, 'client-revoke audited');
  t.equal(audit[0]!.resource_id, clientId);
  for (const tok of tokens) t.equal((await app.inject({ method: 'GET', url: '/fhir/Patient', headers: { authorization: `Bearer ${tok}` } })).statusCode, 401);
  t.equal((await admin('DELETE', `/admin/clients/${clientId}`)).statusCode, 200, 'revoking again is harmless');

  const back = await admin('PATCH', `/admin/clients/${clientId}`, { status: 'active' });
  t.equal(back.json().status, 'active');
  for (const tok of tokens) t.equal((await app.inject({ method: 'GET', url: '/fhir/Patient', headers: { authorization: `Bearer ${tok}` } })).statusCode, 401, 'old tokens stay dead after reactivation');
  t.equal((await tokenRequest(app, tokenForm(await signAssertion(rsa, clientId, aud)))).statusCode, 200, 'a reactivated client gets new tokens');
  const viaPatch = await admin('PATCH', `/admin/clients/${clientId}`, { status: 'revoked' }, h.token, ip);
  t.equal(viaPatch.json().status, 'revoked');
  t.equal((await auditRows(ip, 'client-revoke')).length, 2, 'PATCH status revoked is a client-revoke too');
});

t.test('the admin client routes are in the OpenAPI document under the admin tag', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(res.statusCode, 200);
  const paths = res.json().paths as Record<string, Record<string, { tags?: string[]; requestBody?: unknown; responses?: Record<string, unknown> }>>;
  t.ok(paths['/admin/clients']?.post?.tags?.includes('admin'));
  t.ok(paths['/admin/clients']?.post?.requestBody, 'with its body schema');
  t.ok(paths['/admin/clients']?.post?.responses?.['201'], 'and its 201 response');
  t.ok(paths['/admin/clients']?.get?.tags?.includes('admin'));
  for (const m of ['get', 'patch', 'delete']) t.ok(paths['/admin/clients/{id}']?.[m]?.tags?.includes('admin'), `${m} /admin/clients/{id}`);
  t.ok(paths['/auth/token']?.post, 'the token endpoint');
  t.ok(paths['/fhir/.well-known/smart-configuration']?.get, 'and smart-configuration');
});
