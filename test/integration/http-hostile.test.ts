/**
 * Hostile input: every answer, including those Node's HTTP parser gives before routing, is an
 * OperationOutcome in application/fhir+json with a fitting status, never a 500 or Fastify's
 * {"error":...}. Real app, real database, real TCP (raw node:net sockets: fastify.inject bypasses
 * Node's parser); bodies nested too deeply are refused before they are parsed; a hostile Host
 * never breaks a link.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { testApp, type TestApp } from '../helpers/app.js';
import { makePatient } from '../helpers/world.js';
import { buildApp } from '../../src/api/app.js';
import { nestsDeeperThan } from '../../src/api/plugins/fhir-json.js';
import { validHostHeader } from '../../src/api/routes/fhir-context.js';

const h = await testApp(t);
await h.app.listen({ port: 0, host: '127.0.0.1' });
const port = (h.app.server.address() as net.AddressInfo).port;

interface Answer { status: number; headers: Record<string, string>; body: string }

/** Splits what a server sent into its answers (Content-Length or chunked bodies). */
function parseAnswers(raw: Buffer): Answer[] {
  const answers: Answer[] = [];
  let at = 0;
  while (at < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', at);
    if (headEnd === -1) throw new Error(`an incomplete answer: ${raw.subarray(at, at + 200).toString('latin1')}`);
    const [statusLine, ...lines] = raw.subarray(at, headEnd).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    at = headEnd + 4;
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = raw.indexOf('\r\n', at);
        const size = parseInt(raw.subarray(at, lineEnd).toString('latin1'), 16);
        at = lineEnd + 2;
        if (size === 0) { at += 2; break; }
        parts.push(raw.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      body = raw.subarray(at, at + length);
      at += length;
    }
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body: body.toString('utf8') });
  }
  return answers;
}

/** A bound on one exchange, so that a server keeping a connection open fails the test instead of hanging it. */
const EXCHANGE_BOUND_MS = 10_000;

/**
 * Sends bytes on a new connection and collects everything the server sends until it closes the
 * connection. Every request here is answered with Connection: close (or asks for it), so the
 * server always closes.
 */
function exchange(request: string | Buffer, toPort = port): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(toPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    const bound = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`));
    }, EXCHANGE_BOUND_MS);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err) => { clearTimeout(bound); reject(err); });
    socket.on('end', () => {
      clearTimeout(bound);
      socket.destroy();
      try { resolve(parseAnswers(Buffer.concat(chunks))); } catch (err) { reject(err); }
    });
    socket.write(request);
  });
}

/** One request over TCP, with Connection: close, and its single answer. */
async function one(request: string | Buffer, toPort = port): Promise<Answer> {
  const answers = await exchange(request, toPort);
  if (answers.length !== 1) throw new Error(`expected one answer, got ${answers.length}`);
  return answers[0]!;
}

/** A well-formed HTTP/1.1 request (Host, Connection: close, Content-Length of the body) as a string. */
function request(method: string, path: string, headers: Record<string, string> = {}, body?: string): string {
  const all: Record<string, string> = { host: `127.0.0.1:${port}`, connection: 'close', ...headers };
  if (body !== undefined) all['content-length'] ??= String(Buffer.byteLength(body));
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body ?? ''}`;
}

const auth = { authorization: `Bearer ${h.token}` };

/** Asserts the error contract on one answer: status, FHIR JSON, an OperationOutcome with the issue code, the security headers. */
function assertOutcome(t: Test, res: Answer, status: number, code?: string): string {
  t.equal(res.status, status, `status ${status}`);
  t.equal(res.headers['content-type'], 'application/fhir+json; charset=utf-8', 'FHIR JSON');
  t.equal(res.headers['x-content-type-options'], 'nosniff', 'the security headers');
  let body: { resourceType?: string; issue?: Array<{ severity?: string; code?: string; diagnostics?: string }> } = {};
  try { body = JSON.parse(res.body); } catch { t.fail(`not JSON: ${res.body.slice(0, 200)}`); }
  t.equal(body.resourceType, 'OperationOutcome');
  t.ok(body.issue?.length && body.issue.every((i) => i.severity === 'error' && i.code), 'issues with severity and code');
  if (code) t.equal(body.issue?.[0]?.code, code, `issue code ${code}`);
  t.notMatch(res.body, /\n\s*at |\.ts:\d|\.js:\d|HPE_|ERR_/, 'no stack, source position or parser code');
  return body.issue?.[0]?.diagnostics ?? '';
}

/** The number of rows of the patients table (refusals must not add any). */
async function patientRows(): Promise<number> {
  return Number(((await h.db('patients').count({ n: '*' }))[0] as { n: number | string }).n);
}

t.test("requests Node's parser refuses are answered with an OperationOutcome and Connection: close", async (t) => {
  const cases: Array<[string, string | Buffer, number, string]> = [
    ['a URL over 16 kB', `GET /fhir/Patient?name=${'a'.repeat(17_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'too-long'],
    ['a URL of 300 kB (the client is still sending when refused)', `GET /fhir/Patient?name=${'a'.repeat(300_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'too-long'],
    ['headers over 16 kB', `GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${Array.from({ length: 1000 }, (_, i) => `X-${i}: ${'y'.repeat(20)}\r\n`).join('')}\r\n`, 431, 'too-long'],
    ['an unknown method', 'FOO /fhir/Patient HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'not-supported'],
    ['a lower-case method', 'get /fhir/Patient HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'not-supported'],
    ['TLS spoken to the HTTP port', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), 400, 'structure'],
    ['a request line without target and version', 'GET\r\n\r\n', 400, 'structure'],
    ['a space in the target', 'GET /fhir/Pat ient HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'structure'],
    ['line feeds without carriage returns', 'GET /health HTTP/1.1\nHost: x\n\n', 400, 'structure'],
    ['HTTP/9.9', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n', 505, 'not-supported'],
    ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'not-supported'],
    ['a control character in a header name', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A\x01b: c\r\n\r\n', 400, 'structure'],
    ['a NUL in a header value', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: c\x00d\r\n\r\n', 400, 'structure'],
    ['a folded header line', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', 400, 'structure'],
    ['both Content-Length and Transfer-Encoding', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'structure'],
    ['two Content-Lengths', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'structure'],
    ['a negative Content-Length', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n', 400, 'structure'],
    ['a Transfer-Encoding other than chunked', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n', 400, 'structure'],
    ['a malformed chunk size', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400, 'structure'],
    ['chunk extensions over 16 kB', `POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;${'a'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`, 413, 'too-long'],
    ['CONNECT', 'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n', 501, 'not-supported'],
    ['an HTTP/1.1 request without Host', 'GET /fhir/Patient HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'structure'],
    ['an Expect other than 100-continue', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}', 417, 'not-supported'],
  ];
  for (const [name, bytes, status, code] of cases) {
    await t.test(name, async (t) => {
      const res = await one(bytes);
      assertOutcome(t, res, status, code);
      t.equal(res.headers.connection?.toLowerCase(), 'close', 'Connection: close (and the server closed it)');
      t.equal(res.headers['cache-control'], 'no-store');
    });
  }
});

t.test('a pipelined request the parser refuses is answered after the answer before it', async (t) => {
  const answers = await exchange(`GET /health HTTP/1.1\r\nHost: x\r\n\r\nFOO /fhir/Patient HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.equal(answers.length, 2, 'two answers, in order');
  t.equal(answers[0]!.status, 200, 'the health check first');
  assertOutcome(t, answers[1]!, 501, 'not-supported');
});

t.test('a request that does not arrive in time is answered 408', async (t) => {
  // a second app on the same database, with Node's timeouts short enough to wait for
  const slow = await buildApp({ config: h.config, db: h.db, logger: false });
  t.teardown(() => slow.close());
  Object.assign(slow.server, { headersTimeout: 300, requestTimeout: 300, connectionsCheckingInterval: 50 });
  await slow.listen({ port: 0, host: '127.0.0.1' });
  const slowPort = (slow.server.address() as net.AddressInfo).port;
  assertOutcome(t, await one('GET /health HTTP/1.1\r\nHost: x\r\n', slowPort), 408, 'timeout');
  const partialBody = 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":';
  const res = await one(partialBody, slowPort);
  assertOutcome(t, res, 408, 'timeout');
  t.equal(res.headers.connection?.toLowerCase(), 'close');
});

t.test('refusals after routing over TCP: each an OperationOutcome with its status', async (t) => {
  const json = { 'content-type': 'application/fhir+json' };
  const cases: Array<[string, string, number, string?]> = [
    ['an unknown path', request('GET', '/nothing/here'), 404, 'not-found'],
    ['an unknown resource type', request('GET', '/fhir/Spaceship', auth), 404, 'not-supported'],
    ['a method a FHIR type does not have', request('PATCH', '/fhir/AuditEvent/x', { ...auth, 'content-type': 'application/json-patch+json' }, '[]'), 405, 'not-supported'],
    ['a PATCH of an unknown id', request('PATCH', '/fhir/Patient/x', { ...auth, 'content-type': 'application/json-patch+json' }, '[]'), 404, 'not-found'],
    ['TRACE', request('TRACE', '/fhir/Patient', auth), 405, 'not-supported'],
    ['TRACE on /health', request('TRACE', '/health'), 405, 'not-supported'],
    ['PROPFIND', request('PROPFIND', '/fhir/Patient', auth), 405, 'not-supported'],
    ['OPTIONS on an unknown path', request('OPTIONS', '/nothing/here'), 404, 'not-found'],
    ['OPTIONS *', request('OPTIONS', '*'), 404, 'not-found'],
    ['DELETE /fhir/metadata', request('DELETE', '/fhir/metadata'), 405, 'not-supported'],
    ['a bad percent-encoding in the path', request('GET', '/fhir/Patient/%E0%A4%A', auth), 400, 'invalid'],
    ['a NUL in the path', request('GET', '/fhir/Patient%00', auth), 404],
    ['an id over the parameter length', request('GET', `/fhir/Patient/${'a'.repeat(200)}`, auth), 414, 'too-long'],
    ['a FHIR body that is not JSON', request('POST', '/fhir/Patient', { ...auth, ...json }, '{"resourceType":'), 400, 'invalid'],
    ['an empty FHIR body', request('POST', '/fhir/Patient', { ...auth, ...json }, ''), 400, 'invalid'],
    ['a FHIR body as text/plain', request('POST', '/fhir/Patient', { ...auth, 'content-type': 'text/plain' }, '{"resourceType":"Patient"}'), 415, 'not-supported'],
    ['a FHIR body as XML', request('POST', '/fhir/Patient', { ...auth, 'content-type': 'application/fhir+xml' }, '<Patient/>'), 415, 'not-supported'],
    ['a body over HMS_BODY_LIMIT', request('POST', '/fhir/Patient', { ...auth, ...json, 'content-length': String(h.config.HMS_BODY_LIMIT + 1) }, '{}'), 413, 'too-costly'],
    ['GET /auth/login', request('GET', '/auth/login'), 405, 'not-supported'],
    ['a login as text/plain', request('POST', '/auth/login', { 'content-type': 'text/plain' }, '{}'), 415, 'not-supported'],
    ['a login that is not JSON', request('POST', '/auth/login', { 'content-type': 'application/json' }, '{"email"'), 400, 'invalid'],
    ['an empty login', request('POST', '/auth/login', { 'content-type': 'application/json' }, ''), 400, 'invalid'],
    ['a login with a prototype key', request('POST', '/auth/login', { 'content-type': 'application/json' }, '{"__proto__":{"x":1}}'), 400, 'invalid'],
    ['/admin without a token', request('GET', '/admin/users'), 401, 'login'],
    ['/admin with a body that is not JSON', request('POST', '/admin/users', { ...auth, 'content-type': 'application/json' }, '{"email":}'), 400, 'invalid'],
    ['POST /health', request('POST', '/health', {}, ''), 405, 'not-supported'],
  ];
  const before = await patientRows();
  for (const [name, bytes, status, code] of cases) {
    await t.test(name, async (t) => { assertOutcome(t, await one(bytes), status, code); });
  }
  t.equal(await patientRows(), before, 'no refusal stored a patient');
});

t.test('a 405 names the methods the path has', async (t) => {
  const res = await one(request('PUT', '/health'));
  assertOutcome(t, res, 405, 'not-supported');
  t.match(res.headers.allow, /\bGET\b/, 'Allow: GET');
  t.match(res.headers.allow, /\bHEAD\b/, 'Allow: HEAD');
  const post = await one(request('POST', '/fhir/Patient/some-id', { ...auth, 'content-type': 'application/fhir+json' }, '{}'));
  assertOutcome(t, post, 405, 'not-supported');
  t.match(post.headers.allow, /^(?=.*\bGET\b)(?=.*\bPUT\b)(?=.*\bPATCH\b)(?=.*\bDELETE\b)/, 'Allow: GET, PUT, PATCH, DELETE ... on a FHIR instance');
});

t.test('a bad percent-encoding in a search value is searched for as given, not a 500', async (t) => {
  const res = await one(request('GET', '/fhir/Patient?name=%E0%A4%A', auth));
  t.equal(res.status, 200);
  t.equal(JSON.parse(res.body).resourceType, 'Bundle');
});

t.test('_format in a POST _search form body counts as in the query', async (t) => {
  const post = (form: string) => h.fhir({ method: 'POST', url: '/fhir/Patient/_search', payload: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const ttl = await post('family=x&_format=ttl');
  t.equal(ttl.statusCode, 406, ttl.body);
  t.equal(ttl.json().resourceType, 'OperationOutcome');
  const json = await post('family=x&_format=json');
  t.equal(json.statusCode, 200, json.body);
  t.equal(json.json().resourceType, 'Bundle');
});

/** A Patient body whose extension is `levels` arrays deep (the Patient is level 1). */
const deepPatient = (levels: number): string => `{"resourceType":"Patient","extension":${'['.repeat(levels)}${']'.repeat(levels)}}`;

/**
 * A valid Patient of complex extensions nested `wraps` times around a coded one: 2 * wraps + 6
 * levels deep (Patient, extension, the wraps, the leaf, its CodeableConcept, coding, Coding).
 */
function nestedExtensions(wraps: number): Record<string, unknown> {
  let ext: Record<string, unknown> = { url: 'http://example.org/leaf', valueCodeableConcept: { coding: [{ system: 'http://example.org/cs', code: 'x' }] } };
  for (let i = 0; i < wraps; i++) ext = { url: `http://example.org/level-${i}`, extension: [ext] };
  return { resourceType: 'Patient', name: [{ family: `Deep-${randomUUID()}` }], extension: [ext] };
}

t.test('a JSON body nested deeper than HMS_JSON_MAX_DEPTH is refused before it is parsed', async (t) => {
  const max = h.config.HMS_JSON_MAX_DEPTH;
  t.equal(max, 100, 'the default');
  const before = await patientRows();
  for (const type of ['application/fhir+json', 'application/json+fhir', 'application/json', 'application/fhir+json; charset=utf-8']) {
    for (const levels of [3000, 200_000]) {
      const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': type }, payload: deepPatient(levels) });
      t.equal(res.statusCode, 400, `${type}, ${levels} levels: 400`);
      t.equal(res.json().issue[0].code, 'structure');
      t.match(res.json().issue[0].diagnostics, /more than 100 levels deep: at most 100 are allowed \(HMS_JSON_MAX_DEPTH\)/);
    }
  }
  const fhirJson = { 'content-type': 'application/fhir+json' };
  const atLimit = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: fhirJson, payload: deepPatient(max - 1) });
  t.equal(atLimit.statusCode, 400, `${max} levels pass the depth check (and the validator refuses arrays in arrays)`);
  t.notMatch(atLimit.body, /HMS_JSON_MAX_DEPTH/);
  const overLimit = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: fhirJson, payload: deepPatient(max) });
  t.match(overLimit.json().issue[0].diagnostics, /HMS_JSON_MAX_DEPTH/, `${max + 1} levels do not`);
  t.equal(await patientRows(), before, 'nothing was stored');

  const deepest = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: nestedExtensions(47) });
  t.equal(deepest.statusCode, 201, 'a valid resource exactly 100 levels deep is stored');
  t.equal(await patientRows(), before + 1);
  const deeper = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: nestedExtensions(48) });
  t.equal(deeper.statusCode, 400, 'one 102 levels deep is not');
  t.equal(await patientRows(), before + 1);
});

t.test('brackets and quotes inside strings do not count', async (t) => {
  const family = `Q"[{${'['.repeat(150)}\\${randomUUID().slice(0, 8)}`;
  const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', name: [{ family: family.slice(0, 60) }], gender: 'other' } });
  t.equal(res.statusCode, 201, res.body.slice(0, 200));
  t.equal(res.json().name[0].family, family.slice(0, 60));
  t.equal(nestsDeeperThan('{"a":"\\"[[[[["}', 1), false, 'an escaped quote does not end the string');
  t.equal(nestsDeeperThan('{"a":"\\\\",[["x"]]}', 2), true, 'an escaped backslash does');
  t.equal(nestsDeeperThan('[[["]]]]]]]"]]]', 3), false);
  t.equal(nestsDeeperThan('[[["]]]]]]]"]]]', 2), true);
  t.equal(nestsDeeperThan('"unterminated [[[[', 1), false, 'malformed text is left to JSON.parse');
});

t.test('login, admin and the token endpoint take their bodies as before, and refuse deep ones', async (t) => {
  const { email } = await h.db('users').where({ id: h.userId }).first('email') as { email: string };
  const login = await h.app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: { email, password: 'correct horse battery' } });
  t.equal(login.statusCode, 200, 'a JSON login');
  t.type(login.json().access_token, 'string');
  const deep = `{"email":${'['.repeat(500)}${']'.repeat(500)},"password":"x"}`;
  const deepLogin = await h.app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: deep });
  t.equal(deepLogin.statusCode, 400);
  t.match(deepLogin.headers['content-type'], /^application\/fhir\+json/);
  t.equal(deepLogin.json().issue[0].code, 'structure');
  const deepAdmin = await h.fhir({ method: 'POST', url: '/admin/users', headers: { 'content-type': 'application/json' }, payload: deep });
  t.equal(deepAdmin.statusCode, 400);
  t.equal(deepAdmin.json().issue[0].code, 'structure');
  const list = await h.fhir({ method: 'GET', url: '/admin/users?limit=1' });
  t.equal(list.statusCode, 200, 'admin still answers');
  // RFC 6749 errors at the token endpoint, which parses forms (and refuses JSON, deep or not, without a 500)
  const form = await h.app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=password' });
  t.equal(form.statusCode, 400);
  t.equal(form.json().error, 'unsupported_grant_type', 'the form was parsed');
  const deepToken = await h.app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/json' }, payload: deep });
  t.equal(deepToken.statusCode, 400);
  t.equal(deepToken.json().error, 'invalid_request');
});

t.test('a hostile Host never breaks a link: the configured address stands in', async (t) => {
  const family = `Host-${randomUUID()}`;
  await makePatient(h, family);
  await makePatient(h, family);
  const own = `http://${h.config.HOST}:${h.config.PORT}`;
  const hostile = ['localhost:99999', 'localhost:0', 'a b', '[::1', '', 'example.org/evil', 'user@example.org', 'user:pw@example.org:80', '999.1.1.1', 'example.org:', 'xn--', '%2e'];
  for (const host of hostile) {
    await t.test(`Host: '${host}'`, async (t) => {
      t.notOk(validHostHeader(host));
      const res = await one(request('GET', `/fhir/Patient?family=${family}&_count=1`, { ...auth, host }));
      t.equal(res.status, 200, res.body.slice(0, 300));
      const bundle = JSON.parse(res.body) as { link: Array<{ relation: string; url: string }>; entry: Array<{ fullUrl: string }> };
      const next = bundle.link.find((l) => l.relation === 'next');
      t.ok(next, 'a next link');
      const url = new URL(next!.url);
      t.equal(url.origin, own, 'on the configured address');
      t.equal(url.pathname, '/fhir/Patient');
      t.ok(url.searchParams.get('_cursor'), 'with its cursor');
      t.ok(bundle.entry[0]!.fullUrl.startsWith(`${own}/fhir/Patient/`), 'fullUrl too');
      const second = await one(request('GET', `${url.pathname}${url.search}`, { ...auth, host }));
      t.equal(second.status, 200, 'the next page is served');
      t.equal((JSON.parse(second.body) as { entry: unknown[] }).entry.length, 1);
    });
  }
  await t.test('Location of a create, the CapabilityStatement and the SMART configuration', async (t) => {
    const body = JSON.stringify({ resourceType: 'Patient', name: [{ family }] });
    const created = await one(request('POST', '/fhir/Patient', { ...auth, host: 'a b', 'content-type': 'application/fhir+json' }, body));
    t.equal(created.status, 201);
    t.ok(created.headers.location?.startsWith(`${own}/fhir/Patient/`), 'Location on the configured address');
    const smart = await one(request('GET', '/fhir/.well-known/smart-configuration', { host: '[::1' }));
    t.equal(JSON.parse(smart.body).token_endpoint, `${own}/auth/token`);
    const meta = await one(request('GET', '/fhir/metadata', { host: 'localhost:99999' }));
    t.equal(meta.status, 200);
    t.equal(JSON.parse(meta.body).implementation.url, `${own}/fhir`);
  });
  await t.test('an HTTP/1.0 request without Host gets the configured address', async (t) => {
    const res = await one(`GET /fhir/Patient?family=${family}&_count=1 HTTP/1.0\r\nAuthorization: Bearer ${h.token}\r\n\r\n`);
    t.equal(res.status, 200);
    t.ok(new URL((JSON.parse(res.body) as { link: Array<{ url: string }> }).link[0]!.url).origin === own);
  });
  await t.test('a valid Host is used as given', async (t) => {
    for (const host of ['hms.example.org:8443', 'hms_api', '[::1]:8080', '10.0.0.7']) {
      const res = await one(request('GET', `/fhir/Patient?family=${family}&_count=1`, { ...auth, host }));
      t.equal(res.status, 200);
      const next = (JSON.parse(res.body) as { link: Array<{ relation: string; url: string }> }).link.find((l) => l.relation === 'next');
      t.equal(new URL(next!.url).host, new URL(`http://${host}`).host, host);
    }
  });
});

t.test('HMS_BASE_URL, when set, is the base of every link whatever the Host', async (t) => {
  const based: TestApp = await testApp(t, { HMS_BASE_URL: 'https://hms.example.org/fhir' });
  const family = `Base-${randomUUID()}`;
  await makePatient(based, family);
  await makePatient(based, family);
  const res = await based.fhir({ method: 'GET', url: `/fhir/Patient?family=${family}&_count=1`, headers: { host: 'a b' } });
  t.equal(res.statusCode, 200);
  t.match(res.json().link.find((l: { relation: string }) => l.relation === 'next').url, /^https:\/\/hms\.example\.org\/fhir\/Patient\?/);
});
