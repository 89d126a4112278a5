/**
 * The error contract over HTTP: every refusal is an OperationOutcome in application/fhir+json with
 * the right status, and never leaks a stack trace or SQL. Real app, real database, app.inject.
 */
import t, { type Test } from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { randomUUID } from 'node:crypto';
import { testApp, testConfig } from '../helpers/app.js';
import { buildApp } from '../../src/api/app.js';
import { createDb, migrateLatest } from '../../src/db/knex.js';

const { app, fhir } = await testApp(t);

const patient = (): Record<string, unknown> => ({
  resourceType: 'Patient',
  name: [{ family: `Errors-${randomUUID()}`, given: ['Ada'] }],
  gender: 'female',
  birthDate: '1980-02-03',
});

/** Stack frames, source positions, SQL and driver codes that must never reach a client. */
const LEAKS: Array<[RegExp, string]> = [
  [/\n\s*at /, 'a stack frame'],
  [/\bat [\w.<>$]+ \(/, 'a stack frame'],
  [/\.ts:\d*/, 'a .ts source position'],
  [/\.js:\d+/, 'a .js source position'],
  [/\bSELECT\b/, 'SQL (SELECT)'],
  [/\bINSERT\b/, 'SQL (INSERT)'],
  [/sqlite/i, 'the SQLite driver'],
  [/ER_/, 'a MySQL error code'],
  [/knex/i, 'the query builder'],
];

/** Asserts the whole error contract on one response. */
function assertOutcome(t: Test, res: LightMyRequestResponse, status: number): Record<string, unknown> {
  t.equal(res.statusCode, status, `status ${status}`);
  t.match(String(res.headers['content-type']), /^application\/fhir\+json(;|$)/, 'content-type application/fhir+json');
  let body: { resourceType?: string; issue?: Array<{ severity?: string; code?: string }> } = {};
  try {
    body = res.json();
  } catch {
    t.fail(`body is not JSON: ${res.body.slice(0, 200)}`);
  }
  t.equal(body.resourceType, 'OperationOutcome', 'resourceType OperationOutcome');
  t.ok(Array.isArray(body.issue) && body.issue.length > 0, 'at least one issue');
  t.ok(body.issue?.every((i) => i.severity && i.code), 'every issue has severity and code');
  for (const [re, what] of LEAKS) t.notMatch(res.body, re, `no ${what} in the body`);
  return body as Record<string, unknown>;
}

t.test('POST /fhir/Patient with an unsupported Content-Type is 415', async (t) => {
  for (const type of ['text/plain', 'application/xml', 'application/fhir+xml', 'application/octet-stream']) {
    const res = await fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': type }, payload: JSON.stringify(patient()) });
    t.test(type, async (t) => { assertOutcome(t, res, 415); });
  }
  const none = await fhir({ method: 'POST', url: '/fhir/Patient', payload: JSON.stringify(patient()) });
  t.test('no Content-Type at all', async (t) => { assertOutcome(t, none, 415); });
});

t.test('POST /fhir/Patient accepts application/fhir+json and application/json', async (t) => {
  for (const type of ['application/fhir+json', 'application/json', 'application/fhir+json; charset=utf-8']) {
    const res = await fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': type }, payload: JSON.stringify(patient()) });
    t.equal(res.statusCode, 201, type);
  }
});

t.test('Accept: application/fhir+xml is 406', async (t) => {
  assertOutcome(t, await fhir({ method: 'GET', url: '/fhir/Patient', headers: { accept: 'application/fhir+xml' } }), 406);
  assertOutcome(t, await fhir({ method: 'GET', url: '/fhir/metadata', headers: { accept: 'application/xml' } }), 406);
});

t.test('_format=xml is 406', async (t) => {
  assertOutcome(t, await fhir({ method: 'GET', url: '/fhir/Patient?_format=xml' }), 406);
  assertOutcome(t, await fhir({ method: 'GET', url: '/fhir/metadata?_format=xml' }), 406);
});

t.test('Accept: application/json, application/fhir+json, */* and _format=json are served', async (t) => {
  for (const accept of ['application/json', 'application/fhir+json', '*/*', 'text/html, */*;q=0.1']) {
    const res = await fhir({ method: 'GET', url: '/fhir/Patient', headers: { accept } });
    t.equal(res.statusCode, 200, accept);
    t.match(String(res.headers['content-type']), /^application\/fhir\+json/);
    t.equal(res.json().resourceType, 'Bundle');
  }
  t.equal((await fhir({ method: 'GET', url: '/fhir/Patient?_format=json' })).statusCode, 200, '_format=json');
});

t.test('a body over HMS_BODY_LIMIT is 413', async (t) => {
  const small = await testApp(t, { HMS_BODY_LIMIT: 2048 });
  const big = { ...patient(), text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(4096)}</div>` } };
  const payload = JSON.stringify(big);
  t.ok(payload.length > 4096, 'the body is over 4 KB');
  const headers = { 'content-type': 'application/fhir+json' };
  assertOutcome(t, await small.fhir({ method: 'POST', url: '/fhir/Patient', headers, payload }), 413);
  const fits = await small.fhir({ method: 'POST', url: '/fhir/Patient', headers, payload: JSON.stringify(patient()) });
  t.equal(fits.statusCode, 201, 'a small Patient still fits');
});

t.test('malformed JSON is 400', async (t) => {
  for (const type of ['application/fhir+json', 'application/json']) {
    const res = await fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': type }, payload: '{"resourceType": "Patient", "name": [' });
    t.test(type, async (t) => { assertOutcome(t, res, 400); });
  }
});

t.test('an empty JSON body is 400', async (t) => {
  for (const type of ['application/fhir+json', 'application/json']) {
    const res = await fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': type }, payload: '' });
    t.test(type, async (t) => { assertOutcome(t, res, 400); });
  }
});

t.test('a __proto__ key in the JSON is 400', async (t) => {
  for (const type of ['application/fhir+json', 'application/json']) {
    const payload = '{"resourceType":"Patient","__proto__":{"isAdmin":true},"gender":"male"}';
    const res = await fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': type }, payload });
    t.test(type, async (t) => { assertOutcome(t, res, 400); });
  }
  const nested = await fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': 'application/fhir+json' }, payload: '{"resourceType":"Patient","name":[{"family":"X","constructor":{"prototype":{"polluted":1}}}]}' });
  t.test('constructor.prototype too', async (t) => { assertOutcome(t, nested, 400); });
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype untouched');
});

t.test('DELETE /fhir/metadata is 405', async (t) => {
  assertOutcome(t, await fhir({ method: 'DELETE', url: '/fhir/metadata' }), 405);
});

t.test('PATCH /fhir/Patient is 405', async (t) => {
  assertOutcome(t, await fhir({ method: 'PATCH', url: '/fhir/Patient', payload: JSON.stringify([]), headers: { 'content-type': 'application/json-patch+json' } }), 405);
});

t.test('GET /fhir/Unknown is 404', async (t) => {
  const body = assertOutcome(t, await fhir({ method: 'GET', url: '/fhir/Unknown' }), 404);
  t.match(JSON.stringify(body), /Unknown/, 'names the type');
});

t.test('GET /nope is 404', async (t) => {
  assertOutcome(t, await app.inject({ method: 'GET', url: '/nope' }), 404);
});

t.test('GET /fhir/Patient/<unknown id> is 404', async (t) => {
  assertOutcome(t, await fhir({ method: 'GET', url: `/fhir/Patient/${randomUUID()}` }), 404);
});

t.test('an invalid Patient is refused with an OperationOutcome and no internals', async (t) => {
  const res = await fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', gender: 'sometimes', birthDate: 'yesterday' } });
  t.ok(res.statusCode === 400 || res.statusCode === 422, `status ${res.statusCode}`);
  assertOutcome(t, res, res.statusCode);
});

t.test('login and logout errors follow the contract too', async (t) => {
  assertOutcome(t, await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'x@example.org' }, remoteAddress: '10.255.0.1' }), 400);
  assertOutcome(t, await app.inject({ method: 'POST', url: '/auth/logout' }), 401);
  assertOutcome(t, await fhir({ method: 'GET', url: '/fhir/Patient', token: null }), 401);
});

t.test('a database error on a FHIR request is a 500 OperationOutcome without SQL or stack', async (t) => {
  // A private SQLite file whatever DATABASE_URL says: the table is renamed away under the app.
  const config = { ...testConfig(t), DATABASE_URL: undefined };
  const db = createDb(config);
  t.teardown(() => db.destroy());
  await migrateLatest(db);
  const broken = await buildApp({ config, db, logger: false });
  t.teardown(() => broken.close());
  await db.schema.renameTable('user_sessions', 'user_sessions_gone');
  const res = await broken.inject({ method: 'GET', url: '/fhir/Patient', headers: { authorization: 'Bearer abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' } });
  const body = assertOutcome(t, res, 500);
  t.notMatch(JSON.stringify(body), /user_sessions/, 'no table name either');
});

t.test('an over-long id and a malformed URL are answered with an OperationOutcome', async (t) => {
  // the router rejects these before any route runs; Fastify's frameworkErrors hook must answer them
  const cases: Array<[string, number]> = [[`/fhir/Patient/${'a'.repeat(300)}`, 414], ['/fhir/Patient/%E0%A4%A', 400]];
  for (const [url, status] of cases) {
    const res = await fhir({ method: 'GET', url });
    t.equal(res.statusCode, status, `${url.slice(0, 30)}: status ${status}`);
    t.match(String(res.headers['content-type']), /^application\/fhir\+json/, 'content-type application/fhir+json');
    t.match(res.body, /"resourceType":"OperationOutcome"/, 'an OperationOutcome');
    t.notMatch(res.body, /FST_ERR/, 'no framework error code');
  }
});

t.test('GET /health is 200 {status: ok} when the database answers', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/health' });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { status: 'ok', database: 'up' });
  // REDIS_URL is set in CI's MariaDB run: the health check then pings Redis too
  t.equal(res.json().redis, process.env.REDIS_URL ? 'up' : 'not configured');
});

t.test('GET /health is 503 when REDIS_URL points at a closed port', async (t) => {
  const config = testConfig(t, { REDIS_URL: 'redis://127.0.0.1:1/0' });
  const down = await buildApp({ config, logger: false });
  t.teardown(() => down.close());
  const started = Date.now();
  const body = assertOutcome(t, await down.inject({ method: 'GET', url: '/health' }), 503);
  t.match(JSON.stringify(body), /Redis unavailable/);
  t.ok(Date.now() - started < 10_000, 'answers promptly');
});

t.test('GET /health is 503 when the database is gone', async (t) => {
  const config = testConfig(t);
  const db = createDb(config);
  const down = await buildApp({ config, db, logger: false });
  t.teardown(() => down.close());
  await db.destroy();
  assertOutcome(t, await down.inject({ method: 'GET', url: '/health' }), 503);
});

t.test('GET /health is 503 when DATABASE_URL points at a closed port', async (t) => {
  const config = testConfig(t, { DATABASE_URL: 'mysql://root@127.0.0.1:1/x' });
  const down = await buildApp({ config, logger: false });
  t.teardown(() => down.close());
  const started = Date.now();
  assertOutcome(t, await down.inject({ method: 'GET', url: '/health' }), 503);
  t.ok(Date.now() - started < 10_000, 'answers promptly');
});

t.test('GET /docs/json is an OpenAPI 3 document listing the Patient paths', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(res.statusCode, 200);
  const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
  t.match(doc.openapi, /^3\./);
  t.ok(doc.paths['/fhir/Patient'], '/fhir/Patient');
  t.ok(doc.paths['/fhir/Patient']?.get && doc.paths['/fhir/Patient']?.post, 'search and create');
  t.ok(doc.paths['/fhir/Patient/{id}']?.get, 'read');
  t.ok(doc.paths['/auth/login']?.post, 'login');
});

t.test('GET /docs serves the Swagger UI', async (t) => {
  let res = await app.inject({ method: 'GET', url: '/docs' });
  if (res.statusCode >= 300 && res.statusCode < 400) {
    t.ok(res.headers.location, 'a redirect says where');
    res = await app.inject({ method: 'GET', url: new URL(String(res.headers.location), 'http://localhost/docs/').pathname });
  }
  t.equal(res.statusCode, 200);
  t.match(String(res.headers['content-type']), /text\/html/);
  t.match(res.body, /swagger-ui/i);
});
