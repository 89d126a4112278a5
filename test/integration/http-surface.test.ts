/**
 * The HTTP surface: security headers on FHIR answers and on Swagger UI, CORS only for listed
 * origins, and per-client rate limits answering 429 OperationOutcomes. Real app, real database.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { createAdmin } from '../../src/auth/admin.js';
import { startSession } from '../../src/auth/sessions.js';

const h = await testApp(t);

/** A second logged-in admin of an app's database. */
async function anotherUser(db: typeof h.db): Promise<{ userId: string; token: string }> {
  const userId = await createAdmin(db, { email: `limit-${randomUUID()}@test.example.org`, password: 'correct horse battery', name: 'Other Admin', cost: 12 });
  return { userId, token: await startSession(db, userId, { ttlSeconds: 3600 }) };
}

t.test('a FHIR answer carries the security headers of a JSON API and is not to be stored', async (t) => {
  const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?family=Headers-${randomUUID()}` });
  t.equal(res.statusCode, 200);
  const csp = String(res.headers['content-security-policy']);
  t.match(csp, /default-src 'none'/, 'CSP loads nothing');
  t.match(csp, /frame-ancestors 'none'/, 'CSP: framed by no one');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
  t.equal(res.headers['x-frame-options'], 'DENY');
  t.equal(res.headers['referrer-policy'], 'no-referrer');
  t.match(String(res.headers['strict-transport-security']), /^max-age=31536000; includeSubDomains$/);
  t.equal(res.headers['cross-origin-resource-policy'], 'same-origin');
  t.equal(res.headers['cache-control'], 'no-store', 'patient data is not cached');
  t.notOk(res.headers['x-powered-by']);
});

t.test('refusals carry the headers too, and public metadata may be cached', async (t) => {
  const denied = await h.fhir({ method: 'GET', url: '/fhir/Patient', token: null });
  t.equal(denied.statusCode, 401);
  t.equal(denied.headers['x-content-type-options'], 'nosniff');
  t.equal(denied.headers['cache-control'], 'no-store');
  const meta = await h.app.inject({ method: 'GET', url: '/fhir/metadata' });
  t.equal(meta.statusCode, 200);
  t.match(String(meta.headers['content-security-policy']), /default-src 'none'/);
  t.notOk(meta.headers['cache-control'], 'no no-store on the CapabilityStatement');
});

t.test('Swagger UI at /docs loads under its own CSP: every script and stylesheet is a same-origin file', async (t) => {
  const page = await h.app.inject({ method: 'GET', url: '/docs' });
  t.equal(page.statusCode, 200);
  t.match(String(page.headers['content-type']), /^text\/html/);
  const csp = String(page.headers['content-security-policy']);
  t.match(csp, /script-src 'self'/);
  t.match(csp, /style-src 'self'/);
  t.match(csp, /connect-src 'self'/, 'may fetch /docs/json');
  t.notMatch(csp, /default-src 'none'/, 'not the API policy, which would block the UI');
  t.notMatch(csp, /unsafe-inline|unsafe-eval|upgrade-insecure-requests/);
  t.equal(page.headers['x-frame-options'], 'DENY');
  const scripts = [...page.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
  t.ok(scripts.length >= 3, 'the page has its scripts');
  for (const [, attrs, inline] of scripts) {
    t.match(attrs, /src="/, 'no inline script (script-src has no unsafe-inline)');
    t.equal(inline!.trim(), '');
  }
  t.notMatch(page.body, /<style[\s>]/, 'no inline stylesheet');
  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  t.ok(assets.some((a) => a.endsWith('swagger-ui-bundle.js')) && assets.some((a) => a.endsWith('swagger-initializer.js')));
  for (const asset of assets) {
    t.match(asset, /^\/docs\//, `${asset} is same-origin`);
    const res = await h.app.inject({ method: 'GET', url: asset });
    t.equal(res.statusCode, 200, `${asset} loads`);
  }
  const init = await h.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
  t.match(init.body, /validatorUrl["']?\s*:\s*null/, 'no outside validator is asked');
  const spec = await h.app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(spec.statusCode, 200);
  t.equal(spec.json().openapi?.slice(0, 2), '3.');
});

t.test('CORS is off unless HMS_CORS_ORIGINS lists origins', async (t) => {
  const simple = await h.fhir({ method: 'GET', url: '/fhir/Patient?_count=1', headers: { origin: 'https://ehr.example.org' } });
  t.equal(simple.statusCode, 200);
  t.notOk(simple.headers['access-control-allow-origin']);
  const preflight = await h.app.inject({ method: 'OPTIONS', url: '/fhir/Patient', headers: { origin: 'https://ehr.example.org', 'access-control-request-method': 'POST' } });
  t.notOk(preflight.headers['access-control-allow-origin']);
  t.notOk(preflight.headers['access-control-allow-methods']);
  const meta = (await h.app.inject({ method: 'GET', url: '/fhir/metadata' })).json();
  t.equal(meta.rest[0].security.cors, false, 'the CapabilityStatement says so');
});

t.test('with HMS_CORS_ORIGINS a listed origin may call (simple and preflight), another may not', async (t) => {
  const c = await testApp(t, { HMS_CORS_ORIGINS: 'https://EHR.example.org:443, http://portal.example.org:8081' });
  const allowed = 'https://ehr.example.org';
  const simple = await c.fhir({ method: 'GET', url: '/fhir/Patient?_count=1', headers: { origin: allowed } });
  t.equal(simple.statusCode, 200);
  t.equal(simple.headers['access-control-allow-origin'], allowed, 'the configured origin, as browsers serialise it');
  t.notOk(simple.headers['access-control-allow-credentials'], 'bearer tokens, no cookies');
  const exposed = String(simple.headers['access-control-expose-headers']);
  for (const name of ['ETag', 'Location', 'Last-Modified', 'Content-Location', 'Retry-After']) t.match(exposed, name, `exposes ${name}`);
  t.match(String(simple.headers.vary), /origin/i);

  const preflight = await c.app.inject({
    method: 'OPTIONS', url: '/fhir/Patient',
    headers: { origin: 'http://portal.example.org:8081', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, if-none-exist' },
  });
  t.equal(preflight.statusCode, 204, 'preflight answered before authentication');
  t.equal(preflight.headers['access-control-allow-origin'], 'http://portal.example.org:8081');
  t.match(String(preflight.headers['access-control-allow-methods']), /POST/);
  t.match(String(preflight.headers['access-control-allow-methods']), /PUT/);
  const allowedHeaders = String(preflight.headers['access-control-allow-headers']);
  for (const name of ['Authorization', 'Content-Type', 'If-None-Exist', 'If-Match', 'Prefer']) t.match(allowedHeaders, name);
  t.equal(preflight.headers['access-control-max-age'], '600');
  const instance = await c.app.inject({ method: 'OPTIONS', url: `/fhir/Patient/${randomUUID()}`, headers: { origin: allowed, 'access-control-request-method': 'PUT' } });
  t.equal(instance.statusCode, 204, 'preflight of an instance URL');

  for (const origin of ['https://evil.example.org', 'https://ehr.example.org.evil.example', 'http://ehr.example.org']) {
    const other = await c.fhir({ method: 'GET', url: '/fhir/Patient?_count=1', headers: { origin } });
    t.notOk(other.headers['access-control-allow-origin'], `no CORS for ${origin}`);
    const otherPreflight = await c.app.inject({ method: 'OPTIONS', url: '/fhir/Patient', headers: { origin, 'access-control-request-method': 'POST' } });
    t.notOk(otherPreflight.headers['access-control-allow-origin'], `no preflight for ${origin}`);
  }
  t.equal((await c.app.inject({ method: 'GET', url: '/fhir/metadata' })).json().rest[0].security.cors, true);
});

t.test('a wildcard or a path in HMS_CORS_ORIGINS is refused at start-up', async (t) => {
  await t.rejects(testApp(t, { HMS_CORS_ORIGINS: '*' }), /HMS_CORS_ORIGINS/);
  await t.rejects(testApp(t, { HMS_CORS_ORIGINS: 'https://ehr.example.org/app' }), /HMS_CORS_ORIGINS/);
});

t.test('rate limit: the (n+1)th request of a user in the window is a 429 OperationOutcome with Retry-After; others are counted apart', async (t) => {
  const limit = 3;
  const r = await testApp(t, { HMS_RATE_LIMIT: limit, HMS_RATE_LIMIT_WINDOW: 60 });
  const other = await anotherUser(r.db);
  const url = `/fhir/Patient?family=Limit-${randomUUID()}`;
  for (let i = 1; i <= limit; i++) {
    const ok = await r.fhir({ method: 'GET', url });
    t.equal(ok.statusCode, 200, `request ${i} passes`);
    t.equal(ok.headers['x-ratelimit-limit'], String(limit));
    t.equal(ok.headers['x-ratelimit-remaining'], String(limit - i));
  }
  const over = await r.fhir({ method: 'GET', url });
  t.equal(over.statusCode, 429);
  t.match(String(over.headers['content-type']), /^application\/fhir\+json/);
  const retryAfter = Number(over.headers['retry-after']);
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${over.headers['retry-after']} within the window`);
  const body = over.json();
  t.equal(body.resourceType, 'OperationOutcome');
  t.equal(body.issue[0].code, 'throttled');
  t.match(body.issue[0].diagnostics, /3 per 60 s/);
  t.equal(over.headers['x-content-type-options'], 'nosniff', 'security headers on the 429 too');

  // the same inject address, another user: its own counter, so the key is the principal, not the IP
  const second = await r.fhir({ method: 'GET', url, token: other.token });
  t.equal(second.statusCode, 200, 'another user from the same address is not limited');
  const again = await r.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', gender: 'male' } });
  t.equal(again.statusCode, 429, 'every route of the limited user, writes included (body never parsed)');

  // one audit row for the window's first refusal, not one per throttled request
  const refused = await r.db('security_logs').where({ user_id: r.userId, action: 'refused' }).andWhere('failure_reason', 'like', '429%').count({ n: '*' });
  t.equal(Number(refused[0]!.n), 1, 'the first 429 of the window is audited, the repeats are not');
});

t.test('rate limit: without a principal the counter is the IP address; health and login are not limited', async (t) => {
  const r = await testApp(t, { HMS_RATE_LIMIT: 2, HMS_RATE_LIMIT_WINDOW: 60 });
  const from = (remoteAddress: string) => r.app.inject({ method: 'GET', url: '/fhir/metadata', remoteAddress });
  t.equal((await from('10.1.0.1')).statusCode, 200);
  t.equal((await from('10.1.0.1')).statusCode, 200);
  const over = await from('10.1.0.1');
  t.equal(over.statusCode, 429);
  t.equal(over.json().issue[0].code, 'throttled');
  t.ok(over.headers['retry-after']);
  t.equal((await from('10.1.0.2')).statusCode, 200, 'another address has its own counter');
  for (let i = 0; i < 4; i++) t.equal((await r.app.inject({ method: 'GET', url: '/health', remoteAddress: '10.1.0.1' })).statusCode, 200, 'health is never limited');
  const login = await r.app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '10.1.0.1', payload: { email: `nobody-${randomUUID()}@test.example.org`, password: 'wrong password here' } });
  t.equal(login.statusCode, 401, 'login keeps its own throttle');
});

t.test('HMS_RATE_LIMIT=0 turns the limiter off', async (t) => {
  const r = await testApp(t, { HMS_RATE_LIMIT: 0 });
  for (let i = 0; i < 3; i++) {
    const res = await r.app.inject({ method: 'GET', url: '/fhir/metadata' });
    t.equal(res.statusCode, 200);
    t.notOk(res.headers['x-ratelimit-limit']);
  }
});

t.test('the CapabilityStatement documents the bounds and limits', async (t) => {
  const r = await testApp(t, { HMS_SEARCH_MAX_PARAMS: 25, HMS_RATE_LIMIT: 500, HMS_RATE_LIMIT_WINDOW: 30, HMS_STATEMENT_TIMEOUT: 7 });
  const doc = String((await r.app.inject({ method: 'GET', url: '/fhir/metadata' })).json().rest[0].documentation);
  t.match(doc, /at most 25 search parameters/);
  t.match(doc, /10 occurrences of one parameter/);
  t.match(doc, /1000 comma-separated/);
  t.match(doc, /10 _include\/_revinclude values/);
  t.match(doc, /longer than 7 s/);
  t.match(doc, /500 requests per 30 s/);
});
