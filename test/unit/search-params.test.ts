import t from 'tap';
import '../../src/fhir/resources/index.js';
import { resourceDefinition } from '../../src/fhir/registry.js';
import { parseSearch, parseToken, splitValues } from '../../src/fhir/search/params.js';
import { parseDateParam } from '../../src/fhir/search/dates.js';

const def = resourceDefinition('Patient')!;

/** The HTTP status a FhirError thrown by fn carries (undefined when fn does not throw). */
function statusThrown(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { status?: number }).status;
  }
  return undefined;
}
const opts = { strict: false, defaultCount: 20, maxCount: 1000 };

t.test('splits OR values on unescaped commas only', async (t) => {
  t.same(splitValues('a,b\\,c,d'), ['a', 'b\\,c', 'd']);
});

t.test('parses token forms system|code, |code, system| and code', async (t) => {
  t.same(parseToken('http://x|1'), { system: 'http://x', code: '1', hasSystem: true });
  t.same(parseToken('|1'), { system: undefined, code: '1', hasSystem: true });
  t.same(parseToken('http://x|'), { system: 'http://x', code: undefined, hasSystem: true });
  t.same(parseToken('1'), { code: '1', hasSystem: false });
  t.same(parseToken('a\\|b'), { code: 'a|b', hasSystem: false });
});

t.test('parses partial dates into ranges with their precision', async (t) => {
  const y = parseDateParam('1974', 'birthdate');
  t.equal(y.prefix, 'eq');
  t.equal(y.start.toISOString(), '1974-01-01T00:00:00.000Z');
  t.equal(y.end.toISOString(), '1975-01-01T00:00:00.000Z');
  const m = parseDateParam('ge1974-02', 'birthdate');
  t.equal(m.prefix, 'ge');
  t.equal(m.end.toISOString(), '1974-03-01T00:00:00.000Z');
  const d = parseDateParam('lt2000-12-31', 'birthdate');
  t.equal(d.end.toISOString(), '2001-01-01T00:00:00.000Z');
  const s = parseDateParam('gt2020-05-01T10:00:00+02:00', '_lastUpdated');
  t.equal(s.start.toISOString(), '2020-05-01T08:00:00.000Z');
  t.equal(s.end.getTime() - s.start.getTime(), 1000);
  for (const p of ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']) t.equal(parseDateParam(`${p}2001`, 'x').prefix, p);
});

t.test('refuses impossible dates with 400', async (t) => {
  for (const bad of ['1974-13', '1974-02-30', '74', 'yesterday', '2001-01-01T25:00']) {
    t.equal(statusThrown(() => parseDateParam(bad, 'birthdate')), 400, bad);
  }
});

t.test('parses parameters with modifiers into AND/OR groups', async (t) => {
  const req = parseSearch(def, { family: ['smi,jon', 'x'], 'given:exact': 'Peter', 'name:contains': 'ete', 'email:missing': 'true', birthdate: 'ge1970' }, opts);
  const family = req.params.filter((p) => p.def.name === 'family');
  t.equal(family.length, 2, 'a repeated parameter is two AND-ed conditions');
  t.same(family[0]!.strings, ['smi', 'jon'], 'commas are OR');
  t.equal(req.params.find((p) => p.def.name === 'given')!.modifier, 'exact');
  t.equal(req.params.find((p) => p.def.name === 'name')!.modifier, 'contains');
  t.equal(req.params.find((p) => p.def.name === 'email')!.missing, true);
  t.equal(req.params.find((p) => p.def.name === 'birthdate')!.dates[0]!.prefix, 'ge');
});

t.test('ignores unknown parameters with a reason in lenient mode and refuses them in strict mode', async (t) => {
  const lenient = parseSearch(def, { foo: 'bar', family: 'x' }, opts);
  t.equal(lenient.params.length, 1);
  t.match(lenient.ignored, [{ name: 'foo' }]);
  t.equal(statusThrown(() => parseSearch(def, { foo: 'bar' }, { ...opts, strict: true })), 400);
});

t.test('refuses a modifier the parameter type does not support, in lenient mode too (ignoring it would widen the result)', async (t) => {
  t.equal(statusThrown(() => parseSearch(def, { 'birthdate:exact': '2000' }, { ...opts, strict: true })), 400);
  t.equal(statusThrown(() => parseSearch(def, { 'family:text': 'zzz' }, opts)), 400);
  t.equal(statusThrown(() => parseSearch(def, { 'general-practitioner:Patient': '1' }, opts)), 400);
});

t.test('reads :[type] on a reference parameter as a target type', async (t) => {
  const p = parseSearch(def, { 'general-practitioner:Practitioner': '123' }, opts).params[0]!;
  t.equal(p.targetType, 'Practitioner');
  t.equal(p.modifier, undefined);
});

t.test('reads years below 100 as themselves, not as 19xx', async (t) => {
  t.equal(parseDateParam('0050', 'birthdate').start.toISOString(), '0050-01-01T00:00:00.000Z');
});

t.test('caps _count and validates result parameters', async (t) => {
  t.equal(parseSearch(def, {}, opts).count, 20);
  t.equal(parseSearch(def, { _count: '5000' }, opts).count, 1000);
  t.equal(parseSearch(def, { _count: '0' }, opts).count, 0);
  t.equal(statusThrown(() => parseSearch(def, { _count: '-1' }, opts)), 400);
  t.equal(statusThrown(() => parseSearch(def, { _total: 'lots' }, opts)), 400);
  t.equal(statusThrown(() => parseSearch(def, { _summary: 'maybe' }, opts)), 400);
  t.equal(parseSearch(def, { _total: 'accurate' }, opts).total, 'accurate');
  t.equal(parseSearch(def, { _summary: 'count' }, opts).summary, 'count');
});

t.test('parses several _sort keys with descending ones', async (t) => {
  const req = parseSearch(def, { _sort: 'family,-birthdate,_id' }, opts);
  t.same(req.sort.map((s) => [s.name, s.descending]), [['family', false], ['birthdate', true], ['_id', false]]);
  t.match(parseSearch(def, { _sort: 'telecom' }, opts).ignored, [{ name: '_sort' }]);
});

t.test('refuses a bad :missing value', async (t) => {
  t.equal(statusThrown(() => parseSearch(def, { 'gender:missing': 'maybe' }, opts)), 400);
});
