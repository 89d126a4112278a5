/**
 * Compiles a parsed search into SQL over the resource's table (alias t) and the search index
 * tables. Paging is keyset: the cursor holds the sort values of the last row seen, so pages stay
 * correct while rows are inserted. https://hl7.org/fhir/R4/search.html
 */
import type { Knex } from 'knex';
import { badRequest } from '../outcome.js';
import type { ColumnSearchParam, IndexSearchParam, ResourceDefinition } from '../registry.js';
import { approximate, utc, type DateRange } from './dates.js';
import type { ChainTarget, ParsedParam, SearchRequest, TokenParam } from './params.js';
import { characterCount, INDEX_VALUE_LENGTH, normalizeString } from './normalize.js';
import { dateToSqlTimestamp } from '../../mappers/datatypes.js';
import { whereExactIds, whereOfType } from '../../db/resource-repository.js';
import { dialectOf } from '../../db/dialect.js';
import { whereWithinDeadline } from '../../db/statement-limits.js';
import type { NumberValue } from './numbers.js';
import type { RowScope } from '../access.js';
import { indexTable } from './index-tables.js';

type QB = Knex.QueryBuilder;

const likeEscape = (s: string): string => s.replace(/[!%_]/g, (c) => '!' + c);
const ESCAPE = " ESCAPE '!'";

const DAY_MS = 86_400_000;
const YEAR_1_MS = utc(1, 0, 1).getTime();
const MIN_MS = YEAR_1_MS - 1; // below year 1 every bound is open
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/** A bound as the SQL literal a DATE ('YYYY-MM-DD') or TIMESTAMP ('YYYY-MM-DD HH:MM:SS') column compares with. */
function literal(ms: number, kind: 'date' | 'timestamp'): string {
  const clamped = Math.min(Math.max(ms, YEAR_1_MS), MAX_MS);
  const d = new Date(clamped);
  return kind === 'date' ? d.toISOString().slice(0, 10) : dateToSqlTimestamp(d);
}

/** A column reference quoted for both dialects (SQLite accepts MySQL's backticks). */
const quoted = (alias: string, column: string): string => `\`${alias}\`.\`${column}\``;

/** The SQL a column parameter compares: its column, or its per-dialect expression. */
function columnSql(db: Knex, def: ColumnSearchParam, alias: string, column = def.column): string {
  if (def.sql && column === def.column) return def.sql[dialectOf(db)].replace(/\bt\./g, `${alias}.`);
  return quoted(alias, column);
}

/**
 * One date condition. A stored value v stands for the range [v, v + unit) (a day for DATE columns,
 * a second for TIMESTAMP ones) and the search value for [lo, hi); the prefixes compare ranges as
 * https://hl7.org/fhir/R4/search.html#prefix says. Every comparison is turned into `col >= x` or
 * `col < x` with x on the column's own grid, so DATE and TIMESTAMP columns compare alike on MySQL
 * and SQLite.
 */
function dateCondition(q: QB, col: string, range: DateRange, kind: 'date' | 'timestamp' = 'timestamp'): void {
  const unit = kind === 'date' ? DAY_MS : 1000;
  const floor = (ms: number): number => Math.floor(ms / unit) * unit;
  const ceil = (ms: number): number => Math.ceil(ms / unit) * unit;
  const never = (w: QB): void => { w.whereRaw('1 = 0'); };
  const atLeast = (ms: number): void => { if (ms > MAX_MS) never(q); else if (ms > MIN_MS) q.whereRaw(`${col} >= ?`, [literal(ms, kind)]); };
  const below = (ms: number): void => { if (ms <= MIN_MS) never(q); else if (ms <= MAX_MS) q.whereRaw(`${col} < ?`, [literal(ms, kind)]); };
  const lo = range.start.getTime();
  const hi = range.end.getTime();
  switch (range.prefix) {
    case 'eq': atLeast(ceil(lo)); below(floor(hi - unit) + unit); break; // [v, v+unit) inside [lo, hi)
    case 'ne': {
      const from = ceil(lo);
      const to = floor(hi - unit) + unit;
      q.where((w) => {
        if (from > MIN_MS) w.orWhereRaw(`${col} < ?`, [literal(from, kind)]);
        if (to <= MAX_MS) w.orWhereRaw(`${col} >= ?`, [literal(to, kind)]);
        if (from <= MIN_MS && to > MAX_MS) never(w);
      });
      break;
    }
    case 'gt': atLeast(floor(hi - unit) + unit); break; // v + unit > hi
    case 'lt': below(ceil(lo)); break; // v < lo
    case 'ge': atLeast(floor(lo - unit) + unit); break; // v + unit > lo
    case 'le': below(ceil(hi)); break; // v < hi
    case 'sa': atLeast(ceil(hi)); break; // v >= hi
    case 'eb': below(floor(lo - unit) + unit); break; // v + unit <= lo
    case 'ap': {
      const a = approximate(range);
      atLeast(floor(a.start.getTime() - unit) + unit);
      below(ceil(a.end.getTime()));
      break;
    }
  }
}

/** An SQL condition with its bound values. */
interface Sql { sql: string; bindings: Knex.Value[] }

/**
 * One number condition on a stored (exact) value v. `eq` matches the range the search value's
 * precision implies; `ap` within 10 %; the others compare with the value itself.
 * https://hl7.org/fhir/R4/search.html#number
 */
function numberSql(col: string, n: NumberValue): Sql {
  // a precision finer than a double holds (1.000...0001) leaves no range around the value: the value itself
  const point = n.low === n.high;
  switch (n.prefix) {
    case 'eq': return point ? { sql: `${col} = ?`, bindings: [n.value] } : { sql: `${col} >= ? AND ${col} < ?`, bindings: [n.low, n.high] };
    case 'ne': return point ? { sql: `${col} <> ?`, bindings: [n.value] } : { sql: `(${col} < ? OR ${col} >= ?)`, bindings: [n.low, n.high] };
    case 'gt': case 'sa': return { sql: `${col} > ?`, bindings: [n.value] };
    case 'lt': case 'eb': return { sql: `${col} < ?`, bindings: [n.value] };
    case 'ge': return { sql: `${col} >= ?`, bindings: [n.value] };
    case 'le': return { sql: `${col} <= ?`, bindings: [n.value] };
    case 'ap': {
      const d = Math.abs(n.value) * 0.1;
      return { sql: `${col} >= ? AND ${col} <= ?`, bindings: [n.value - d, n.value + d] };
    }
  }
}

function numberCondition(q: QB, col: string, n: NumberValue): void {
  const { sql, bindings } = numberSql(col, n);
  q.whereRaw(sql, bindings);
}

/**
 * One date condition on an index row (alias s) holding the range [low, high) a stored value
 * covers, for the search range [lo, hi), as https://hl7.org/fhir/R4/search.html#prefix says for
 * ranges:
 *
 * - eq: the search range contains the stored one (low >= lo, high <= hi); ne: it does not;
 * - gt: the stored range reaches above the search range (high > hi); lt: below it (low < lo);
 * - ge: gt or eq, which comes to high > hi or low >= lo; le: lt or eq, low < lo or high <= hi;
 * - sa: the stored range starts at or after the search range's end (low >= hi); eb: it ends
 *   before the search range starts (high <= lo);
 * - ap: the ranges overlap once the search range is widened (approximate()).
 *
 * The first term of each is a plain comparison of low or high, implied by the rest, so the
 * (resource_type, param, low) or (..., high) index can bound the scan.
 */
function dateRowSql(s: string, range: DateRange): Sql {
  const low = `${s}.low`;
  const high = `${s}.high`;
  const lo = range.start.getTime();
  const hi = range.end.getTime();
  switch (range.prefix) {
    case 'eq': return { sql: `${low} >= ? AND ${low} < ? AND ${high} <= ?`, bindings: [lo, hi, hi] };
    case 'ne': return { sql: `(${low} < ? OR ${high} > ?)`, bindings: [lo, hi] };
    case 'gt': return { sql: `${high} > ?`, bindings: [hi] };
    case 'lt': return { sql: `${low} < ?`, bindings: [lo] };
    case 'ge': return { sql: `${high} >= ? AND (${high} > ? OR ${low} >= ?)`, bindings: [lo, hi, lo] };
    case 'le': return { sql: `${low} < ? AND (${low} < ? OR ${high} <= ?)`, bindings: [hi, lo, hi] };
    case 'sa': return { sql: `${low} >= ?`, bindings: [hi] };
    case 'eb': return { sql: `${high} <= ?`, bindings: [lo] };
    case 'ap': {
      const a = approximate(range);
      return { sql: `${low} < ? AND ${high} > ?`, bindings: [a.end.getTime(), a.start.getTime()] };
    }
  }
}

const UCUM = 'http://unitsofmeasure.org';

/** The unit part of a quantity condition: the unit column (or the column's fixed unit) must be the one asked for. */
function unitCondition(db: Knex, q: QB, def: ColumnSearchParam, n: NumberValue, alias: string): void {
  if (n.system && n.system !== (def.unitSystem ?? UCUM)) { q.whereRaw('1 = 0'); return; }
  if (!n.code) return;
  if (def.unitColumn) q.whereRaw(`${columnSql(db, def, alias, def.unitColumn)} = ?`, [n.code]);
  else if (def.unit !== n.code) q.whereRaw('1 = 0');
}

/** A reference search value naming its target: Type/id, or a URL ending in Type/id (with or without /_history/v). */
const TYPED_REFERENCE = /(?:^|\/)([A-Z][A-Za-z]+)\/([^/]+?)(?:\/_history\/[^/]+)?$/;

interface ReferenceValue { type: string; id: string }

/**
 * The references a reference search value may stand for: `Type/id` (or a URL ending in it) is
 * that one; a bare id is that id of every type the parameter (or its :Type) may point at. Any
 * other value with a slash (`Patient/../x`, `Patient/`) is no reference: 400.
 */
function referenceCandidates(p: ParsedParam, value: string): ReferenceValue[] {
  const targets = p.targetType ? [p.targetType] : p.def.targets ?? [];
  const m = value.match(TYPED_REFERENCE);
  if (m) {
    if (targets.length && !targets.includes(m[1]!)) throw badRequest(`Parameter ${p.def.name} cannot refer to ${m[1]}`);
    return [{ type: m[1]!, id: m[2]! }];
  }
  if (value.includes('/')) throw badRequest(`Invalid reference '${value}' for search parameter ${p.def.name}: use id, Type/id or a URL ending in Type/id`);
  return targets.map((type) => ({ type, id: value }));
}

const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * The index codes a reference search value matches: `Type/id` for a reference (as references
 * are indexed), and, for an absolute URI, the URI as written too: canonical references
 * (QuestionnaireResponse.questionnaire, instantiatesCanonical ...) and references to other
 * servers are indexed as given. An absolute URI that names no `Type/id` matches only as written.
 */
function indexedReferenceCodes(p: ParsedParam, value: string): string[] {
  const typed = (): string[] => referenceCandidates(p, value).map((r) => `${r.type}/${r.id}`);
  if (!ABSOLUTE_URI.test(value)) return typed();
  return [...new Set([...(TYPED_REFERENCE.test(value) ? typed() : []), value])];
}

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

function whereIn(q: QB, col: string, values: unknown[], not = false): void {
  if (values.length === 0) { if (!not) q.whereRaw('1 = 0'); return; }
  q.whereRaw(`${col} ${not ? 'NOT IN' : 'IN'} (${placeholders(values.length)})`, values as Knex.Value[]);
}

/** `col IN (values)` as a condition of its own; `1 = 0` for no values. */
function inList(db: Knex, col: string, values: Knex.Value[]): Knex.Raw {
  return values.length ? db.raw(`${col} IN (${placeholders(values.length)})`, values) : db.raw('1 = 0');
}

/** The OR of conditions, parenthesised; `1 = 0` for none. */
function anyOf(db: Knex, conditions: Knex.Raw[]): Knex.Raw {
  if (conditions.length === 0) return db.raw('1 = 0');
  if (conditions.length === 1) return conditions[0]!;
  return db.raw(`(${conditions.map(() => '(?)').join(' OR ')})`, conditions);
}

/**
 * The ids of the rows of a chain target that all of `params` match (and the caller may see), as
 * a subquery over `<table> as <alias>c`.
 */
function chainSubquery(db: Knex, target: ResourceDefinition, params: ParsedParam[], alias: string, scope: RowScope): QB {
  const inner = `${alias}c`;
  const sub = db(`${target.table} as ${inner}`).select(`${inner}.id`);
  applyFilters(db, sub, target, { params }, scope, inner);
  return sub;
}

/**
 * The chains through one column reference parameter (patient.family=a&patient.birthdate=b...),
 * ANDed. The column holds one reference, so every chain must hold for the same target row: one
 * subquery per target type with every chain's inner parameter in it, rather than one subquery per
 * chain (each of which the optimizer would make one more semi-join in its join order search).
 */
function columnChains(db: Knex, q: QB, def: ColumnSearchParam, chains: ParsedParam[], alias: string, scope: RowScope): void {
  const col = db.raw(columnSql(db, def, alias)) as unknown as string;
  const innerOf = (p: ParsedParam, type: string): ChainTarget | undefined => p.chain!.find((c) => c.target.type === type);
  if (def.typeColumn) {
    // the type column says which table: a type every chain reaches
    const typeCol = quoted(alias, def.typeColumn);
    const types = chains[0]!.chain!.map((c) => c.target).filter((target) => chains.every((p) => innerOf(p, target.type)));
    q.where((any) => {
      for (const target of types) {
        any.orWhere((w) => {
          w.whereRaw(`${typeCol} = ?`, [target.type]);
          w.whereIn(col, chainSubquery(db, target, chains.map((p) => innerOf(p, target.type)!.param), alias, scope));
        });
      }
      if (types.length === 0) any.whereRaw('1 = 0');
    });
    return;
  }
  // a column holds ids of one table: each chain's first stored target that has its inner parameter
  const byTarget = new Map<string, { target: ResourceDefinition; params: ParsedParam[] }>();
  for (const p of chains) {
    const stored = (def.targets ?? []).find((t) => innerOf(p, t));
    if (!stored) { q.whereRaw('1 = 0'); return; }
    const c = innerOf(p, stored)!;
    const entry = byTarget.get(stored) ?? { target: c.target, params: [] };
    entry.params.push(c.param);
    byTarget.set(stored, entry);
  }
  for (const { target, params } of byTarget.values()) q.whereIn(col, chainSubquery(db, target, params, alias, scope));
}

/** The condition one occurrence of a column parameter puts on the row (chains through a column: columnChains). */
function columnParam(db: Knex, q: QB, p: ParsedParam, def: ColumnSearchParam, alias: string): void {
  const col = columnSql(db, def, alias);
  const typeCol = def.typeColumn ? quoted(alias, def.typeColumn) : undefined;
  if (p.missing !== undefined) {
    const absent = (def.missingValues ?? []) as Knex.Value[];
    if (p.missing) q.whereRaw(`(${col} IS NULL${absent.length ? ` OR ${col} IN (${placeholders(absent.length)})` : ''})`, absent);
    else { q.whereRaw(`${col} IS NOT NULL`); if (absent.length) whereIn(q, col, absent, true); }
    return;
  }
  if (def.type === 'date') {
    q.where((w) => {
      w.where((any) => { for (const range of p.dates) any.orWhere((x) => dateCondition(x, col, range, def.dateKind)); });
      if (def.missingValues?.length) whereIn(w, col, def.missingValues, true);
    });
    return;
  }
  if (def.type === 'number' || def.type === 'quantity') {
    q.where((any) => {
      for (const n of p.numbers) any.orWhere((x) => { numberCondition(x, col, n); if (def.type === 'quantity') unitCondition(db, x, def, n, alias); });
    });
    return;
  }
  if (def.type === 'token') {
    const values = p.tokens.flatMap((tok) => tokenColumnValues(def, tok));
    if (p.modifier === 'not') whereIn(q, col, values, true);
    else if (values.length === 0) q.whereRaw('1 = 0');
    else if (def.caseSensitive) whereExactIds(db, q, `${alias}.${def.column}`, values as string[]);
    else whereIn(q, col, values);
    return;
  }
  if (def.type === 'reference') {
    const refs = p.strings.flatMap((v) => referenceCandidates(p, v));
    if (!typeCol) {
      whereIn(q, col, refs.map((r) => r.id));
      return;
    }
    const byType = new Map<string, string[]>();
    for (const { type, id } of refs) byType.set(type, [...(byType.get(type) ?? []), id]);
    q.where((any) => {
      for (const [type, ids] of byType) any.orWhere((w) => { w.whereRaw(`${typeCol} = ?`, [type]); whereIn(w, col, ids); });
      if (byType.size === 0) any.whereRaw('1 = 0');
    });
    return;
  }
  if (def.type === 'string') {
    q.where(stringCondition(db, p, col, `LOWER(${col})`));
    return;
  }
  throw badRequest(`Search on ${def.type} parameter ${def.name} is not supported`);
}

/** SQLite refuses a LIKE pattern of more bytes than this (SQLITE_MAX_LIKE_PATTERN_LENGTH): "LIKE or GLOB pattern too complex". */
const SQLITE_LIKE_PATTERN_BYTES = 50_000;

/**
 * `expr LIKE 'value%'` (starts with) or `'%value%'` (contains) for a normalised search value, its
 * LIKE wildcards escaped and the value bound, never spliced. `longest` is the longest text `expr`
 * holds (the index keeps the first INDEX_VALUE_LENGTH characters of each value): a longer value
 * starts-with-matches by that prefix, as it was indexed, and cannot be contained. A pattern SQLite
 * would refuse as too long is an instr() instead (the same match: both sides are lower case, and
 * SQLite's LIKE folds ASCII case only).
 */
function likeCondition(db: Knex, expr: string, value: string, contains: boolean, longest?: number): Knex.Raw {
  let v = normalizeString(value);
  if (longest !== undefined && v.length > longest) {
    if (!contains) v = v.slice(0, longest);
    else if (characterCount(v) > longest) return db.raw('1 = 0');
  }
  const pattern = (contains ? '%' : '') + likeEscape(v) + '%';
  if (dialectOf(db) === 'sqlite' && Buffer.byteLength(pattern) > SQLITE_LIKE_PATTERN_BYTES) {
    return db.raw(`instr(${expr}, ?) ${contains ? '> 0' : '= 1'}`, [v]);
  }
  return db.raw(`${expr} LIKE ?${ESCAPE}`, [pattern]);
}

/**
 * OR of a string parameter's values: :exact compares the original value, otherwise the normalised
 * one starts with (or, :contains, contains) the normalised search value.
 */
function stringCondition(db: Knex, p: ParsedParam, exactColumn: string, normalised: string, longest?: number): Knex.Raw {
  return anyOf(db, p.strings.map((v) => (p.modifier === 'exact'
    ? db.raw(`${exactColumn} = ?`, [v])
    : likeCondition(db, normalised, v, p.modifier === 'contains', longest))));
}

/** The column values a token matches: the definition's mapping, else the code (and no value for a system the column cannot hold). */
function tokenColumnValues(def: ColumnSearchParam, tok: TokenParam): unknown[] {
  if (tok.code === undefined) return [];
  if (def.tokenToColumn) return def.tokenToColumn(tok.system, tok.code) ?? [];
  return tok.hasSystem && tok.system ? [] : [tok.code];
}

/** What one token value asks of an index row (alias s): its code, its system, or both. */
function tokenRowCondition(db: Knex, s: string, tok: TokenParam): Knex.Raw {
  const terms: string[] = [];
  const values: Knex.Value[] = [];
  if (tok.code !== undefined) { terms.push(`${s}.code = ?`); values.push(tok.code); }
  if (tok.hasSystem) {
    if (tok.system === undefined) terms.push(`${s}.system IS NULL`);
    else { terms.push(`${s}.system = ?`); values.push(tok.system); }
  }
  return db.raw(terms.length ? terms.join(' AND ') : '1 = 1', values);
}

/**
 * What one occurrence of an index parameter asks of one of the resource's index rows (alias
 * `<alias>s`, in the parameter's indexTable): a string, token, reference or uri value, a date
 * range, a number or quantity, a chained target's id, or (:missing) any row; its values ORed. For
 * :not the same condition, which no row may then meet.
 */
function indexRowCondition(db: Knex, p: ParsedParam, def: IndexSearchParam, alias: string, scope: RowScope): Knex.Raw {
  const s = `${alias}s`;
  if (p.chain) {
    // the index holds "Type/id": compare with each target type's matching ids so prefixed
    const concat = dialectOf(db) === 'mysql' ? `CONCAT(?, ${alias}c.id)` : `? || ${alias}c.id`;
    return anyOf(db, p.chain.map((c) => db.raw(`${s}.code IN ?`, [
      chainSubquery(db, c.target, [c.param], alias, scope).clearSelect().select(db.raw(concat, [`${c.target.type}/`])),
    ])));
  }
  if (p.missing !== undefined) return db.raw('1 = 1');
  switch (def.type) {
    case 'string': return stringCondition(db, p, `${s}.value`, `${s}.norm`, INDEX_VALUE_LENGTH);
    case 'reference': return inList(db, `${s}.code`, p.strings.flatMap((v) => indexedReferenceCodes(p, v)));
    case 'uri': return anyOf(db, p.strings.map((v) => uriRowCondition(db, s, v, p.modifier)));
    case 'date': return anyOf(db, p.dates.map((range) => raw(db, dateRowSql(s, range))));
    case 'number': return anyOf(db, p.numbers.map((n) => raw(db, numberSql(`${s}.value`, n))));
    case 'quantity': return anyOf(db, p.numbers.map((n) => quantityRowCondition(db, s, n)));
    default: return anyOf(db, p.tokens.map((tok) => tokenRowCondition(db, s, tok)));
  }
}

const raw = (db: Knex, c: Sql): Knex.Raw => db.raw(c.sql, c.bindings);

/**
 * One quantity value on an index row: the number as numberSql compares it, and the system and
 * the code when the search value gives them (`5.4|http://unitsofmeasure.org|mg`, `5.4||mg`: any
 * system). Units are compared as written: no conversion between units.
 */
function quantityRowCondition(db: Knex, s: string, n: NumberValue): Knex.Raw {
  const { sql, bindings } = numberSql(`${s}.value`, n);
  const terms = [sql];
  const values = [...bindings];
  if (n.system !== undefined) { terms.push(`${s}.system = ?`); values.push(n.system.slice(0, INDEX_VALUE_LENGTH)); }
  if (n.code !== undefined) { terms.push(`${s}.code = ?`); values.push(n.code.slice(0, INDEX_VALUE_LENGTH)); }
  return db.raw(terms.join(' AND '), values);
}

/**
 * One uri value on an index row (the URI in code, case-sensitive on both dialects): the URI
 * itself; :below, the URIs that start with it; :above, those it starts with. The index keeps the
 * first INDEX_VALUE_LENGTH characters of a URI, and a longer search value compares by as many.
 * https://hl7.org/fhir/R4/search.html#uri
 */
function uriRowCondition(db: Knex, s: string, value: string, modifier: ParsedParam['modifier']): Knex.Raw {
  const code = `${s}.code`;
  const v = value.slice(0, INDEX_VALUE_LENGTH); // as index-entries.ts clips what it stores
  const chars = dialectOf(db) === 'mysql' ? 'CHAR_LENGTH' : 'LENGTH';
  // the bound first: the (resource_type, param, code) index narrows the scan, the SUBSTR decides
  if (modifier === 'below') return db.raw(`${code} >= ? AND SUBSTR(${code}, 1, ?) = ?`, [v, [...v].length, v]);
  if (modifier === 'above') return db.raw(`${code} <= ? AND ${code} = SUBSTR(?, 1, ${chars}(${code}))`, [v, v]);
  return db.raw(`${code} = ?`, [v]);
}

/** `SELECT 1` from a parameter's index table, the rows of the resource at `alias` for that parameter (alias `<alias>s`). */
function indexRows(db: Knex, type: string, def: IndexSearchParam, alias: string): QB {
  const s = `${alias}s`;
  return db(`${indexTable(def)} as ${s}`).select(db.raw('1'))
    .where(`${s}.resource_type`, type).andWhere(`${s}.param`, def.name).andWhereRaw(`${s}.resource_id = ${alias}.id`);
}

/** The column values a token parameter with a native column matches (none: it matches by the index alone). */
function nativeValues(p: ParsedParam, def: IndexSearchParam): unknown[] {
  const native = def.native;
  if (!native || def.type !== 'token' || p.chain || p.missing !== undefined) return [];
  return p.tokens.flatMap((tok) => (tok.code === undefined ? [] : native.tokenToColumn(tok.system, tok.code) ?? []));
}

/**
 * A token parameter whose rows written natively (no kept version, hence maybe no index rows)
 * match by a column: its index rows, or no kept version and the column; negated for :not.
 */
function nativeTokenParam(db: Knex, q: QB, type: string, p: ParsedParam, def: IndexSearchParam, alias: string, scope: RowScope): void {
  const native = def.native!;
  const values = nativeValues(p, def);
  const matches = (w: QB): void => {
    w.whereExists(indexRows(db, type, def, alias).andWhere(indexRowCondition(db, p, def, alias, scope)));
    const kept = db('resource_history as kh').select(db.raw('1')).where('kh.resource_type', type).andWhereRaw(`kh.resource_id = ${alias}.id`);
    w.orWhere((x) => { x.whereNotExists(kept); whereIn(x, quoted(alias, native.column), values); });
  };
  if (p.modifier === 'not') q.whereNot(matches); else q.where(matches);
}

/** Conditions without repeats (the same SQL and values): ANDing a condition with itself changes nothing. */
function distinct(conditions: Knex.Raw[]): Knex.Raw[] {
  const seen = new Set<string>();
  return conditions.filter((c) => {
    const { sql, bindings } = c.toSQL();
    const key = JSON.stringify([sql, bindings]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The positive occurrences of one index parameter, ANDed: each met by some index row of the
 * resource. The first is an EXISTS, as a single occurrence is, which the optimizer may turn into
 * a semi-join and start the search from. Every further one is a condition of one derived table
 * joined on the resource id: the resources with a row meeting any of those conditions, grouped,
 * HAVING each condition met by some row. The aggregate keeps the optimizer from flattening it, so
 * its join order search sees two tables however often the parameter repeats: an EXISTS per
 * occurrence is a semi-join per occurrence, and that search grows combinatorially with them (12
 * chained repetitions took 20 s to plan on MariaDB 10.11; see docs/limits.md).
 */
function indexMatches(db: Knex, q: QB, type: string, def: IndexSearchParam, occurrences: ParsedParam[], alias: string, scope: RowScope, slot: string): void {
  const [first, ...conditions] = distinct(occurrences.map((p) => indexRowCondition(db, p, def, alias, scope)));
  q.whereExists(indexRows(db, type, def, alias).andWhere(first!));
  if (conditions.length === 0) return;
  const s = `${alias}s`;
  const matched = db(`${indexTable(def)} as ${s}`).select(`${s}.resource_id as hms_id`)
    .where(`${s}.resource_type`, type).andWhere(`${s}.param`, def.name).andWhere(anyOf(db, conditions))
    .groupBy(`${s}.resource_id`)
    .havingRaw(conditions.map(() => 'MAX(CASE WHEN ? THEN 1 ELSE 0 END) = 1').join(' AND '), conditions);
  whereWithinDeadline(db, matched);
  q.join(matched.as(slot), `${slot}.hms_id`, `${alias}.id`);
}

/**
 * An occurrence no index row of the resource may meet (:not, :missing=true): a NOT EXISTS of its
 * own, which MariaDB and SQLite never flatten into the join (each is a lookup per row considered).
 */
function indexExclusion(db: Knex, q: QB, type: string, p: ParsedParam, def: IndexSearchParam, alias: string, scope: RowScope): void {
  q.whereNotExists(indexRows(db, type, def, alias).andWhere(indexRowCondition(db, p, def, alias, scope)));
}

/**
 * Applies the filters of a search (not paging) to a query over `<table> as <alias>`, narrowed to
 * what `scope` lets the caller see of the type and of every type a chain reaches into. Repeated
 * parameters over the index tables, and chains through one column, are grouped (indexMatches,
 * columnChains) so the statement's cost to plan does not grow combinatorially with repetitions.
 */
export function applyFilters(db: Knex, q: QB, def: ResourceDefinition, req: Pick<SearchRequest, 'params'>, scope: RowScope, alias = 't'): QB {
  if (def.softDelete) q.whereNull(`${alias}.deleted_at`);
  whereOfType(q, def, alias);
  whereWithinDeadline(db, q); // SQLite: a runaway scan stops at HMS_STATEMENT_TIMEOUT
  scope.narrow(db, q, def, alias);
  const chains = new Map<string, { def: ColumnSearchParam; params: ParsedParam[] }>();
  const matches = new Map<string, { def: IndexSearchParam; params: ParsedParam[] }>();
  const group = <D>(into: Map<string, { def: D; params: ParsedParam[] }>, d: D & { name: string }, p: ParsedParam): void => {
    const g = into.get(d.name) ?? { def: d, params: [] };
    g.params.push(p);
    into.set(d.name, g);
  };
  for (const p of req.params) {
    if (p.def.source === 'column') {
      if (p.chain) group(chains, p.def, p); else columnParam(db, q, p, p.def, alias);
    } else if (nativeValues(p, p.def).length) {
      nativeTokenParam(db, q, def.type, p, p.def, alias, scope);
    } else if (p.modifier === 'not' || p.missing === true) {
      indexExclusion(db, q, def.type, p, p.def, alias, scope);
    } else group(matches, p.def, p);
  }
  for (const c of chains.values()) columnChains(db, q, c.def, c.params, alias, scope);
  [...matches.values()].forEach((m, i) => indexMatches(db, q, def.type, m.def, m.params, alias, scope, `${alias}m${i}`));
  return q;
}

/** A bare identifier is qualified with the table alias; expressions are used as written. */
const qualify = (expr: string): string => (/^[a-z_][a-z0-9_]*$/i.test(expr) ? `t.${expr}` : expr);

export interface OrderKey { expr: string; descending: boolean }

/**
 * The ORDER BY keys of a request: the requested sorts, then id as the tie-breaker. Text sorts
 * ignore case on both dialects (MySQL's collation does; SQLite needs NOCASE).
 */
export function orderKeys(req: Pick<SearchRequest, 'sort'>, dialect: 'mysql' | 'sqlite'): OrderKey[] {
  const keys: OrderKey[] = [];
  for (const s of req.sort) {
    for (const e of s.expressions) {
      // NULLs sort after every value (before, descending) on both dialects: a flag key first
      keys.push({ expr: `(CASE WHEN ${qualify(e)} IS NULL THEN 1 ELSE 0 END)`, descending: s.descending });
      keys.push({ expr: qualify(e) + (s.text && dialect === 'sqlite' ? ' COLLATE NOCASE' : ''), descending: s.descending });
    }
  }
  if (!keys.some((k) => k.expr === 't.id')) keys.push({ expr: 't.id', descending: false });
  return keys;
}

export interface Cursor { direction: 'next' | 'prev'; values: unknown[] }

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.direction === 'next' ? 'n' : 'p', ...c.values])).toString('base64url');
}

export function decodeCursor(raw: string, keys: number): Cursor {
  try {
    const arr = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown[];
    if (!Array.isArray(arr) || arr.length !== keys + 1 || (arr[0] !== 'n' && arr[0] !== 'p')) throw new Error('shape');
    if (!arr.slice(1).every((v) => v === null || typeof v === 'string' || typeof v === 'number')) throw new Error('values');
    return { direction: arr[0] === 'n' ? 'next' : 'prev', values: arr.slice(1) };
  } catch {
    throw badRequest('Invalid or stale _cursor: start the search again from its first page');
  }
}

/**
 * Orders the query by the keys and, given a cursor, keeps only rows after it (next) or before it
 * (prev, with every direction flipped; the caller reverses the rows back).
 */
export function applyKeyset(q: QB, keys: OrderKey[], cursor: Cursor | undefined, dialect: 'mysql' | 'sqlite'): QB {
  const backwards = cursor?.direction === 'prev';
  if (cursor) {
    const same = dialect === 'mysql' ? '<=>' : 'IS'; // NULL-safe equality
    q.where((outer) => {
      keys.forEach((k, i) => {
        // nothing sorts strictly after (or before) NULL within the NULL group: that branch is empty
        if (cursor.values[i] === null) return;
        outer.orWhere((w) => {
          for (let j = 0; j < i; j++) w.whereRaw(`${keys[j]!.expr} ${same} ?`, [cursor.values[j] as Knex.Value]);
          const after = k.descending !== backwards ? '<' : '>';
          w.whereRaw(`${k.expr} ${after} ?`, [cursor.values[i] as Knex.Value]);
        });
      });
    });
  }
  for (const k of keys) q.orderByRaw(`${k.expr} ${k.descending !== backwards ? 'DESC' : 'ASC'}`);
  return q;
}
