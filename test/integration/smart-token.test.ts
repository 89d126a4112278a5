/**
 * SMART Backend Services over HTTP on the real database: .well-known/smart-configuration, the
 * CapabilityStatement's security extension, and POST /auth/token with every way an assertion is
 * refused, the accepted ones (RS384, ES384, JWKS by URL), the token then opening /fhir, revocation
 * on two app instances, expiry and the audit rows.
 */
import t, { type Test } from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { exportSPKI, importJWK, SignJWT, UnsecuredJWT } from 'jose';
import { v7 as uuidv7 } from 'uuid';
import { buildApp } from '../../src/api/app.js';
import { dialectOf } from '../../src/db/dialect.js';
import { testApp } from '../helpers/app.js';
import { clientKey, freshIp, registerClient, signAssertion, tokenEndpoint, tokenForm, tokenRequest, type ClientKey } from '../helpers/smart.js';

// a JWKS served over loopback HTTP, allow-listed for this file's app
const served = { jwks: { keys: [] as unknown[] } };
const jwksServer = createServer((req, res) => {
  if (req.url !== '/keys/jwks.json') { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served.jwks));
});
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
const jwksBase = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/keys/`;
t.teardown(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

const h = await testApp(t, { HMS_JWKS_URL_ALLOWLIST: jwksBase });
const { app, db, config } = h;
const aud = await tokenEndpoint(app);

// a second API process on the same database (with REDIS_URL they hear each other's revocations)
const app2 = await buildApp({ config, db, logger: false });
t.teardown(() => app2.close());

// keys are shared by the clients of this file (each client is registered afresh): RSA generation is slow
const [rsa, rsaOther, ec, ecOther] = await Promise.all([clientKey('RS384'), clientKey('RS384'), clientKey('ES384'), clientKey('ES384')]);

const LAB_SCOPE = 'system/Patient.rs system/ServiceRequest.rs system/Observation.cru system/DiagnosticReport.cru';

async function labClient(key: ClientKey, scope = LAB_SCOPE): Promise<string> {
  return registerClient(h, { kind: 'lab', scope, jwks: { keys: [key.jwk] } });
}

interface OAuthError { error: string; error_description: string }

function assertOAuthError(tt: Test, res: LightMyRequestResponse, status: number, error: string): OAuthError {
  tt.equal(res.statusCode, status, `status ${status}`);
  tt.match(String(res.headers['content-type']), /^application\/json/, 'JSON, not an OperationOutcome');
  const body = res.json() as OAuthError;
  tt.equal(body.error, error, `error ${error}`);
  tt.type(body.error_description, 'string', 'with a description');
  tt.strictSame(Object.keys(body).sort(), ['error', 'error_description'], 'an RFC 6749 error and nothing else');
  tt.notOk('access_token' in body);
  return body;
}

async function auditRows(ip: string, action: string): Promise<Array<Record<string, unknown>>> {
  await app.auditLog.settle();
  await app2.auditLog.settle();
  return db('security_logs').where({ ip_address: ip, action }).select();
}

const get = (a: FastifyInstance, url: string, token: string) => a.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

async function grant(key: ClientKey, clientId: string, scope?: string, a: FastifyInstance = app): Promise<{ access_token: string; scope: string; expires_in: number; token_type: string }> {
  const res = await tokenRequest(a, tokenForm(await signAssertion(key, clientId, aud), scope));
  if (res.statusCode !== 200) throw new Error(`token request failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

t.test('GET /fhir/.well-known/smart-configuration is public JSON naming the token endpoint, grant, algorithms, scopes and capabilities', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/fhir/.well-known/smart-configuration' });
  t.equal(res.statusCode, 200, 'served without a token (the not-found handler does not shadow it)');
  t.match(String(res.headers['content-type']), /^application\/json/);
  const c = res.json();
  t.equal(c.token_endpoint, aud);
  t.match(c.token_endpoint, /\/auth\/token$/);
  t.strictSame(c.grant_types_supported, ['client_credentials']);
  t.strictSame(c.token_endpoint_auth_methods_supported, ['private_key_jwt']);
  t.strictSame(c.token_endpoint_auth_signing_alg_values_supported, ['RS384', 'ES384']);
  t.strictSame(c.capabilities, ['client-confidential-asymmetric', 'permission-v2', 'permission-v1']);
  t.ok(c.scopes_supported.includes('system/*.cruds') && c.scopes_supported.includes('system/*.rs'));
  t.ok(c.scopes_supported.includes('system/Patient.cruds'), 'per type of the registry');
  t.ok(c.scopes_supported.includes('system/Observation.rs'));
  t.ok(c.scopes_supported.includes('system/AuditEvent.rs') && !c.scopes_supported.includes('system/AuditEvent.cruds'), 'a read-only type offers only what its interactions allow');
  const withToken = await app.inject({ method: 'GET', url: '/fhir/.well-known/smart-configuration', headers: { authorization: 'Bearer not-a-token' } });
  t.equal(withToken.statusCode, 200, 'a stray bad token does not matter on a public route');
});

t.test('the CapabilityStatement carries the SMART security extension and service', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/fhir/metadata' });
  t.equal(res.statusCode, 200);
  const security = res.json().rest[0].security;
  const oauth = security.extension.find((e: { url: string }) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
  t.ok(oauth, 'oauth-uris extension');
  t.strictSame(oauth.extension, [{ url: 'token', valueUri: aud }], 'token endpoint, the same as smart-configuration');
  t.ok(security.service.some((s: { coding?: Array<{ system: string; code: string }> }) => s.coding?.some((c) => c.system === 'http://terminology.hl7.org/CodeSystem/restful-security-service' && c.code === 'SMART-on-FHIR')), 'SMART-on-FHIR service');
  t.ok(security.service.some((s: { text?: string }) => /session tokens/.test(s.text ?? '')), 'session tokens still described');
});

t.test('an RS384 assertion is accepted: a bearer token of at most 300 s with the requested scopes the client is allowed, not cacheable, audited', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const ip = freshIp();
  const res = await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud), 'system/Observation.crud system/Patient.rs system/Coverage.rs'), ip);
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  t.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json();
  t.strictSame(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type'], 'no refresh token');
  t.equal(body.token_type, 'bearer');
  t.ok(body.expires_in > 0 && body.expires_in <= 300, `expires_in ${body.expires_in}`);
  t.match(body.access_token, /^hmsc\.[A-Za-z0-9_-]{43}$/);
  t.equal(body.scope, 'system/Observation.cru system/Patient.rs', 'requested ∩ allowed: d and Coverage dropped');

  const rows = await db('client_tokens').where({ client_id: clientId }).select();
  t.equal(rows.length, 1, 'one token row');
  t.notOk(JSON.stringify(rows).includes(body.access_token), 'the token itself is not stored');
  t.equal(rows[0]!.scope, body.scope);

  const granted = await auditRows(ip, 'token-granted');
  t.equal(granted.length, 1, 'a token-granted row');
  t.equal(Number(granted[0]!.success), 1);
  t.equal(granted[0]!.client_id, clientId, 'recorded against the client');
  t.notOk(JSON.stringify(granted).includes(body.access_token), 'the audit row does not hold the token');
  t.notOk(JSON.stringify(await db('security_logs').where({ ip_address: ip }).select()).includes('eyJ'), 'nor the assertion');
});

t.test('an ES384 assertion is accepted; no scope parameter grants every allowed scope', async (t) => {
  const key = ec;
  const clientId = await registerClient(h, { kind: 'insurer', scope: 'system/Patient.rs system/Coverage.rs system/Invoice.read', jwks: { keys: [key.jwk] } });
  const body = await grant(key, clientId);
  t.equal(body.scope, 'system/Coverage.rs system/Invoice.rs system/Patient.rs', 'the allowed scopes, v2 spelling');
  const wildcard = await grant(key, clientId, 'system/*.rs');
  t.equal(wildcard.scope, 'system/Coverage.rs system/Invoice.rs system/Patient.rs', 'system/*.rs narrowed to the allowed types');
});

t.test('the token authenticates FHIR requests as the client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const { access_token } = await grant(key, clientId);
  const res = await get(app, '/fhir/Patient?_count=1', access_token);
  t.not(res.statusCode, 401, `a client token is not refused as unauthenticated (got ${res.statusCode})`);
  const other = await get(app2, '/fhir/Patient?_count=1', access_token);
  t.not(other.statusCode, 401, 'on the other process too');
  const tampered = await get(app, '/fhir/Patient?_count=1', `${access_token.slice(0, -2)}AA`);
  t.equal(tampered.statusCode, 401, 'a token that was not issued is refused');
});

t.test('an assertion with a bad signature is refused with invalid_client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const impostor = rsaOther;
  const ip = freshIp();
  const res = await tokenRequest(app, tokenForm(await signAssertion({ ...impostor, kid: key.kid }, clientId, aud)), ip);
  assertOAuthError(t, res, 401, 'invalid_client');
  const rows = await auditRows(ip, 'token-refused');
  t.equal(rows.length, 1, 'a token-refused row');
  t.equal(Number(rows[0]!.success), 0);
  t.equal(rows[0]!.failure_reason, 'bad signature', 'the reason is in the log');
  t.equal(rows[0]!.client_id, clientId, 'a registered client is named in the row');
  t.equal(await db('client_tokens').where({ client_id: clientId }).count({ n: '*' }).first().then((r) => Number(r!.n)), 0, 'no token issued');
});

t.test('an unsigned assertion (alg none) is refused with invalid_client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const now = Math.floor(Date.now() / 1000);
  const unsecured = new UnsecuredJWT({ jti: randomUUID() }).setIssuer(clientId).setSubject(clientId).setAudience(aud).setExpirationTime(now + 120).encode();
  const ip = freshIp();
  const body = assertOAuthError(t, await tokenRequest(app, tokenForm(unsecured), ip), 401, 'invalid_client');
  t.match(body.error_description, /RS384 or ES384/);
  t.equal((await auditRows(ip, 'token-refused'))[0]?.failure_reason, 'algorithm not allowed');
});

t.test('an HS256 assertion signed with the public key as a shared secret is refused with invalid_client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  // the classic key-confusion attack: the registered public key (PEM and JWK forms) used as an HMAC secret
  const pem = await exportSPKI((await importJWK(key.jwk, 'RS384')) as Parameters<typeof exportSPKI>[0]);
  const now = Math.floor(Date.now() / 1000);
  for (const secret of [new TextEncoder().encode(pem), new TextEncoder().encode(JSON.stringify(key.jwk))]) {
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: key.kid }).setIssuer(clientId).setSubject(clientId)
      .setAudience(aud).setExpirationTime(now + 120).setJti(randomUUID()).sign(secret);
    const body = assertOAuthError(t, await tokenRequest(app, tokenForm(forged)), 401, 'invalid_client');
    t.match(body.error_description, /RS384 or ES384/);
  }
});

t.test('an expired assertion is refused with invalid_client; one within the clock tolerance is accepted', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const ip = freshIp();
  const body = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { expIn: -120 })), ip), 401, 'invalid_client');
  t.match(body.error_description, /expired/);
  t.equal((await auditRows(ip, 'token-refused'))[0]?.failure_reason, 'assertion expired');
  const skewed = await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { expIn: -20 })));
  t.equal(skewed.statusCode, 200, 'exp 20 s in the past is within the 60 s tolerance');
});

t.test('an assertion whose exp is more than 5 minutes ahead is refused with invalid_client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const body = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { expIn: 400 }))), 401, 'invalid_client');
  t.match(body.error_description, /300 seconds/);
  const ok = await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { expIn: 290 })));
  t.equal(ok.statusCode, 200, 'exp 290 s ahead is accepted');
});

t.test('a replayed jti is refused with invalid_client, on this process and on another one', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const assertion = await signAssertion(key, clientId, aud);
  t.equal((await tokenRequest(app, tokenForm(assertion))).statusCode, 200, 'first use');
  const ip = freshIp();
  const again = assertOAuthError(t, await tokenRequest(app, tokenForm(assertion), ip), 401, 'invalid_client');
  t.match(again.error_description, /jti/);
  t.equal((await auditRows(ip, 'token-refused'))[0]?.failure_reason, 'replayed jti');

  const second = await signAssertion(key, clientId, aud);
  t.equal((await tokenRequest(app, tokenForm(second))).statusCode, 200, 'a new assertion on process 1');
  assertOAuthError(t, await tokenRequest(app2, tokenForm(second)), 401, 'invalid_client');

  const jti = randomUUID();
  const raced = await Promise.all([app, app2].map(async (a) => tokenRequest(a, tokenForm(await signAssertion(key, clientId, aud, { jti })))));
  t.strictSame(raced.map((r) => r.statusCode).sort(), [200, 401], 'two processes racing with one jti: exactly one token');
  t.equal(await db('client_tokens').where({ client_id: clientId }).count({ n: '*' }).first().then((r) => Number(r!.n)), 3, 'three tokens in all');
});

t.test('a jti differing only in case is a different jti', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  t.equal((await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { jti: 'abc-jti' })))).statusCode, 200);
  t.equal((await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { jti: 'ABC-JTI' })))).statusCode, 200);
});

t.test('an assertion with the wrong aud is refused with invalid_client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const ip = freshIp();
  const body = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { aud: 'https://elsewhere.example.org/auth/token' })), ip), 401, 'invalid_client');
  t.match(body.error_description, /aud/);
  t.equal((await auditRows(ip, 'token-refused'))[0]?.failure_reason, 'wrong aud');
  const fhirBase = aud.replace(/\/auth\/token$/, '/fhir');
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { aud: fhirBase }))), 401, 'invalid_client');
});

t.test('an assertion whose iss differs from sub is refused with invalid_client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const body = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { sub: uuidv7() }))), 401, 'invalid_client');
  t.match(body.error_description, /sub/);
  const other = await tokenRequest(app, { ...tokenForm(await signAssertion(key, clientId, aud)), client_id: uuidv7() });
  assertOAuthError(t, other, 401, 'invalid_client');
});

t.test('an assertion naming an unknown kid is refused with invalid_client', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const ip = freshIp();
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud, { kid: 'no-such-kid' })), ip), 401, 'invalid_client');
  t.equal((await auditRows(ip, 'token-refused'))[0]?.failure_reason, 'no key with that kid');
});

t.test('an unknown client is refused with invalid_client, with the same answer as a bad signature', async (t) => {
  const key = rsa;
  const known = await labClient(key);
  const stranger = uuidv7();
  const ip = freshIp();
  const unknown = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, stranger, aud)), ip), 401, 'invalid_client');
  const impostor = rsaOther;
  const badSig = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion({ ...impostor, kid: key.kid }, known, aud))), 401, 'invalid_client');
  const badKid = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, known, aud, { kid: 'no-such-kid' }))), 401, 'invalid_client');
  t.strictSame(unknown, badSig, 'identical to a known client with a bad signature: client ids cannot be enumerated');
  t.strictSame(unknown, badKid, 'and to an unknown kid');
  const rows = await auditRows(ip, 'token-refused');
  t.equal(rows[0]?.failure_reason, 'unknown client');
  t.equal(rows[0]?.user_id, null);
  t.equal(rows[0]?.client_id, null, 'an id no client has is not recorded as a client');
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, 'x'.repeat(300), aud))), 401, 'invalid_client');
  const upper = known.toUpperCase();
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, upper, aud))), 401, 'invalid_client');
  t.pass('a client_id is matched exactly (MySQL collations compare case-insensitively)');
});

t.test('a revoked client is refused with invalid_client, and its live token answers 401 at once on every process', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const { access_token } = await grant(key, clientId);
  const { access_token: second } = await grant(key, clientId, undefined, app2);
  t.not((await get(app, '/fhir/Patient?_count=1', access_token)).statusCode, 401, 'live before');
  // with Redis, wait until process 2 hears revocations, then let it cache the token
  const deadline = Date.now() + 3000;
  while (config.REDIS_URL && !app2.revocations.live && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (config.REDIS_URL) t.ok(app2.revocations.live, 'process 2 hears revocations over Redis (so it caches tokens)');
  t.not((await get(app2, '/fhir/Patient?_count=1', access_token)).statusCode, 401, 'live before on process 2 (now in its cache)');

  const del = await app.inject({ method: 'DELETE', url: `/admin/clients/${clientId}`, headers: { authorization: `Bearer ${h.token}` } });
  t.equal(del.statusCode, 200);
  t.equal((await get(app, '/fhir/Patient?_count=1', access_token)).statusCode, 401, 'the token dies at once on the process that revoked');
  t.equal((await get(app, '/fhir/Patient?_count=1', second)).statusCode, 401, 'so does every other token of the client');
  // SQLite is one process by design (its in-process bus does not reach a second app); MySQL
  // processes hear it over Redis, or do not cache at all without Redis
  if (dialectOf(db) === 'mysql') {
    t.equal((await get(app2, '/fhir/Patient?_count=1', access_token)).statusCode, 401, 'and on the other process');
  }
  const ip = freshIp();
  const body = assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud)), ip), 401, 'invalid_client');
  t.match(body.error_description, /Client authentication failed/);
  const rows = await auditRows(ip, 'token-refused');
  t.equal(rows[0]?.failure_reason, 'revoked client');
  t.equal(rows[0]?.client_id, clientId);
});

t.test('a scope the client was never allowed is refused with invalid_scope', async (t) => {
  const key = rsa;
  const clientId = await registerClient(h, { kind: 'insurer', scope: 'system/Patient.rs system/Coverage.rs', jwks: { keys: [key.jwk] } });
  const ip = freshIp();
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud), 'system/Observation.c'), ip), 400, 'invalid_scope');
  const rows = await auditRows(ip, 'token-refused');
  t.equal(rows[0]?.failure_reason, 'no allowed scope requested');
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud), 'system/Patient.cud')), 400, 'invalid_scope');
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud), 'launch/patient openid')), 400, 'invalid_scope');
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud), 'system/Patient.constructor')), 400, 'invalid_scope');
  const partial = await tokenRequest(app, tokenForm(await signAssertion(key, clientId, aud), 'openid system/Patient.r system/Observation.rs'));
  t.equal(partial.statusCode, 200, 'scopes partly allowed: the allowed part is granted');
  t.equal(partial.json().scope, 'system/Patient.r');
});

t.test('malformed token requests answer RFC 6749 errors, audited', async (t) => {
  const key = rsa;
  const clientId = await labClient(key);
  const assertion = await signAssertion(key, clientId, aud);
  const ip = freshIp();
  assertOAuthError(t, await tokenRequest(app, { ...tokenForm(assertion), grant_type: 'password' }, ip), 400, 'unsupported_grant_type');
  assertOAuthError(t, await tokenRequest(app, { ...tokenForm(assertion), grant_type: undefined }), 400, 'invalid_request');
  assertOAuthError(t, await tokenRequest(app, { ...tokenForm(assertion), client_assertion_type: 'urn:other' }), 400, 'invalid_request');
  assertOAuthError(t, await tokenRequest(app, { ...tokenForm(assertion), client_assertion: undefined }), 400, 'invalid_request');
  assertOAuthError(t, await tokenRequest(app, tokenForm('not.a.jwt')), 401, 'invalid_client');
  assertOAuthError(t, await tokenRequest(app, tokenForm('garbage')), 401, 'invalid_client');
  const repeated = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials&grant_type=client_credentials' });
  assertOAuthError(t, repeated, 400, 'invalid_request');
  const json = await app.inject({ method: 'POST', url: '/auth/token', payload: tokenForm(assertion) });
  assertOAuthError(t, json, 400, 'invalid_request');
  const text = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'text/xml' }, payload: '<x/>' });
  assertOAuthError(t, text, 400, 'invalid_request');
  const empty = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assertOAuthError(t, empty, 400, 'invalid_request');
  const huge = await tokenRequest(app, { ...tokenForm(assertion), padding: 'x'.repeat(70 * 1024) });
  assertOAuthError(t, huge, 413, 'invalid_request');
  t.equal((await auditRows(ip, 'token-refused'))[0]?.failure_reason, 'unsupported grant_type');
  t.equal((await tokenRequest(app, tokenForm(assertion))).statusCode, 200, 'the assertion was not used up by requests refused before it was checked');
});

t.test('an expired client token answers 401', async (t) => {
  const shortLived = await buildApp({ config: { ...config, HMS_CLIENT_TOKEN_TTL: 1 }, db, logger: false });
  t.teardown(() => shortLived.close());
  const key = rsa;
  const clientId = await labClient(key);
  const body = await grant(key, clientId, undefined, shortLived);
  t.equal(body.expires_in, 1);
  const row = await db('client_tokens').where({ client_id: clientId }).first();
  const expiresAt = Date.parse(String(row.expires_at).replace(' ', 'T') + 'Z');
  t.ok(expiresAt - Date.now() <= 1000, 'expires_at at most 1 s ahead');
  await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 50));
  t.equal((await get(shortLived, '/fhir/Patient?_count=1', body.access_token)).statusCode, 401, 'expired on the issuing process');
  t.equal((await get(app, '/fhir/Patient?_count=1', body.access_token)).statusCode, 401, 'and elsewhere');
});

t.test('a client whose keys are at an allow-listed JWKS URL gets a token; a URL off the list is refused at registration', async (t) => {
  const key = ec;
  served.jwks = { keys: [key.jwk] };
  const clientId = await registerClient(h, { kind: 'ehr', scope: 'system/*.rs', jwks_url: `${jwksBase}jwks.json` });
  const body = await grant(key, clientId);
  t.equal(body.scope, 'system/*.rs');
  const impostor = ecOther;
  assertOAuthError(t, await tokenRequest(app, tokenForm(await signAssertion({ ...impostor, kid: key.kid }, clientId, aud))), 401, 'invalid_client');

  // a rotated key: the JWKS at the URL gains a new kid, which jose fetches on first sight
  const rotated = await clientKey('ES384');
  served.jwks = { keys: [key.jwk, rotated.jwk] };
  // jose refetches an unknown kid at most every 30 s; a fresh app has no cached set yet
  const fresh = await buildApp({ config, db, logger: false });
  t.teardown(() => fresh.close());
  t.equal((await tokenRequest(fresh, tokenForm(await signAssertion(rotated, clientId, aud)))).statusCode, 200, 'the new key works');

  for (const url of ['https://keys.elsewhere.example/jwks.json', `${jwksBase.replace('/keys/', '/other/')}jwks.json`, `${jwksBase.replace('http://', 'http://user:pw@')}jwks.json`, 'file:///etc/passwd']) {
    const res = await app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${h.token}` }, payload: { name: 'off list', kind: 'ehr', scope: 'system/*.rs', jwks_url: url } });
    t.equal(res.statusCode, 400, `${url} refused`);
    t.equal(res.json().resourceType, 'OperationOutcome');
  }
});

t.test('a server without an allow-list accepts no JWKS URL', async (t) => {
  const bare = await buildApp({ config: { ...config, HMS_JWKS_URL_ALLOWLIST: undefined }, db, logger: false });
  t.teardown(() => bare.close());
  const res = await bare.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${h.token}` }, payload: { name: 'url', kind: 'ehr', scope: 'system/*.rs', jwks_url: `${jwksBase}jwks.json` } });
  t.equal(res.statusCode, 400);
  t.match(res.json().issue[0].diagnostics, /HMS_JWKS_URL_ALLOWLIST/);
});

t.test('with HMS_BASE_URL the token endpoint and the aud it requires come from it, not from the Host header', async (t) => {
  const behindProxy = await buildApp({ config: { ...config, HMS_BASE_URL: 'https://hms.example.org/fhir' }, db, logger: false });
  t.teardown(() => behindProxy.close());
  const published = await tokenEndpoint(behindProxy);
  t.equal(published, 'https://hms.example.org/auth/token');
  const metadata = (await behindProxy.inject({ method: 'GET', url: '/fhir/metadata' })).json();
  t.equal(metadata.rest[0].security.extension[0].extension[0].valueUri, published, 'the CapabilityStatement agrees');
  const key = rsa;
  const clientId = await labClient(key);
  t.equal((await tokenRequest(behindProxy, tokenForm(await signAssertion(key, clientId, published)))).statusCode, 200, 'aud = the published endpoint');
  assertOAuthError(t, await tokenRequest(behindProxy, tokenForm(await signAssertion(key, clientId, aud))), 401, 'invalid_client');
});
