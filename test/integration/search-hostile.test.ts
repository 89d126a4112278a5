/**
 * Hostile search input ("no 500, every refusal an OperationOutcome"): values over
 * HMS_SEARCH_MAX_VALUE_LENGTH, odd values within it (NUL, LIKE wildcards, broken UTF-8, absurd
 * dates and numbers, malformed references), and parameters repeated far beyond the default
 * bound, whose SQL must stay cheap to plan. Real app, real database (MariaDB with DATABASE_URL).
 */
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp, type TestApp } from '../helpers/app.js';
import { makeClinician } from '../helpers/world.js';

type Res = Awaited<ReturnType<TestApp['fhir']>>;
interface Entry { resource: { resourceType: string; id: string }; search: { mode: string } }

const h = await testApp(t);
const run = randomUUID().slice(0, 8);

/** GET /fhir/<type>?<query>. */
const get = (app: TestApp, type: string, query: string): Promise<Res> => app.fhir({ method: 'GET', url: `/fhir/${type}?${query}` });

/** POST /fhir/<type>/_search with the query as its form body. */
const post = (app: TestApp, type: string, query: string): Promise<Res> => app.fhir({
  method: 'POST', url: `/fhir/${type}/_search`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: query,
});

/** The ids of a searchset's matches, sorted. */
const matchIds = (res: Res): string[] => ((res.json().entry ?? []) as Entry[]).filter((e) => e.search.mode === 'match').map((e) => e.resource.id).sort();

/** Asserts an answer is no server error: a 200 Bundle or a 4xx OperationOutcome, in FHIR JSON. */
function assertNoServerError(t: Test, res: Res, what: string): void {
  t.ok(res.statusCode < 500, `${what}: ${res.statusCode} ${res.statusCode >= 500 ? res.body.slice(0, 300) : ''}`);
  t.match(String(res.headers['content-type']), /^application\/fhir\+json/, `${what}: FHIR JSON`);
  t.equal(res.json().resourceType, res.statusCode === 200 ? 'Bundle' : 'OperationOutcome', `${what}: ${res.statusCode === 200 ? 'a Bundle' : 'an OperationOutcome'}`);
}

/** Asserts a 400 OperationOutcome with `code` whose diagnostics match `diagnostics`. */
function assertRefused(t: Test, res: Res, code: string, diagnostics: RegExp, what: string): void {
  t.equal(res.statusCode, 400, `${what}: 400${res.statusCode === 400 ? '' : `, got ${res.statusCode}: ${res.body.slice(0, 300)}`}`);
  t.match(String(res.headers['content-type']), /^application\/fhir\+json/);
  const body = res.json();
  t.equal(body.resourceType, 'OperationOutcome');
  t.equal(body.issue?.[0]?.code, code, `${what}: code ${code}`);
  t.match(body.issue?.[0]?.diagnostics, diagnostics, what);
}

/** Creates a Patient through the API and returns its id. */
async function patient(app: TestApp, body: Record<string, unknown>): Promise<string> {
  const res = await app.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', gender: 'female', birthDate: '1970-01-01', ...body } });
  if (res.statusCode !== 201) throw new Error(`patient create failed: ${res.body}`);
  return res.json().id as string;
}

/** Creates a heart rate Observation of a patient and returns its id. */
async function heartRate(app: TestApp, patientId: string, value: number): Promise<string> {
  const res = await app.fhir({
    method: 'POST', url: '/fhir/Observation', payload: {
      resourceType: 'Observation', status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${patientId}` },
      effectiveDateTime: '2020-05-01T10:00:00Z', valueQuantity: { value, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
    },
  });
  if (res.statusCode !== 201) throw new Error(`observation create failed: ${res.body}`);
  return res.json().id as string;
}

/** `name=value(1)&name=value(2)...`, each value URL-encoded. */
const repeated = (name: string, n: number, value: (i: number) => string): string =>
  Array.from({ length: n }, (_, i) => `${name}=${encodeURIComponent(value(i + 1))}`).join('&');

t.test('a value longer than HMS_SEARCH_MAX_VALUE_LENGTH is a 400 naming the parameter and the variable, for every kind of parameter', async (t) => {
  const long = 'x'.repeat(2049);
  const cases: [string, string, string][] = [
    ['Patient', 'family', long], ['Patient', 'family:exact', long], ['Patient', 'family:contains', long], ['Patient', 'family:missing', long],
    ['Patient', 'identifier', `urn:x|${long}`], ['Patient', 'identifier', `${long}|${long}`], ['Patient', 'general-practitioner', `Practitioner/${long}`],
    ['Patient', 'birthdate', `ge${long}`], ['Patient', '_id', long], ['Patient', '_lastUpdated', long], ['Patient', 'gender', long],
    ['Patient', '_sort', long], ['Patient', '_include', `Patient:${long}`], ['Patient', '_elements', long], ['Patient', '_count', long],
    ['Patient', '_has:Observation:patient:code', long], ['Patient', 'no-such-parameter', long],
    ['Observation', 'subject', long], ['Observation', 'subject.name', long], ['Observation', 'subject:Patient.identifier', long],
    ['Observation', 'value-quantity', `gt5|http://unitsofmeasure.org|${long}`], ['Observation', 'code:not', long],
    ['Appointment', 'priority', long], ['AuditEvent', 'address', long],
  ];
  for (const [type, name, value] of cases) {
    const query = `${name}=${encodeURIComponent(value)}`;
    for (const [how, send] of [['GET', get], ['POST', post]] as const) {
      const res = await send(h, type, query);
      const what = `${how} ${type}?${name}=<${value.length} characters>`;
      assertRefused(t, res, 'too-costly', new RegExp(`'${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' has \\d+ characters: at most 2048 .*HMS_SEARCH_MAX_VALUE_LENGTH`), what);
      t.notMatch(res.body, 'x'.repeat(64), `${what}: the value is not echoed`);
    }
  }
});

t.test('the value bound counts each comma-separated value alone, in characters, and parameter names are bounded too', async (t) => {
  const max = 'y'.repeat(2048);
  t.equal((await get(h, 'Patient', `family=${max},${max},${max}`)).statusCode, 200, 'three values of 2048 characters each');
  t.equal((await get(h, 'Patient', `family=${max}%5C,${max}`)).statusCode, 400, 'an escaped comma does not split a value');
  const emoji = '\u{1F600}'.repeat(2048); // 4096 UTF-16 units, 2048 characters
  t.equal((await get(h, 'Patient', `family=${encodeURIComponent(emoji)}`)).statusCode, 200, '2048 characters outside the BMP');
  assertRefused(t, await get(h, 'Patient', `family=${encodeURIComponent(emoji + '\u{1F600}')}`), 'too-costly', /has 2049 characters/, '2049 characters outside the BMP');
  assertRefused(t, await get(h, 'Patient', `${'n'.repeat(300)}=1`), 'too-costly', /A search parameter name has 300 characters: at most 256/, 'a long name');
  t.notMatch((await get(h, 'Patient', `${'n'.repeat(300)}=1`)).body, 'n'.repeat(64), 'the name is not echoed');
  const cursor = Buffer.from(JSON.stringify(['n', 'z'.repeat(4000), 'id'])).toString('base64url');
  assertRefused(t, await get(h, 'Patient', `_cursor=${cursor}`), 'invalid', /Invalid or stale _cursor/, 'a cursor is the server\'s own value: not bounded, but checked');
});

t.test('the original report: POST _search family=<50,001 characters> is a 400, not a 500', async (t) => {
  const res = await post(h, 'Patient', `family=${'a'.repeat(50_001)}`);
  assertRefused(t, res, 'too-costly', /'family' has 50001 characters: at most 2048 are allowed in one value \(HMS_SEARCH_MAX_VALUE_LENGTH\)/, 'POST family=50001');
});

t.test('with the bound raised to its maximum, values SQLite could not LIKE-match are answered', async (t) => {
  const big = await testApp(t, { HMS_SEARCH_MAX_VALUE_LENGTH: 100_000 });
  const doc = String((await big.app.inject({ method: 'GET', url: '/fhir/metadata' })).json().rest[0].documentation);
  t.match(doc, /100000 characters per value \(each comma-separated value counted alone\) and 256 per parameter name/, 'the CapabilityStatement states the bound the server runs with');
  t.match(String((await h.app.inject({ method: 'GET', url: '/fhir/metadata' })).json().rest[0].documentation), /2048 characters per value/, 'and the default');
  const text = `Longname${run}`;
  const id = await patient(big, { name: [{ family: `Long${run}`, text: text + 'q'.repeat(300) }] });
  const longer = text + 'q'.repeat(60_000);
  // the index keeps a value's first 255 characters: a longer starts-with value matches by them
  t.same(matchIds(await post(big, 'Patient', `name=${longer}`)), [id], 'name=<60,016 characters> starts-with-matches by the indexed prefix');
  t.same(matchIds(await post(big, 'Patient', `name:contains=${longer}`)), [], ':contains of a value longer than any indexed one matches nothing');
  t.same(matchIds(await post(big, 'Patient', `name:exact=${longer}`)), [], ':exact');
  t.same(matchIds(await post(big, 'Patient', `name=${'%25'.repeat(30_000)}`)), [], '30,000 escaped % (a 60,000-byte pattern)');
  for (const query of [`address=${'1'.repeat(60_000)}`, `address:contains=${'_'.repeat(60_000)}`, `address:exact=${'2'.repeat(60_000)}`]) {
    const res = await post(big, 'AuditEvent', query);
    t.equal(res.statusCode, 200, `AuditEvent?${query.slice(0, 20)}... (a column LIKE of 60,000 characters)`);
    t.same(matchIds(res), []);
  }
});

t.test('odd values within the bound: a 4xx OperationOutcome or a correct 200, never a 500', async (t) => {
  const tag = `urn:hostile:${run}`;
  const families = { pct: `Hx${run}%a_b\\c!d`, z: `Hx${run}za_b\\c!d`, x: `Hx${run}%aXb\\c!d` };
  const ids: Record<keyof typeof families, string> = { pct: '', z: '', x: '' };
  for (const key of Object.keys(families) as (keyof typeof families)[]) {
    ids[key] = await patient(h, { identifier: [{ system: tag, value: key }], name: [{ family: families[key] }] });
  }
  const obs72 = await heartRate(h, ids.pct, 72);
  const scope = `identifier=${encodeURIComponent(`${tag}|`)}`;
  const f = (s: string): string => encodeURIComponent(s);

  t.test('LIKE wildcards and the escape characters are literal', async (t) => {
    const expect: [string, string[]][] = [
      [`family=${f(`Hx${run}%`)}`, [ids.pct, ids.x]], // a raw % would match the z one too
      [`family=${f(`Hx${run}%a_`)}`, [ids.pct]], // a raw _ would match the X one too
      [`family=${f(`Hx${run}%a_b\\`)}`, [ids.pct]], // a backslash is no escape, in SQL or in the search value
      [`family=${f(`Hx${run}%a_b\\c!`)}`, [ids.pct]], // ! is HMS's LIKE escape: escaped itself
      [`family:contains=${f('a_b\\c!d')}`, [ids.pct, ids.z]],
      [`family:contains=${f('%')}`, [ids.pct, ids.x]],
      [`family:exact=${f(families.pct)}`, [ids.pct]],
      [`family=${f('%')}`, []], [`family=${f('_')}`, []], [`family=${f('!')}`, []], [`family=${f('\\')}`, []],
    ];
    for (const [query, want] of expect) {
      for (const [how, send] of [['GET', get], ['POST', post]] as const) {
        const res = await send(h, 'Patient', `${scope}&${query}`);
        t.equal(res.statusCode, 200, `${how} ${query}`);
        t.same(matchIds(res), [...want].sort(), `${how} ${query}`);
      }
    }
  });

  t.test('numbers and quantities: exact precision, no range left, out of range', async (t) => {
    const at = (q: string) => get(h, 'Observation', `subject=Patient/${ids.pct}&${q}`);
    t.same(matchIds(await at(`value-quantity=72.${'0'.repeat(400)}`)), [obs72], 'eq with a precision finer than a double holds');
    t.same(matchIds(await at(`value-quantity=ne72.${'0'.repeat(400)}`)), [], 'ne with it');
    t.same(matchIds(await at('value-quantity=72||')), [obs72], '72|| (no unit: any unit)');
    t.same(matchIds(await at('value-quantity=gt-0')), [obs72], '-0');
    t.same(matchIds(await at('value-quantity=1e-400')), [], '1e-400');
  });

  // [type, query, expected status]: 200 answers are also checked for being searchsets
  const odd: [string, string, number][] = [
    ['Patient', 'family=%00', 400], ['Patient', 'family=ab%00cd', 400], ['Patient', 'family:exact=%00', 400], ['Patient', 'identifier=urn:x%7C%00', 400],
    ['Patient', '_id=%00', 400], ['Patient', '_sort=%00', 400], ['Patient', 'fam%00ily=x', 400], ['Patient', 'family=%1F', 400],
    ['Patient', 'family=%ED%A0%80', 200], ['Patient', 'family=%ED%A0%80%ED%B0%80', 200], ['Patient', 'family=%E2%82', 200], ['Patient', 'family=%C0%AF', 200],
    ['Patient', 'family=%09tab', 200], ['Patient', 'family=%F0%9F%98%80', 200], ['Patient', `family=${'%F0%9F%98%80'.repeat(2000)}`, 200],
    ['Patient', `identifier=${'a|'.repeat(1000)}`, 200], ['Patient', `identifier=${'%7C'.repeat(2000)}`, 200], ['Patient', 'identifier=%7C', 200],
    ['Patient', `identifier=${'%5C%7C'.repeat(1000)}`, 200], ['Patient', `identifier=${'%5C'.repeat(2048)}`, 200], ['Patient', 'identifier=%25%5F', 200],
    ['Patient', 'birthdate=ge99999-99-99', 400], ['Patient', 'birthdate=2020-02-30', 400], ['Patient', 'birthdate=ge1970-01-01T25:00', 400],
    ['Patient', 'birthdate=ge0000', 200], ['Patient', 'birthdate=lt0001-01-01', 200], ['Patient', 'birthdate=ap9999', 200], ['Patient', 'birthdate=sa9999-12-31', 200],
    ['Patient', 'birthdate=9999-12-31T23:59:59.999999999%2B14:00', 200], ['Patient', '_lastUpdated=gt9999-12-31T23:59:59Z', 200], ['Patient', 'birthdate=eb0001', 200],
    ['Observation', 'value-quantity=1e309', 400], ['Observation', 'value-quantity=NaN', 400], ['Observation', 'value-quantity=Infinity', 400],
    ['Observation', 'value-quantity=-0', 200], ['Observation', 'value-quantity=5|', 400], ['Observation', 'value-quantity=5|||', 400],
    ['Observation', 'value-quantity=5||', 200], ['Observation', 'value-quantity=ap0', 200], ['Observation', `value-quantity=${'9'.repeat(2000)}`, 400],
    ['Appointment', 'priority=1e-400', 200], ['Appointment', 'priority=-0', 200], ['Appointment', 'priority=%2B1', 200],
    ['Patient', 'general-practitioner=Practitioner/../x', 400], ['Patient', 'general-practitioner=../x', 400], ['Patient', 'general-practitioner=Practitioner/', 400],
    ['Observation', 'subject=Patient/../x', 400], ['Observation', 'subject=Patient/Patient/../x', 400], ['Observation', 'subject=a%20b', 200],
    ['Observation', 'subject=http://other.example/fhir/Patient/1/_history/2', 200], ['Observation', 'subject=%25', 200],
    ['Observation', 'subject.name=%25_', 200], ['Observation', 'subject.name=%00', 400], ['Observation', 'subject:Patient.birthdate=ge99999', 400],
    ['Observation', 'subject.nosuch=x', 200], ['Observation', 'code:not=%25', 200], ['Observation', 'code:text=x', 400],
    ['Patient', '_id=%25', 200], ['Patient', `_id=${'z'.repeat(2048)}`, 200], ['Patient', '_sort=-,--,', 200], ['Patient', '_include=Patient:%25', 200],
    ['Patient', '_count=99999999999999999999', 200], ['Patient', '_count=-1', 400], ['Patient', '_cursor=%25%25', 400], ['Patient', '_elements=%25,,', 200],
    ['Patient', '_has:Observation:patient:code=1234', 200], ['Patient', '_profile=http://example.org/x', 200], ['Patient', 'family:missing=maybe', 400],
    ['Patient', 'family:nosuch=x', 400], ['Patient', 'gender=%25', 200], ['AuditEvent', 'address=%25', 200], ['AuditEvent', 'entity=Patient/../x', 400],
    ['AuditEvent', 'entity.identifier=x', 200], ['Invoice', 'totalgross=5|urn:iso:std:iso:4217|', 200],
  ];
  t.test('a table of odd values on every parameter kind, GET and POST', async (t) => {
    for (const [type, query, status] of odd) {
      for (const [how, send] of [['GET', get], ['POST', post]] as const) {
        const res = await send(h, type, query);
        const what = `${how} ${type}?${query.slice(0, 80)}`;
        assertNoServerError(t, res, what);
        t.equal(res.statusCode, status, what);
      }
    }
    assertRefused(t, await get(h, 'Patient', 'family=ab%00cd'), 'invalid', /'family' holds the character U\+0000/, 'a NUL is named, not echoed');
    assertRefused(t, await get(h, 'Observation', 'subject=Patient/../x'), 'invalid', /Invalid reference .*use id, Type\/id or a URL/, 'a malformed reference');
    assertRefused(t, await h.fhir({ method: 'GET', url: '/fhir/Patient?_has:Observation:patient:code=1', headers: { prefer: 'handling=strict' } }), 'invalid', /Unknown search parameter '_has'/, '_has is not supported (strict)');
  });
});

t.test('repeated parameters: 100 repetitions answer correctly within a 3 s statement limit', async (t) => {
  const r = await testApp(t, { HMS_SEARCH_MAX_REPEATS: 100, HMS_SEARCH_MAX_PARAMS: 200, HMS_STATEMENT_TIMEOUT: 3 });
  const tag = `urn:repeat:${run}`;
  const N = 100;
  const codes = (n: number, from = 1): { system: string; value: string }[] => Array.from({ length: n }, (_, i) => ({ system: tag, value: String(from + i) }));
  const given = (i: number): string => `Rq${run}n${i}x`;
  const gps = await Promise.all(Array.from({ length: N }, (_, i) => makeClinician(r, 'doctor', { email: `gp${i + 1}-${run}@test.example.org` })));
  const refs = (n: number) => gps.slice(0, n).map((id) => ({ reference: `Practitioner/${id}` }));
  // every patient has its own pattern of identifiers, given names and GPs
  const all = await patient(r, { identifier: codes(N), name: [{ family: `Rep${run}`, given: Array.from({ length: N }, (_, i) => given(i + 1)) }], generalPractitioner: refs(N), birthDate: '1975-06-15' });
  const most = await patient(r, { identifier: codes(N - 1), name: [{ family: `Rep${run}`, given: Array.from({ length: N - 1 }, (_, i) => given(i + 1)) }], generalPractitioner: refs(N - 1), birthDate: '1985-06-15' });
  const two = await patient(r, { identifier: codes(2), name: [{ family: `Rep${run}`, given: [given(1), given(2)] }], generalPractitioner: refs(2), birthDate: '1995-06-15' });
  const one = await patient(r, { identifier: codes(1), name: [{ family: `Rep${run}`, given: [given(1)] }], generalPractitioner: refs(1), birthDate: '1995-06-15' });
  const obsAll = await heartRate(r, all, 70);
  await heartRate(r, most, 71);
  const idOf: Record<string, string> = { all, most, two, one };
  const names = (ids: string[]): string[] => ids.map((id) => Object.keys(idOf).find((k) => idOf[k] === id) ?? id).sort();

  /** Asserts a search of the patients answers 200 with exactly `want` (by name), by GET and POST _search, with the right total. */
  const expect = async (type: string, query: string, want: string[], label: string): Promise<void> => {
    for (const [how, send] of [['GET', get], ['POST', post]] as const) {
      const res = await send(r, type, `${query}&_total=accurate&_count=10`);
      t.equal(res.statusCode, 200, `${how} ${label}${res.statusCode === 200 ? '' : `: ${res.body.slice(0, 300)}`}`);
      if (res.statusCode !== 200) continue;
      t.same(names(matchIds(res)), [...want].sort(), `${how} ${label}`);
      t.equal(res.json().total, want.length, `${how} ${label}: total`);
    }
  };
  const id = (i: number): string => `${tag}|${i}`;

  await expect('Patient', repeated('identifier', N, id), ['all'], `identifier x${N}`);
  await expect('Patient', repeated('identifier', N - 1, id), ['all', 'most'], `identifier x${N - 1}`);
  await expect('Patient', repeated('given', N, given), ['all'], `given x${N}`);
  await expect('Patient', repeated('name:exact', N, given), ['all'], `name:exact x${N}`);
  await expect('Patient', repeated('general-practitioner', N, (i) => `Practitioner/${gps[i - 1]}`), ['all'], `general-practitioner x${N}`);
  await expect('Patient', repeated('general-practitioner.email', N, (i) => `gp${i}-${run}@test.example.org`), ['all'], `general-practitioner.email x${N} (a chain through the index)`);
  for (const [how, send] of [['GET', get], ['POST', post]] as const) {
    const obs = await send(r, 'Observation', `${repeated('subject.identifier', N, id)}&_total=accurate`);
    t.equal(obs.statusCode, 200, `${how} Observation?subject.identifier x${N} (a chain through a column)${obs.statusCode === 200 ? '' : `: ${obs.body.slice(0, 300)}`}`);
    t.same(matchIds(obs), [obsAll], `${how} Observation?subject.identifier x${N}: the observation of the patient with all ${N}`);
    t.equal(obs.json().total, 1);
  }
  await expect('Patient', `identifier=${encodeURIComponent(id(1))}&${repeated('birthdate', 50, () => 'ge1970')}&${repeated('birthdate', 50, () => 'lt1990')}`, ['all', 'most'], 'birthdate x100 (a column)');
  await expect('Patient', `${repeated('identifier', 50, id)}&${repeated('given', 50, given)}&family=Rep${run}`, ['all', 'most'], 'two index parameters x50 each and one more');
  await expect('Patient', `${repeated('identifier', 50, (i) => id(i + 50))}&${repeated('given', 50, (i) => given(i + 50))}`, ['all'], 'the other 50 of each');
  await expect('Patient', `${repeated('identifier', 2, id)}&${repeated('identifier:not', 98, (i) => id(i + 2))}`, ['two'], 'identifier x2 and identifier:not x98');
});

t.test('repeated parameters keep their AND semantics, and commas their OR', async (t) => {
  const tag = `urn:and:${run}`;
  const both = await patient(h, { identifier: [{ system: tag, value: '1' }, { system: tag, value: '2' }], name: [{ family: `And${run}`, given: [`Ga${run}`, `Gb${run}`] }] });
  const onlyOne = await patient(h, { identifier: [{ system: tag, value: '1' }], name: [{ family: `And${run}`, given: [`Ga${run}`] }] });
  const onlyTwo = await patient(h, { identifier: [{ system: tag, value: '2' }], name: [{ family: `And${run}`, given: [`Gb${run}`] }] });
  const v = (x: string): string => encodeURIComponent(`${tag}|${x}`);
  const cases: [string, string[]][] = [
    [`identifier=${v('1')}`, [both, onlyOne]],
    [`identifier=${v('1')}&identifier=${v('2')}`, [both]],
    [`identifier=${v('1')}&identifier=${v('2')}&identifier=${v('1')}`, [both]],
    [`identifier=${v('1')}&identifier=${v('3')}`, []],
    [`identifier=${v('1')},${v('2')}`, [both, onlyOne, onlyTwo]],
    [`identifier=${v('1')},${v('3')}&identifier=${v('2')}`, [both]],
    [`identifier=${v('1')}&identifier:not=${v('2')}`, [onlyOne]],
    [`identifier=${v('1')}&identifier=${v('2')}&identifier:missing=false`, [both]],
    [`identifier=${encodeURIComponent(`${tag}|`)}&identifier=2&identifier=1`, [both]],
    [`family=And${run}&given=Ga${run}&given=Gb${run}`, [both]],
    [`family=And${run}&given=Ga${run}&given:exact=Gb${run}`, [both]],
    [`family=And${run}&given=Ga${run}&given:contains=${`b${run}`}`, [both]],
    [`family=And${run}&given=Ga${run}&given=Gc${run}`, []],
  ];
  for (const [query, want] of cases) {
    for (const [how, send] of [['GET', get], ['POST', post]] as const) {
      const res = await send(h, 'Patient', query);
      t.equal(res.statusCode, 200, `${how} ${query}`);
      t.same(matchIds(res), [...want].sort(), `${how} ${query}`);
    }
  }
});
