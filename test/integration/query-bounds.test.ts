/**
 * Bounded query cost (OWASP API4): a search over its bounds answers 400 at once; a statement that
 * runs past HMS_STATEMENT_TIMEOUT is stopped (503) and leaves nothing running; a client that goes
 * away has its statement cancelled. Real app, real database (MariaDB with DATABASE_URL).
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { testApp, testConfig, type TestApp } from '../helpers/app.js';
import { createDb, dialectOf } from '../../src/db/knex.js';
import { insertRows } from '../../src/db/write-buffer.js';

const mysql = Boolean(process.env.DATABASE_URL);
const h = await testApp(t);

/** `name=v1&name=v2...` for n values. */
const repeated = (name: string, n: number, value = (i: number) => `v${i}`): string =>
  Array.from({ length: n }, (_, i) => `${name}=${encodeURIComponent(value(i))}`).join('&');

/** Asserts a 400 OperationOutcome (code too-costly) whose diagnostics name `variable`. */
function assertTooCostly(t: Test, res: { statusCode: number; headers: Record<string, unknown>; json(): any }, variable: RegExp): void {
  t.equal(res.statusCode, 400);
  t.match(String(res.headers['content-type']), /^application\/fhir\+json/);
  const body = res.json();
  t.equal(body.resourceType, 'OperationOutcome');
  t.equal(body.issue[0].code, 'too-costly');
  t.match(body.issue[0].diagnostics, variable);
}

t.test('a search repeating a token parameter 200 times answers 400 at once with the default bounds', async (t) => {
  const url = `/fhir/Observation?${repeated('identifier', 200, (i) => String.fromCharCode(97 + (i % 26)) + i)}`;
  const started = Date.now();
  const res = await h.fhir({ method: 'GET', url });
  const elapsed = Date.now() - started;
  assertTooCostly(t, res, /'identifier' appears 200 times: at most 10 .*HMS_SEARCH_MAX_REPEATS/);
  t.ok(elapsed < 1000, `answered in ${elapsed} ms, before any SQL`);
  const form = await h.fhir({
    method: 'POST', url: '/fhir/Observation/_search',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: repeated('identifier', 200),
  });
  assertTooCostly(t, form, /HMS_SEARCH_MAX_REPEATS/);
  const modifiers = await h.fhir({ method: 'GET', url: `/fhir/Observation?${repeated('identifier', 6)}&${repeated('identifier:not', 5)}` });
  assertTooCostly(t, modifiers, /'identifier' appears 11 times/);
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Observation?${repeated('identifier', 10)}` })).statusCode, 200, 'ten repeats are within the bound');
});

t.test('too many search parameters answer 400 naming the bound', async (t) => {
  const thirty = [repeated('identifier', 10), repeated('code', 10), repeated('status', 9), 'date=ge2020'].join('&');
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Observation?${thirty}&_count=5&_sort=-date` })).statusCode, 200, '30 parameters (result parameters not counted)');
  const res = await h.fhir({ method: 'GET', url: `/fhir/Observation?${thirty}&category=laboratory` });
  assertTooCostly(t, res, /31 search parameters: at most 30 .*HMS_SEARCH_MAX_PARAMS/);
  const unknown = await h.fhir({ method: 'GET', url: `/fhir/Patient?${Array.from({ length: 31 }, (_, i) => `x${i}=1`).join('&')}` });
  assertTooCostly(t, unknown, /HMS_SEARCH_MAX_PARAMS/);
});

t.test('too many _include/_revinclude values answer 400 naming the bound', async (t) => {
  const includes = (n: number) => Array.from({ length: n }, (_, i) => (i % 2 ? '_include=Observation:patient' : '_revinclude:iterate=Observation:encounter')).join('&');
  t.equal((await h.fhir({ method: 'GET', url: `/fhir/Observation?_count=1&${includes(10)}` })).statusCode, 200);
  assertTooCostly(t, await h.fhir({ method: 'GET', url: `/fhir/Observation?_count=1&${includes(11)}` }), /11 _include\/_revinclude values: at most 10 .*HMS_SEARCH_MAX_INCLUDES/);
});

t.test('OR-ed values, sort keys and chain depth are bounded too', async (t) => {
  const b = await testApp(t, { HMS_SEARCH_MAX_VALUES: 5 });
  assertTooCostly(t, await b.fhir({ method: 'GET', url: '/fhir/Patient?identifier=a,b,c,d,e,f' }), /6 values: at most 5 .*HMS_SEARCH_MAX_VALUES/);
  assertTooCostly(t, await b.fhir({ method: 'GET', url: '/fhir/Observation?patient.family=a,b,c&patient.given=d,e,f' }), /6 values in all: at most 5/);
  t.equal((await b.fhir({ method: 'GET', url: '/fhir/Patient?identifier=a,b,c,d,e' })).statusCode, 200);
  assertTooCostly(t, await h.fhir({ method: 'GET', url: `/fhir/Patient?_sort=${Array.from({ length: 11 }, () => 'birthdate').join(',')}` }), /_sort has 11 keys: at most 10/);
  const deep = await h.fhir({ method: 'GET', url: '/fhir/Observation?encounter.patient.family=x' });
  t.equal(deep.statusCode, 400);
  t.match(deep.json().issue[0].diagnostics, /chains 1 level deep/);
});

/**
 * Seeds `n` observations of a new patient, 50 of them with identifier system|code. 200 negated
 * repeats of that identifier are a statement that really costs: each row the count visits runs
 * 200 NOT EXISTS lookups (about 0.25 ms per row on MariaDB 10.11, 1.4 ms on SQLite, measured).
 * The positive form (identifier=a&identifier=b...) stops at the first lookup that fails.
 */
async function seedSlowObservations(t: Test, db: Knex, n: number): Promise<{ code: string; query: string }> {
  const code = randomUUID();
  const patientId = randomUUID();
  await db('patients').insert({ id: patientId, first_name: 'Bounds', last_name: `Bounds-${code}`, date_of_birth: '1970-01-01', gender: 'female' });
  const prefix = randomUUID().slice(0, 18);
  const rows = Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${String(i).padStart(8, '0')}`, source: 'lab', source_id: `${prefix}-${i}`, patient_id: patientId, status: 'final', code: 'bounds' }));
  await insertRows(db, 'observations', rows);
  await insertRows(db, 'search_token', rows.slice(0, 50).map((r) => ({ resource_type: 'Observation', resource_id: r.id, param: 'identifier', system: 'urn:bounds', code })));
  // shared database: leave nothing behind (observations go with their patient)
  t.teardown(async () => {
    await db('search_token').where({ code }).delete();
    await db('patients').where({ id: patientId }).delete();
  });
  return { code, query: `${repeated('identifier:not', 200, () => `urn:bounds|${code}`)}&_summary=count` };
}

/** Statements running on the server whose text holds `marker`, other than the one asking. */
async function runningWith(db: Knex, marker: string): Promise<number> {
  const [rows] = await db.raw(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE ?",
    [`%${marker}%`],
  ) as [Array<{ n: number | string }>];
  return Number(rows[0]!.n);
}

/** Polls `check` every 25 ms until it holds or `ms` have passed. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const raisedBounds = { HMS_SEARCH_MAX_REPEATS: 200, HMS_SEARCH_MAX_PARAMS: 250 };

t.test('every API connection carries the statement time limit', { skip: !mysql && 'MySQL only (DATABASE_URL)' }, async (t) => {
  const l = await testApp(t, { HMS_STATEMENT_TIMEOUT: 1.5 });
  const [[version]] = await l.db.raw('SELECT VERSION() AS v') as [[{ v: string }]];
  const mariadb = /mariadb/i.test(version!.v);
  const [[row]] = await l.db.raw(mariadb ? 'SELECT @@SESSION.max_statement_time AS s' : 'SELECT @@SESSION.max_execution_time AS s') as [[{ s: number | string }]];
  t.equal(Number(row!.s), mariadb ? 1.5 : 1500);
  const [[plain]] = await h.db.raw(mariadb ? 'SELECT @@SESSION.max_statement_time AS s' : 'SELECT @@SESSION.max_execution_time AS s') as [[{ s: number | string }]];
  t.equal(Number(plain!.s), mariadb ? 10 : 10_000, 'the default is 10 s');
});

t.test('with the repeat bound raised, the costly search stops at HMS_STATEMENT_TIMEOUT: 503 and nothing left running', { skip: !mysql && 'MySQL only (DATABASE_URL)' }, async (t) => {
  const s = await testApp(t, { ...raisedBounds, HMS_STATEMENT_TIMEOUT: 1 });
  const { code, query } = await seedSlowObservations(t, s.db, 20_000);
  const started = Date.now();
  const res = await s.fhir({ method: 'GET', url: `/fhir/Observation?${query}` });
  const elapsed = Date.now() - started;
  t.equal(res.statusCode, 503, res.statusCode === 503 ? '503' : `503, got ${res.statusCode}: ${res.body.slice(0, 300)}`);
  t.ok(elapsed < 2500, `answered in ${elapsed} ms (limit 1 s)`);
  t.match(String(res.headers['content-type']), /^application\/fhir\+json/);
  t.equal(res.json().issue[0].code, 'timeout');
  t.equal(res.headers['retry-after'], '5');
  t.notMatch(res.body, /SELECT|max_statement_time|ER_/, 'no SQL or driver detail');
  t.equal(await runningWith(s.db, code), 0, 'no statement of the search is still running');
});

t.test('a client that goes away has its statement cancelled within a second', { skip: !mysql && 'MySQL only (DATABASE_URL)' }, async (t) => {
  const d = await testApp(t, { ...raisedBounds, HMS_STATEMENT_TIMEOUT: 60 });
  const { code, query } = await seedSlowObservations(t, d.db, 20_000);
  await d.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = d.app.server.address() as { port: number };
  const req = http.request({ host: '127.0.0.1', port, path: `/fhir/Observation?${query}`, headers: { authorization: `Bearer ${d.token}` } });
  let answered = false;
  req.on('response', () => { answered = true; });
  req.on('error', () => undefined); // the socket is destroyed on purpose
  req.end();
  t.ok(await eventually(async () => (await runningWith(d.db, code)) > 0, 5000), 'the search statement runs');
  req.destroy();
  const gone = Date.now();
  t.ok(await eventually(async () => (await runningWith(d.db, code)) === 0, 1000), `the statement is gone ${Date.now() - gone} ms after the client left`);
  t.notOk(answered, 'the search had not finished on its own');
  const after = await d.fhir({ method: 'GET', url: '/fhir/Observation?_count=1' });
  t.equal(after.statusCode, 200, 'the pool has its connections back');

  // a request whose body has been read is not abandoned (Node's request 'close' would say so)
  const form = await fetch(`http://127.0.0.1:${port}/fhir/Observation/_search`, {
    method: 'POST', body: `identifier=${encodeURIComponent(`urn:bounds|${code}`)}&_total=accurate`,
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/x-www-form-urlencoded' },
    signal: AbortSignal.timeout(10_000),
  });
  t.equal(form.status, 200, 'POST _search over TCP is answered');
  t.equal(((await form.json()) as { total?: number }).total, 50);
});

t.test('SQLite: the deadline function stops a costly search (503) at HMS_STATEMENT_TIMEOUT', { skip: mysql && 'SQLite only' }, async (t) => {
  const s = await testApp(t, { ...raisedBounds, HMS_STATEMENT_TIMEOUT: 0.5 });
  const { query } = await seedSlowObservations(t, s.db, 3000);
  const started = Date.now();
  const res = await s.fhir({ method: 'GET', url: `/fhir/Observation?${query}` });
  const elapsed = Date.now() - started;
  t.equal(res.statusCode, 503, res.statusCode === 503 ? '503' : `503, got ${res.statusCode}: ${res.body.slice(0, 300)}`);
  t.ok(elapsed < 2000, `answered in ${elapsed} ms (limit 0.5 s; the whole search takes seconds)`);
  t.equal(res.json().issue[0].code, 'timeout');
  t.equal(res.headers['retry-after'], '5');
  t.equal((await s.fhir({ method: 'GET', url: '/fhir/Observation?_count=1' })).statusCode, 200, 'the connection serves the next request');
});

t.test('SQLite: a runaway scan calling the deadline function aborts; without a limit searches run as before', { skip: mysql && 'SQLite only' }, async (t) => {
  const db = createDb(testConfig(t), { statementTimeout: 0.2 });
  t.teardown(() => db.destroy());
  t.equal(dialectOf(db), 'sqlite');
  const started = Date.now();
  await t.rejects(
    db.raw('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) AS n FROM c WHERE hms_within_deadline()'),
    { code: 'HMS_STATEMENT_TIMEOUT' },
  );
  t.ok(Date.now() - started < 1500, `stopped after ${Date.now() - started} ms`);
  t.same(await db.raw('SELECT 1 AS one'), [{ one: 1 }], 'the connection is usable afterwards');

  const off: TestApp = await testApp(t, { HMS_STATEMENT_TIMEOUT: 0 });
  t.equal((await off.fhir({ method: 'GET', url: '/fhir/Observation?identifier=x&_total=accurate' })).statusCode, 200, 'no deadline, no function in the SQL');
});
