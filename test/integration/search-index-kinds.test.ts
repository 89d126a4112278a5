/**
 * Index-backed search over dates, numbers, quantities and uris, on the real database (SQLite, or
 * MariaDB with DATABASE_URL): index rows written straight into the index tables of a type of its
 * own, searched through parseSearch and applyFilters, and the answers checked against the R4
 * definitions of the prefixes for ranges (https://hl7.org/fhir/R4/search.html#prefix) written out
 * independently of the SQL. The HTTP path (extraction at write time included) is
 * test/integration/generic-search.test.ts.
 */
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { testDb } from '../helpers/app.js';
import type { IndexSearchParam, ResourceDefinition } from '../../src/fhir/registry.js';
import { parseSearch, type Query } from '../../src/fhir/search/params.js';
import { applyFilters, applyKeyset, decodeCursor, encodeCursor, orderKeys } from '../../src/fhir/search/compile.js';
import { approximate, parseDateParam, type DatePrefix } from '../../src/fhir/search/dates.js';
import { dialectOf } from '../../src/db/dialect.js';
import type { RowScope } from '../../src/fhir/access.js';

const param = (name: string, type: IndexSearchParam['type']): IndexSearchParam => ({
  name, type, source: 'index', expression: name, description: name, extract: () => [],
});

/** Every row of the type: this test narrows nothing (access is the integration tests' concern). */
const everything: RowScope = { narrow: () => undefined };
const opts = { strict: true, defaultCount: 20, maxCount: 1000 };

/**
 * A type of the test's own (a MariaDB database is shared by every test and run: the type's name
 * keeps its rows apart), its database, and its helpers.
 */
async function setup(t: Test) {
  const db = await testDb(t);
  const TYPE = `HmsKinds${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const def = {
    type: TYPE, storageKind: 'generic', table: 'fhir_resources', rowFilter: { resource_type: [TYPE] }, softDelete: true,
    profile: '', description: '', interactions: [], references: [], summaryElements: [],
    searchParams: [param('when', 'date'), param('n', 'number'), param('q', 'quantity'), param('u', 'uri'), param('s', 'string'), param('k', 'token')],
  } as unknown as ResourceDefinition;
  const ids = async (query: Query): Promise<string[]> => {
    const q = db('fhir_resources as t').select('t.id');
    applyFilters(db, q, def, parseSearch(def, query, opts), everything);
    return ((await q) as { id: string }[]).map((r) => r.id).sort();
  };
  const resource = async (id: string): Promise<void> => {
    await db('fhir_resources').insert({ resource_type: TYPE, id, version_id: 1, resource: '{}' });
  };
  const index = async (table: string, id: string, row: Record<string, unknown>): Promise<void> => {
    await db(table).insert({ resource_type: TYPE, resource_id: id, ...row });
  };
  return { db, def, TYPE, ids, resource, index };
}

const ms = (iso: string): number => new Date(iso).getTime();

/** The prefixes as the R4 table words them for ranges: search range [lo, hi), stored range [low, high). */
function specMatches(prefix: DatePrefix, lo: number, hi: number, low: number, high: number, ap: { start: number; end: number }): boolean {
  const contains = lo <= low && high <= hi; // the search range fully contains the stored one
  const above = high > hi; // the range above the search value intersects the stored one
  const below = low < lo; // the range below it does
  switch (prefix) {
    case 'eq': return contains;
    case 'ne': return !contains;
    case 'gt': return above;
    case 'lt': return below;
    case 'ge': return above || contains;
    case 'le': return below || contains;
    case 'sa': return low >= hi; // starts after the search range ends
    case 'eb': return high <= lo; // ends before it starts
    case 'ap': return low < ap.end && high > ap.start; // overlaps the widened search range
  }
}

t.test('date prefixes over stored ranges follow the R4 table for ranges', async (t) => {
  const { ids, resource, index } = await setup(t);
  const points = [
    '1990-06-01T00:00:00Z', '2020-01-01T00:00:00Z', '2020-01-09T00:00:00Z', '2020-01-10T00:00:00Z', '2020-01-10T12:00:00Z',
    '2020-01-10T12:01:00Z', '2020-01-11T00:00:00Z', '2020-01-12T00:00:00Z', '2020-02-01T00:00:00Z', '2031-01-01T00:00:00Z',
  ].map(ms);
  const stored: { id: string; low: number; high: number }[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) stored.push({ id: `d${String(i)}-${String(j)}`, low: points[i]!, high: points[j]! });
  }
  for (const s of stored) {
    await resource(s.id);
    await index('search_date', s.id, { param: 'when', low: s.low, high: s.high });
  }
  await resource('d-none'); // no date at all: no prefix matches it
  const values = ['2020-01-10', '2020-01', '2020', '2020-01-10T12:00Z', '2020-01-10T13:00+01:00', '2020-01-11'];
  for (const prefix of ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as DatePrefix[]) {
    for (const v of values) {
      const range = parseDateParam(prefix + v, 'when');
      const a = approximate(range);
      const expected = stored.filter((s) => specMatches(prefix, range.start.getTime(), range.end.getTime(), s.low, s.high, { start: a.start.getTime(), end: a.end.getTime() }))
        .map((s) => s.id).sort();
      t.same(await ids({ when: prefix + v }), expected, `when=${prefix}${v}`);
    }
  }
  // several values OR, repeated parameters AND, :missing
  const jan10 = stored.filter((s) => specMatches('eq', ms('2020-01-10T00:00:00Z'), ms('2020-01-11T00:00:00Z'), s.low, s.high, { start: 0, end: 0 })).map((s) => s.id);
  const jan11 = stored.filter((s) => specMatches('eq', ms('2020-01-11T00:00:00Z'), ms('2020-01-12T00:00:00Z'), s.low, s.high, { start: 0, end: 0 })).map((s) => s.id);
  t.same(await ids({ when: '2020-01-10,2020-01-11' }), [...jan10, ...jan11].sort());
  t.same(await ids({ when: ['ge2020-01-10T12:00Z', 'lt2020-01-11'] }),
    stored.filter((s) => s.high >= ms('2020-01-10T12:00:00Z') && (s.high > ms('2020-01-10T12:01:00Z') || s.low >= ms('2020-01-10T12:00:00Z')) && s.low < ms('2020-01-11T00:00:00Z'))
      .map((s) => s.id).sort(), 'AND of two occurrences (grouped)');
  t.same(await ids({ 'when:missing': 'true' }), ['d-none']);
  t.equal((await ids({ 'when:missing': 'false' })).length, stored.length);
  // an open end (clamped at 9999-12-31T23:59:59) is later than any date searched
  await resource('d-open');
  await index('search_date', 'd-open', { param: 'when', low: ms('2019-05-01T00:00:00Z'), high: Date.UTC(9999, 11, 31, 23, 59, 59) });
  t.ok((await ids({ when: 'gt2500' })).includes('d-open'), 'an open Period reaches past any date');
  t.notOk((await ids({ when: '2019' })).includes('d-open'), 'and is contained in no year');
  t.ok((await ids({ when: 'ge2019-05-01' })).includes('d-open'));
  t.notOk((await ids({ when: 'lt2019-05-01' })).includes('d-open'));
  t.ok((await ids({ when: 'lt2019-05-02' })).includes('d-open'));

});

t.test('a resource with several dates matches a prefix when one of them does', async (t) => {
  const { ids, resource, index } = await setup(t);
  await resource('m1');
  await index('search_date', 'm1', { param: 'when', low: ms('2001-03-04T00:00:00Z'), high: ms('2001-03-05T00:00:00Z') });
  await index('search_date', 'm1', { param: 'when', low: ms('2007-01-01T00:00:00Z'), high: ms('2008-01-01T00:00:00Z') });
  t.same(await ids({ when: '2001-03-04' }), ['m1']);
  t.same(await ids({ when: '2007' }), ['m1']);
  t.same(await ids({ when: ['2001', '2007'] }), ['m1'], 'each occurrence by a different value');
  t.same(await ids({ when: ['2001', '2003'] }), []);
  t.same(await ids({ when: 'sa2007-06' }), [], 'no value starts after June 2007');
});

t.test('numbers: eq by the precision written, ap within 10 %, the other prefixes by the value', async (t) => {
  const { ids, resource, index } = await setup(t);
  const values: Record<string, number> = { a: 99.4, b: 99.5, c: 100, d: 100.49, e: 100.5, f: 90, g: 110, h: 111, i: 0.015, j: -3 };
  for (const [id, value] of Object.entries(values)) {
    await resource(id);
    await index('search_number', id, { param: 'n', value });
  }
  await resource('none');
  t.same(await ids({ n: '100' }), ['b', 'c', 'd'], '100 is [99.5, 100.5)');
  t.same(await ids({ n: '100.0' }), ['c'], '100.0 is [99.95, 100.05)');
  t.same(await ids({ n: '1e2' }), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], '1e2 is precise to the hundred: [50, 150)');
  t.same(await ids({ n: 'ne100' }), ['a', 'e', 'f', 'g', 'h', 'i', 'j']);
  t.same(await ids({ n: 'gt100' }), ['d', 'e', 'g', 'h']);
  t.same(await ids({ n: 'ge100' }), ['c', 'd', 'e', 'g', 'h']);
  t.same(await ids({ n: 'lt100' }), ['a', 'b', 'f', 'i', 'j']);
  t.same(await ids({ n: 'le100' }), ['a', 'b', 'c', 'f', 'i', 'j']);
  t.same(await ids({ n: 'ap100' }), ['a', 'b', 'c', 'd', 'e', 'f', 'g'], '[90, 110]');
  t.same(await ids({ n: '0.015' }), ['i']);
  t.same(await ids({ n: 'lt0' }), ['j']);
  t.same(await ids({ n: '90,110' }), ['f', 'g']);
  t.same(await ids({ n: ['ge99', 'le100'] }), ['a', 'b', 'c']);
  t.same(await ids({ 'n:missing': 'true' }), ['none']);
});

t.test('quantities: the value, and the system and code when given', async (t) => {
  const { ids, resource, index } = await setup(t);
  const UCUM = 'http://unitsofmeasure.org';
  const rows: [string, number, string | null, string | null][] = [
    ['mg', 5.4, UCUM, 'mg'], ['g', 5.4, UCUM, 'g'], ['other', 5.4, 'http://example.org/units', 'mg'], ['bare', 5.4, null, null], ['big', 54, UCUM, 'mg'],
  ];
  for (const [id, value, system, code] of rows) {
    await resource(id);
    await index('search_quantity', id, { param: 'q', value, system, code });
  }
  t.same(await ids({ q: '5.4' }), ['bare', 'g', 'mg', 'other'], 'no unit: any unit');
  t.same(await ids({ q: `5.4|${UCUM}|mg` }), ['mg']);
  t.same(await ids({ q: '5.4||mg' }), ['mg', 'other'], 'a code without a system: any system');
  t.same(await ids({ q: `5.4|${UCUM}|` }), ['g', 'mg'], 'a system without a code');
  t.same(await ids({ q: '5.4||MG' }), [], 'codes are case-sensitive');
  t.same(await ids({ q: `gt5|${UCUM}|mg` }), ['big', 'mg']);
  t.same(await ids({ q: `5.4|${UCUM}|mg,5.4|${UCUM}|g` }), ['g', 'mg']);
  t.same(await ids({ q: ['gt5', 'lt6'] }), ['bare', 'g', 'mg', 'other']);
});

t.test('uris: exact, :below, :above, case-sensitive, LIKE wildcards literal', async (t) => {
  const { def, ids, resource, index } = await setup(t);
  const uris: Record<string, string> = {
    vs123: 'http://acme.org/fhir/ValueSet/123', vs1234: 'http://acme.org/fhir/ValueSet/1234', fhir: 'http://acme.org/fhir',
    upper: 'HTTP://ACME.ORG/FHIR', wild: 'http://acme.org/fhir/V%_x', urn: 'urn:oid:1.2.3',
  };
  for (const [id, code] of Object.entries(uris)) {
    await resource(id);
    await index('search_token', id, { param: 'u', system: null, code });
  }
  await resource('none');
  t.same(await ids({ u: 'http://acme.org/fhir/ValueSet/123' }), ['vs123']);
  t.same(await ids({ u: 'http://acme.org/fhir/valueset/123' }), [], 'exact: case matters');
  t.same(await ids({ 'u:below': 'http://acme.org/fhir/ValueSet/123' }), ['vs123', 'vs1234']);
  t.same(await ids({ 'u:below': 'http://acme.org/fhir' }), ['fhir', 'vs123', 'vs1234', 'wild']);
  t.same(await ids({ 'u:below': 'http://acme.org/fhir/V%' }), ['wild'], '% is no wildcard');
  t.same(await ids({ 'u:below': 'http://acme.org/FHIR' }), []);
  t.same(await ids({ 'u:above': 'http://acme.org/fhir/ValueSet/123/_history/5' }), ['fhir', 'vs123']);
  t.same(await ids({ 'u:above': 'http://acme.org/fhir' }), ['fhir']);
  t.same(await ids({ 'u:above': 'urn:oid:1.2.3.4' }), ['urn']);
  t.same(await ids({ u: 'urn:oid:1.2.3,http://acme.org/fhir' }), ['fhir', 'urn']);
  t.same(await ids({ 'u:missing': 'true' }), ['none']);
  t.same(await ids({ 'u:missing': 'false' }), Object.keys(uris).sort());
  t.throws(() => parseSearch(def, { 'u:contains': 'x' }, opts), 'no :contains on uris');
  t.throws(() => parseSearch(def, { 'u:not': 'x' }, opts), 'no :not on uris (R4: tokens only)');
});

t.test('_sort by index-backed parameters pages by keyset across pages, ties broken by id', async (t) => {
  const { db, def, resource, index } = await setup(t);
  const dialect = dialectOf(db);
  // four resources with several values each, one without any
  const data: Record<string, { dates: [string, string][]; n: number[]; q: number[]; s: string[]; k: string[] }> = {
    r1: { dates: [['2020-01-01', '2020-01-02'], ['2025-01-01', '2025-06-01']], n: [5, 1], q: [3], s: ['Émile', 'zed'], k: ['b'] },
    r2: { dates: [['2019-01-01', '2019-01-02']], n: [2], q: [3], s: ['anna'], k: ['a', 'z'] },
    r3: { dates: [['2021-01-01', '2030-01-01']], n: [3], q: [1, 9], s: ['Bob'], k: ['c'] },
    r4: { dates: [['2020-01-01', '2020-01-02']], n: [1], q: [2], s: ['bob'], k: ['b'] },
    r5: { dates: [], n: [], q: [], s: [], k: [] },
  };
  for (const [id, d] of Object.entries(data)) {
    await resource(id);
    for (const [a, b] of d.dates) await index('search_date', id, { param: 'when', low: ms(a), high: ms(b) });
    for (const value of d.n) await index('search_number', id, { param: 'n', value });
    for (const value of d.q) await index('search_quantity', id, { param: 'q', value, system: null, code: null });
    for (const value of d.s) await index('search_string', id, { param: 's', value, norm: value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase() });
    for (const code of d.k) await index('search_token', id, { param: 'k', system: null, code });
  }
  /** Every page of a sorted search, two rows a page, followed by its cursors forwards. */
  async function sorted(sort: string): Promise<string[]> {
    const req = parseSearch(def, { _sort: sort }, opts);
    const keys = orderKeys(req, dialect);
    const out: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const q = db('fhir_resources as t').select('t.id');
      keys.forEach((k, i) => q.select(db.raw(`${k.expr} as ??`, [`_k${String(i)}`])));
      applyFilters(db, q, def, req, everything);
      applyKeyset(q, keys, cursor ? decodeCursor(cursor, keys.length) : undefined, dialect).limit(2);
      const rows = (await q) as Record<string, unknown>[];
      out.push(...rows.map((r) => String(r.id)));
      if (rows.length < 2) break;
      const last = rows[rows.length - 1]!;
      cursor = encodeCursor({ direction: 'next', values: keys.map((_, i) => last[`_k${String(i)}`]) as (string | number | null)[] });
    }
    return out;
  }
  t.same(await sorted('when'), ['r2', 'r1', 'r4', 'r3', 'r5'], 'by the earliest start; ties by id; none last');
  t.same(await sorted('-when'), ['r5', 'r3', 'r1', 'r4', 'r2'], 'by the latest end (none first, descending)');
  t.same(await sorted('n'), ['r1', 'r4', 'r2', 'r3', 'r5']);
  t.same(await sorted('-n'), ['r5', 'r1', 'r3', 'r2', 'r4']);
  t.same(await sorted('q'), ['r3', 'r4', 'r1', 'r2', 'r5']);
  t.same(await sorted('-q'), ['r5', 'r3', 'r1', 'r2', 'r4']);
  t.same(await sorted('s'), ['r2', 'r3', 'r4', 'r1', 'r5'], 'by the normalised string: anna, bob, bob, emile');
  t.same(await sorted('-s'), ['r5', 'r1', 'r3', 'r4', 'r2'], 'zed first');
  t.same(await sorted('k'), ['r2', 'r1', 'r4', 'r3', 'r5']);
  t.same(await sorted('-k'), ['r5', 'r2', 'r3', 'r1', 'r4']);
  t.same(await sorted('n,-when'), ['r1', 'r4', 'r2', 'r3', 'r5'], 'two keys: n ties broken by the latest end');
});
