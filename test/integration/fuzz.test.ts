/**
 * Seeded fuzzing of the service (test/helpers/fuzz.ts makes the cases): mutated bodies of every
 * type the registry serves, hostile search values for every search parameter, odd headers, odd
 * paths, and a handful of raw-socket requests. It fails on any 5xx; on a 4xx that is not an
 * OperationOutcome in application/fhir+json (or a 2xx FHIR answer that is not FHIR JSON); on a
 * write that should not have happened (a refused request, or a read, that changed the data
 * tables: see `fingerprint`); on an invalid body that was accepted; and on an accepted body that
 * does not read back as the valid resource the server answered with.
 *
 * Deterministic for a seed: HMS_FUZZ_SEED (default DEFAULT_SEED), HMS_FUZZ_CASES (cases per
 * category), HMS_FUZZ_ONLY=body#17,search#3 (replay cases), HMS_FUZZ_REPORT=file.json (every
 * failure as JSON), HMS_FUZZ_TRACE=file (every case's label and answer, one JSON line each, for
 * tuning the generators). Every failure message carries the seed and the replay command.
 */
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { Knex } from 'knex';
import { testApp, type TestApp } from '../helpers/app.js';
import { bodies } from '../helpers/access-world.js';
import {
  Rng, ascii, baseBody, bodyCase, fhirProblems, fuzzCases, fuzzSeed, getAt, headerCase, injectWouldChange, kindsOf, pathCase, rawExchange, registryTypes,
  searchCase, socketCases, type FuzzWorld, type HttpCase, type SocketCase,
} from '../helpers/fuzz.js';
import { allResourceDefinitions } from '../../src/fhir/registry.js';
import { validateResource } from '../../src/fhir/validate.js';
import { dialectOf } from '../../src/db/dialect.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const seed = fuzzSeed();
const counts = fuzzCases();
const only = new Set((process.env.HMS_FUZZ_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean));
const selected = (id: string) => !only.size || only.has(id);
const replay = (id: string) => `HMS_FUZZ_SEED=${seed} HMS_FUZZ_ONLY=${id} npx tap test/integration/fuzz.test.ts`;
t.comment(`fuzz seed ${seed} (HMS_FUZZ_SEED), cases per category ${JSON.stringify(counts)} (HMS_FUZZ_CASES)`);

// rate limiting off: a long run (HMS_FUZZ_CASES) must not turn into 429s
const h = await testApp(t, { HMS_RATE_LIMIT: 0 });
await h.app.listen({ port: 0, host: '127.0.0.1' });
const port = (h.app.server.address() as AddressInfo).port;

// ---------------------------------------------------------------------------------------------
// The fingerprint of the data

/**
 * Bookkeeping a refusal may rightly write: the security log and its chain head, sessions (last
 * activity), login throttling, conditional-create locks, client tokens and assertions, break-glass
 * grants. Everything else the registry stores into is data.
 */
const BOOKKEEPING = new Set([
  'security_logs', 'audit_chain', 'user_sessions', 'login_attempts', 'conditional_locks', 'client_assertions', 'client_tokens', 'api_clients', 'break_glass_grants',
]);

/**
 * A cheap fingerprint of the data tables: per table the row count and, where the columns exist,
 * max(updated_at), sum(version_id), max(id) and the like, in one statement. The tables are every
 * table of the registry (minus the security log), the Observation sources, care team members, the
 * version history (resource_history), the search index and the assignment tables. A write that
 * goes through the write path moves at least one of these (a version, a timestamp, an id, a count).
 */
async function fingerprinter(db: Knex): Promise<{ take(): Promise<Map<string, string>>; tables: string[] }> {
  const tables = [...new Set([
    ...allResourceDefinitions().map((d) => d.table), 'vitals', 'lab_results', 'care_team_members', 'resource_history', 'search_string', 'search_token', 'search_date', 'search_number', 'search_quantity',
    'patient_assignments', 'patient_assignment_windows',
  ])].filter((name) => !BOOKKEEPING.has(name));
  const perTable: [string, string[]][] = [];
  for (const table of tables) {
    const cols = Object.keys(await db(table).columnInfo());
    if (!cols.length) throw new Error(`fingerprint: no table ${table}`);
    const aggregates = ['COUNT(*)'];
    const add = (col: string, fn: string) => { if (cols.includes(col)) aggregates.push(`${fn}(${col})`); };
    add('updated_at', 'MAX'); add('version_id', 'SUM'); add('id', 'MAX'); add('recorded_at', 'MAX');
    add('care_team_id', 'MAX'); add('source_id', 'MAX'); add('ends', 'MAX'); add('position', 'SUM');
    perTable.push([table, aggregates]);
  }
  // one statement: every table's aggregates as text, padded to the same number of columns
  const width = Math.max(...perTable.map(([, a]) => a.length));
  const selects = perTable.map(([table, aggregates]) => {
    const cols = Array.from({ length: width }, (_, i) => `CAST(${aggregates[i] ?? 'NULL'} AS CHAR) AS a${i}`);
    return `SELECT '${table}' AS t, ${cols.join(', ')} FROM ${table}`;
  });
  const sql = selects.join(' UNION ALL ');
  const rowsOf = (r: unknown): J[] => (dialectOf(db) === 'mysql' ? (r as J[][])[0]! : (r as J[]));
  return {
    tables,
    async take() {
      const rows = rowsOf(await db.raw(sql));
      return new Map(rows.map((r) => [String(r.t), Array.from({ length: width }, (_, i) => String(r[`a${i}`] ?? '')).join('|')]));
    },
  };
}

function fingerprintDiff(before: Map<string, string>, after: Map<string, string>): string | undefined {
  const changed = [...before].filter(([k, v]) => after.get(k) !== v).map(([k, v]) => `${k}: ${v} -> ${after.get(k)}`);
  return changed.length ? changed.join('; ') : undefined;
}

const fp = await fingerprinter(h.db);

// ---------------------------------------------------------------------------------------------
// The world: a doctor, patients, and one stored resource of every kind, made through the API

async function post(type: string, body: J): Promise<string> {
  const res = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: body });
  if (res.statusCode !== 201) throw new Error(`setup: ${type} create failed ${res.statusCode}: ${res.body.slice(0, 500)}`);
  return String(res.json().id);
}

async function buildWorld(h: TestApp, setupProblems: string[]): Promise<FuzzWorld> {
  const tag = randomUUID().slice(0, 8);
  const rng = new Rng(seed);
  const w: FuzzWorld = {
    tag, patient: '', otherPatient: '', doctor: '', encounter: '', targets: {}, victims: {}, family: `Fuzz${tag}`, types: registryTypes(),
  };
  w.doctor = await post('Practitioner', baseBody('Practitioner', w, 'doctor', rng));
  w.patient = await post('Patient', baseBody('Patient', w, 'patient', rng));
  w.otherPatient = await post('Patient', baseBody('Patient', w, 'other', rng));
  w.encounter = await post('Encounter', bodies.Encounter(w.patient, w.doctor));
  w.victims.Patient = await post('Patient', baseBody('Patient', w, 'victim', rng));
  for (const info of w.types) {
    for (const kind of kindsOf(info.type)) {
      const body = baseBody(kind, w, 'put', rng);
      // the oracle's self-check: every base body is valid FHIR, and the server takes it
      const problems = fhirProblems(body);
      if (problems.length) setupProblems.push(`the base body of ${kind} is not valid FHIR R4: ${problems.join('; ')}`);
      if (!info.creatable) continue;
      if (kind === 'Patient') { w.targets[kind] = await post('Patient', baseBody('Patient', w, 'target', rng)); continue; }
      w.targets[kind] = await post(info.type, body);
    }
    if (info.creatable) w.victims[info.type] ??= w.targets[kindsOf(info.type)[0]!]!;
  }
  const first = async (url: string) => String(((await h.fhir({ method: 'GET', url })).json() as J).entry?.[0]?.resource?.id ?? '');
  w.victims.ServiceRequest = await first(`/fhir/ServiceRequest?patient=${w.patient}&_count=1`);
  w.victims.PractitionerRole = w.doctor;
  w.victims.AuditEvent = await first(`/fhir/AuditEvent?patient=${w.patient}&_count=1`);
  for (const info of w.types) if (info.creatable && !w.targets[kindsOf(info.type)[0]!]) setupProblems.push(`no base body for the writable type ${info.type}: add one to baseBody()`);
  return w;
}

const setupProblems: string[] = [];
const world = await buildWorld(h, setupProblems);
{
  // the fingerprint's self-check: it sees a create and a delete, and nothing when nothing is written
  const before = await fp.take();
  if (fingerprintDiff(before, await fp.take())) setupProblems.push('the fingerprint changes with nothing written');
  const id = await post('Patient', baseBody('Patient', world, 'fingerprint', new Rng(seed)));
  const created = await fp.take();
  if (!fingerprintDiff(before, created)) setupProblems.push('the fingerprint does not see a create');
  await h.fhir({ method: 'DELETE', url: `/fhir/Patient/${id}` });
  if (!fingerprintDiff(created, await fp.take())) setupProblems.push('the fingerprint does not see a delete');
}

t.test('the base bodies are valid FHIR R4 and accepted, and the fingerprint sees writes', async (t) => {
  t.same(setupProblems, []);
});

// ---------------------------------------------------------------------------------------------
// Checks of one answer

interface Answer { status: number; headers: Record<string, string | string[] | number | undefined>; body: string }
interface Failure { id: string; label: string; klass: string; message: string; details: string }

const ctypeOf = (a: Answer) => String(a.headers['content-type'] ?? '');
const isFhirJson = (a: Answer) => /^application\/fhir\+json(;|$)/.test(ctypeOf(a));
const parse = (s: string): unknown => { try { return JSON.parse(s); } catch { return undefined; } };
const show = (s: string | Buffer | undefined, n = 200) => {
  const text = s === undefined ? '' : Buffer.isBuffer(s) ? s.toString('utf8') : s;
  return ascii(text.length > n ? `${JSON.stringify(text.slice(0, n))}...(${text.length} chars)` : JSON.stringify(text));
};

/**
 * The contract of every answer's status and body, as problems [code, text]. `protocol`: a request
 * HTTP itself cannot carry (raw sockets), where 501 (an unknown method, RFC 9110 9.1) and 505 (an
 * unsupported HTTP version) are the prescribed answers, not server failures; they must still be
 * OperationOutcomes.
 */
function answerProblems(a: Answer, method: string, fhirPath: boolean, protocol = false): [string, string][] {
  const out: [string, string][] = [];
  const prescribed = protocol && (a.status === 501 || a.status === 505);
  if (a.status >= 500 && !prescribed) out.push(['server-error', `answered ${a.status}: ${show(a.body, 300)}`]);
  if ((a.status >= 400 && a.status < 500) || prescribed) {
    const body = parse(a.body) as J | undefined;
    if (method === 'HEAD') {
      // no body by definition: the content type still says what a GET would have answered
      if (!isFhirJson(a)) out.push(['not-outcome', `a ${a.status} to HEAD in '${ctypeOf(a) || 'no content type'}', not application/fhir+json`]);
    } else if (!isFhirJson(a)) out.push(['not-outcome', `a ${a.status} in '${ctypeOf(a) || 'no content type'}', not application/fhir+json: ${show(a.body, 120)}`]);
    else if (body?.resourceType !== 'OperationOutcome' || !Array.isArray(body.issue) || !body.issue.length || !body.issue.every((i: J) => i.severity && i.code)) {
      out.push(['not-outcome', `a ${a.status} that is not an OperationOutcome with issues: ${show(a.body, 120)}`]);
    }
  }
  if (a.status >= 200 && a.status < 300 && fhirPath && method !== 'HEAD' && a.status !== 204 && a.body !== '') {
    const body = parse(a.body) as J | undefined;
    if (!isFhirJson(a) || typeof body?.resourceType !== 'string') out.push(['not-fhir-json', `a ${a.status} FHIR answer that is not FHIR JSON ('${ctypeOf(a)}'): ${show(a.body, 120)}`]);
  }
  return out;
}

/** JSON equality: numbers by value (-0 is 0, as JSON has it), everything else deeply and strictly. */
const jsonEqual = (a: unknown, b: unknown): boolean => (typeof a === 'number' && typeof b === 'number' ? a === b : isDeepStrictEqual(a, b));

/** The first path where two JSON values differ. */
function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (typeof a === 'number' && typeof b === 'number' && a === b) return undefined;
  if (isDeepStrictEqual(a, b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference((a as J)[k], (b as J)[k], `${path}${Array.isArray(a) ? `[${k}]` : `.${k}`}`);
      if (d) return d;
    }
  }
  return `${path || '(root)'}: ${JSON.stringify(a)?.slice(0, 80)} vs ${JSON.stringify(b)?.slice(0, 80)}`;
}

const WRITES = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
const changesData = (c: HttpCase) => WRITES.has(c.method) && !/\/_search(\?|$)/.test(c.url) && !c.url.includes('$everything');

async function send(c: HttpCase): Promise<Answer> {
  const auth: Record<string, string> = c.ownAuth ? {} : { authorization: `Bearer ${h.token}` };
  if (!c.tcp) {
    const res = await h.app.inject({ method: c.method as 'GET', url: c.url, headers: { ...auth, ...c.headers }, payload: c.body });
    return { status: res.statusCode, headers: res.headers, body: res.body };
  }
  const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...auth, ...c.headers, connection: 'close' };
  const body = c.body === undefined ? undefined : Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body);
  if (body) headers['content-length'] = String(body.length);
  const head = `${c.method} ${c.url} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  const res = await rawExchange(port, body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1'));
  if (typeof res === 'string') return { status: 0, headers: {}, body: res };
  return res;
}

/** Reads an accepted write back: valid, equal to the answer, the sent value kept; then removes what it created. */
async function readBack(c: HttpCase, a: Answer): Promise<[string, string][]> {
  const out: [string, string][] = [];
  const type = c.write!.type;
  const answer = parse(a.body) as J | undefined;
  const location = String(a.headers.location ?? a.headers['content-location'] ?? '');
  const id = answer?.resourceType === type ? String(answer.id) : /\/fhir\/[A-Za-z]+\/([^/]+)/.exec(location)?.[1] ?? c.write!.id;
  if (!id) return [['readback-failed', `a ${a.status} without the resource or a Location to read it back`]];
  // '.' and '..' match the R4 id pattern but are dot segments: no URL a client resolves (RFC 3986 5.2.4) reaches them
  if (id === '.' || id === '..') out.push(['unaddressable-id', `created ${type} with the id '${id}', which HTTP clients resolve away (RFC 3986 dot segments)`]);
  const url = `/fhir/${type}/${encodeURIComponent(id)}`;
  const res = await send({ ...c, method: 'GET', url, headers: {}, body: undefined, ownAuth: false, tcp: c.tcp || injectWouldChange(url) });
  if (res.status !== 200) return [...out, ['readback-failed', `reading ${type}/${id} back answered ${res.status}: ${show(res.body, 150)}`]];
  const stored = JSON.parse(res.body) as J;
  try { validateResource(type, stored); } catch (err) { out.push(['readback-invalid', `reads back invalid (validateResource): ${show(JSON.stringify((err as J).issues ?? (err as Error).message), 200)}`]); }
  const problems = fhirProblems(stored);
  if (problems.length) out.push(['readback-invalid', `reads back as invalid FHIR: ${problems.slice(0, 3).join('; ')}`]);
  if (answer?.resourceType === type) {
    const d = firstDifference(answer, stored);
    if (d) out.push(['readback-differs', `the re-read differs from the answer at ${d}`]);
  }
  if (c.sent && answer?.resourceType === type && !jsonEqual(getAt(stored, c.sent.path), c.sent.value)) {
    out.push(['value-changed', `stored ${JSON.stringify(getAt(stored, c.sent.path))?.slice(0, 80)} where ${JSON.stringify(c.sent.value)?.slice(0, 80)} was sent`]);
  }
  // keep the world as it was: remove what the case created (not the stored targets it updated)
  if (a.status === 201 && !Object.values(world.targets).includes(id) && !Object.values(world.victims).includes(id)) {
    const del = await send({ ...c, method: 'DELETE', url, headers: {}, body: undefined, ownAuth: false, tcp: c.tcp || injectWouldChange(url) });
    if (del.status >= 500) out.push(['server-error', `deleting the created ${type}/${id} answered ${del.status}`]);
  }
  return out;
}

async function followNext(c: HttpCase, a: Answer): Promise<[string, string][]> {
  const bundle = parse(a.body) as J | undefined;
  const next = (bundle?.link as J[] | undefined)?.find((l) => l.relation === 'next')?.url as string | undefined;
  if (!next) return [];
  let target: string;
  try {
    const u = new URL(next);
    target = u.pathname + u.search;
  } catch {
    return [['next-link', `the next link is not a URL: ${show(next, 150)}`]];
  }
  const { 'content-type': _ct, ...headers } = c.headers;
  const res = await h.app.inject({ method: 'GET', url: target, headers: { authorization: `Bearer ${h.token}`, ...headers } });
  const out = answerProblems({ status: res.statusCode, headers: res.headers, body: res.body }, 'GET', true).map(([k, v]): [string, string] => [k, `following the next link: ${v}`]);
  if (res.statusCode >= 400 && res.statusCode < 500) out.push(['next-link', `the server's own next link answered ${res.statusCode}: ${show(res.body, 150)}`]);
  return out;
}

/** Runs one HTTP case; its problems (empty: it passed). */
async function runHttp(c: HttpCase): Promise<{ problems: [string, string][]; answer: Answer }> {
  const before = await fp.take();
  const a = await send(c);
  const problems: [string, string][] = [];
  if (a.status === 0) problems.push(['no-answer', `no answer over TCP (${a.body})`]);
  problems.push(...answerProblems(a, c.method, c.url.startsWith('/fhir')));
  const ok = a.status >= 200 && a.status < 300;
  if (ok && c.expect === 'refuse') problems.unshift(['accepted-invalid', `answered ${a.status} but must refuse it: ${c.why ?? '(invalid)'}`]);
  if (!ok || !changesData(c)) {
    const diff = fingerprintDiff(before, await fp.take());
    if (diff) problems.unshift([ok ? 'read-wrote' : 'wrote-on-refusal', `${ok ? 'a read' : `a refused request (${a.status})`} changed the data: ${diff}`]);
  }
  if (ok && c.write && (c.method === 'POST' || c.method === 'PUT') && !c.url.includes('/_search')) problems.push(...(await readBack(c, a)));
  if (ok && c.followNext) problems.push(...(await followNext(c, a)));
  return { problems, answer: a };
}

async function runSocket(c: SocketCase): Promise<{ problems: [string, string][]; answer: Answer }> {
  const before = await fp.take();
  const raw = c.raw.replaceAll('{TOKEN}', h.token).replaceAll('{HOST}', `127.0.0.1:${port}`);
  const res = await rawExchange(port, Buffer.from(raw, 'utf8'), 5_000);
  const problems: [string, string][] = [];
  const a: Answer = typeof res === 'string' ? { status: 0, headers: {}, body: res } : res;
  if (typeof res === 'string' && !c.mayClose) problems.push(['no-answer', `no HTTP answer (${res})`]);
  problems.push(...answerProblems(a, 'GET', true, true));
  const ok = a.status >= 200 && a.status < 300;
  const diff = fingerprintDiff(before, await fp.take());
  if (diff && !ok) problems.unshift(['wrote-on-refusal', `a refused request (${a.status}) changed the data: ${diff}`]);
  if (ok && a.status === 201) {
    const id = /\/fhir\/Patient\/([^/]+)/.exec(String(a.headers.location ?? ''))?.[1];
    if (id) await h.app.inject({ method: 'DELETE', url: `/fhir/Patient/${id}`, headers: { authorization: `Bearer ${h.token}` } });
  }
  return { problems, answer: a };
}

function failureOf(c: HttpCase | SocketCase, problems: [string, string][], a: Answer): Failure {
  const [code] = problems[0]!;
  const request = 'raw' in c
    ? `raw bytes ${show(c.raw.replace(/Bearer [^\r]+/, 'Bearer <token>'), 200)}`
    : `${c.method} ${c.url.length > 200 ? `${c.url.slice(0, 200)}...(${c.url.length} chars)` : c.url}${c.tcp ? ' (over TCP)' : ''}`
      + `${Object.keys(c.headers).length ? `\n  headers: ${show(JSON.stringify(c.headers), 200)}` : ''}${c.body !== undefined ? `\n  body: ${show(c.body)}` : ''}`;
  const message = ascii(`[fuzz seed=${seed} case=${c.id}] ${c.label}: ${problems[0]![1].slice(0, 160)}`);
  const details = [
    `seed ${seed}, case ${c.id}: ${c.label}`,
    `request: ${request}`,
    ...problems.map(([k, v]) => `wrong (${k}): ${v}`),
    `answer: ${a.status} ${ctypeOf(a)} ${show(a.body, 200)}`,
    `replay: ${replay(c.id)}`,
  ].join('\n').replaceAll(h.token, '<admin token>');
  return { id: c.id, label: c.label, klass: `${code} | ${c.op} | ${a.status}`, message: message.replaceAll(h.token, '<admin token>'), details };
}

const report: Failure[] = [];
const trace: { id: string; label: string; status: number; diagnostics: string }[] = [];

/** Runs a category's cases and reports its failures grouped by class (the first example of each in full). */
async function runCategory(t: Test, name: string, cases: (HttpCase | SocketCase)[]): Promise<void> {
  const started = process.hrtime.bigint();
  const failures: Failure[] = [];
  const statuses = new Map<number, number>();
  for (const c of cases) {
    if (!selected(c.id)) continue;
    const { problems, answer } = c.category === 'socket' ? await runSocket(c as SocketCase) : await runHttp(c as HttpCase);
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    trace.push({ id: c.id, label: c.label.slice(0, 200), status: answer.status, diagnostics: String((parse(answer.body) as J | undefined)?.issue?.[0]?.diagnostics ?? '').slice(0, 200) });
    if (problems.length) failures.push(failureOf(c, problems, answer));
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const classes = new Map<string, Failure[]>();
  for (const f of failures) classes.set(f.klass, [...(classes.get(f.klass) ?? []), f]);
  for (const [klass, list] of classes) {
    const others = list.slice(1, 11).map((f) => `${f.id} (${f.label.slice(0, 60)})`);
    const cases = `${list.length} case(s)${others.length ? `; also ${others.join(', ')}${list.length > 11 ? ' ...' : ''}` : ''}`;
    t.fail(list[0]!.message, { fuzz: `${list[0]!.details}\nclass: ${klass}: ${cases}`, stack: '' });
  }
  report.push(...failures);
  t.comment(`${name}: ${cases.filter((c) => selected(c.id)).length} cases in ${(ms / 1000).toFixed(1)} s, ${failures.length} failing in ${classes.size} classes (seed ${seed}); answers ${[...statuses].sort(([a], [b]) => a - b).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  if (!failures.length) t.pass(`${name}: no failures (seed ${seed})`);
}

/** The case indices of a category: HMS_FUZZ_ONLY's when it names any of the category, else 0 .. n-1. */
const indices = (category: string, n: number): number[] => {
  const named = [...only].filter((id) => id.startsWith(`${category}#`)).map((id) => Number(id.split('#')[1]));
  return only.size ? named : Array.from({ length: n }, (_, i) => i);
};

t.test('bodies: mutated POST and PUT bodies of every type', async (t) => {
  await runCategory(t, 'bodies', indices('body', counts.body).map((i) => bodyCase(seed, i, world)));
});

t.test('search: hostile values for every search parameter', async (t) => {
  await runCategory(t, 'search', indices('search', counts.search).map((i) => searchCase(seed, i, world)));
});

t.test('headers: odd Host, Accept, Content-Type, If-Match, If-None-Exist, Prefer, Authorization', async (t) => {
  await runCategory(t, 'headers', indices('header', counts.header).map((i) => headerCase(seed, i, world, h.token)));
});

t.test('paths: unknown types, odd ids, dot segments, encoded slashes, _history, operations', async (t) => {
  await runCategory(t, 'paths', indices('path', counts.path).map((i) => pathCase(seed, i, world)));
});

t.test('sockets: requests only a real socket can send', async (t) => {
  await runCategory(t, 'sockets', socketCases(seed));
});

t.teardown(() => {
  if (process.env.HMS_FUZZ_REPORT) writeFileSync(process.env.HMS_FUZZ_REPORT, JSON.stringify({ seed, counts, failures: report }, null, 2));
  if (process.env.HMS_FUZZ_TRACE) writeFileSync(process.env.HMS_FUZZ_TRACE, trace.map((x) => JSON.stringify(x)).join('\n'));
});
