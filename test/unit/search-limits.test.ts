import t from 'tap';
import '../../src/fhir/resources/index.js';
import { resourceDefinition } from '../../src/fhir/registry.js';
import { parseSearch, type Query } from '../../src/fhir/search/params.js';
import { DEFAULT_SEARCH_LIMITS, limitsDocumentation, searchLimitsOf } from '../../src/fhir/search/limits.js';
import { statementTimeoutClause } from '../../src/db/statement-limits.js';
import { FhirError } from '../../src/fhir/outcome.js';

const observation = resourceDefinition('Observation')!;
const parse = (query: Query, limits = DEFAULT_SEARCH_LIMITS) => parseSearch(observation, query, { strict: false, defaultCount: 20, maxCount: 1000, limits });
const list = (n: number, f = (i: number) => `v${i}`) => Array.from({ length: n }, (_, i) => f(i));

/** The 400 a query over its bounds is refused with. */
function refusal(query: Query, limits = DEFAULT_SEARCH_LIMITS): FhirError {
  try {
    parse(query, limits);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('not refused');
}

t.test('counts every occurrence of a search parameter, but not result parameters or includes', async (t) => {
  t.doesNotThrow(() => parse({ identifier: list(10), code: list(10), status: list(10), _count: '5', _sort: '-date', _total: 'accurate', _include: 'Observation:patient' }));
  const e = refusal({ identifier: list(10), code: list(10), status: list(10), category: 'laboratory' });
  t.equal(e.status, 400);
  t.equal(e.issues[0]!.code, 'too-costly');
  t.match(e.message, /31 search parameters: at most 30 .*\(HMS_SEARCH_MAX_PARAMS\)/);
});

t.test('counts repeats of one name across its modifiers and chains by their names', async (t) => {
  t.match(refusal({ identifier: list(6), 'identifier:not': list(5) }).message, /'identifier' appears 11 times/);
  t.match(refusal({ 'subject:Patient.name': list(6), 'subject.name:exact': list(5) }).message, /'subject.name' appears 11 times/);
  t.doesNotThrow(() => parse({ 'patient.family': list(10), 'patient.given': list(10) }), 'different chains are different names');
});

t.test('bounds OR-ed values per parameter and per search, chains included', async (t) => {
  const limits = { ...DEFAULT_SEARCH_LIMITS, maxValues: 4 };
  t.match(refusal({ identifier: 'a,b,c,d,e' }, limits).message, /5 values: at most 4 .*HMS_SEARCH_MAX_VALUES/);
  t.match(refusal({ 'patient.family': 'a,b,c', code: 'x,y' }, limits).message, /5 values in all: at most 4/);
  t.doesNotThrow(() => parse({ identifier: 'a,b', code: 'x,y' }, limits));
});

t.test('bounds includes and sort keys', async (t) => {
  t.match(refusal({ _include: list(6, () => 'Observation:patient'), '_revinclude:iterate': list(5, () => 'Observation:encounter') }).message, /11 _include\/_revinclude values: at most 10 .*HMS_SEARCH_MAX_INCLUDES/);
  t.match(refusal({ _sort: list(11, () => 'date').join(',') }).message, /_sort has 11 keys: at most 10/);
  t.equal(refusal({ _include: 'Observation:patient' }, { ...DEFAULT_SEARCH_LIMITS, maxIncludes: 0 }).issues[0]!.code, 'too-costly');
});

t.test('the configuration sets the bounds, once per configuration', async (t) => {
  const config = { HMS_SEARCH_MAX_PARAMS: 5, HMS_SEARCH_MAX_REPEATS: 2, HMS_SEARCH_MAX_VALUES: 7, HMS_SEARCH_MAX_INCLUDES: 1 };
  const limits = searchLimitsOf(config);
  t.same(limits, { ...DEFAULT_SEARCH_LIMITS, maxParams: 5, maxRepeats: 2, maxValues: 7, maxIncludes: 1 });
  t.equal(searchLimitsOf(config), limits);
  t.match(refusal({ identifier: list(3) }, limits).message, /at most 2/);
});

t.test('the CapabilityStatement text names every bound', async (t) => {
  const text = limitsDocumentation({ search: DEFAULT_SEARCH_LIMITS, maxCount: 1000, maxIncluded: 1000, statementTimeout: 10, rateLimit: 6000, rateLimitWindow: 60 });
  for (const part of ['30 search parameters', '10 occurrences', '1000 comma-separated', 'chains 1 level', '10 _include/_revinclude', '10 _sort keys', '_count at most 1000', 'longer than 10 s', '503', '6000 requests per 60 s', '429']) t.match(text, part);
  const off = limitsDocumentation({ search: DEFAULT_SEARCH_LIMITS, maxCount: 1000, maxIncluded: 1000, statementTimeout: 0, rateLimit: 0, rateLimitWindow: 60 });
  t.match(off, /no time limit/);
  t.match(off, /not rate limited/);
});

t.test('the session time limit speaks each server flavour', async (t) => {
  t.equal(statementTimeoutClause('mariadb', 10), 'max_statement_time = 10');
  t.equal(statementTimeoutClause('mariadb', 0.25), 'max_statement_time = 0.25');
  t.equal(statementTimeoutClause('mysql', 10), 'max_execution_time = 10000');
  t.equal(statementTimeoutClause('mysql', 0.0001), 'max_execution_time = 1', 'MySQL counts whole milliseconds, at least 1');
  t.equal(statementTimeoutClause('mariadb', 0), undefined, '0 = no limit');
});
