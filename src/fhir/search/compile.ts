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
import { normalizeString } from './normalize.js';
import { dateToSqlTimestamp } from '../../mappers/datatypes.js';
import { whereExactIds, whereOfType } from '../../db/resource-repository.js';
import { dialectOf } from '../../db/dialect.js';
import { whereWithinDeadline } from '../../db/statement-limits.js';
import type { NumberValue } from './numbers.js';
import type { RowScope } from '../access.js';

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

/**
 * One number condition on a stored (exact) value v. `eq` matches the range the search value's
 * precision implies; `ap` within 10 %; the others compare with the value itself.
 * https://hl7.org/fhir/R4/search.html#number
 */
function numberCondition(q: QB, col: string, n: NumberValue): void {
  switch (n.prefix) {
    case 'eq': q.whereRaw(`${col} >= ? AND ${col} < ?`, [n.low, n.high]); break;
    case 'ne': q.whereRaw(`(${col} < ? OR ${col} >= ?)`, [n.low, n.high]); break;
    case 'gt': case 'sa': q.whereRaw(`${col} > ?`, [n.value]); break;
    case 'lt': case 'eb': q.whereRaw(`${col} < ?`, [n.value]); break;
    case 'ge': q.whereRaw(`${col} >= ?`, [n.value]); break;
    case 'le': q.whereRaw(`${col} <= ?`, [n.value]); break;
    case 'ap': {
      const d = Math.abs(n.value) * 0.1;
      q.whereRaw(`${col} >= ? AND ${col} <= ?`, [n.value - d, n.value + d]);
      break;
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

function referenceCandidates(p: ParsedParam, value: string): string[] {
  const targets = p.targetType ? [p.targetType] : p.def.targets ?? [];
  const m = value.match(/(?:^|\/)([A-Z][A-Za-z]+)\/([^/]+?)(?:\/_history\/[^/]+)?$/);
  if (m) {
    if (targets.length && !targets.includes(m[1]!)) throw badRequest(`Parameter ${p.def.name} cannot refer to ${m[1]}`);
    return [`${m[1]}/${m[2]}`];
  }
  return targets.map((t) => `${t}/${value}`);
}

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

function whereIn(q: QB, col: string, values: unknown[], not = false): void {
  if (values.length === 0) { if (!not) q.whereRaw('1 = 0'); return; }
  q.whereRaw(`${col} ${not ? 'NOT IN' : 'IN'} (${placeholders(values.length)})`, values as Knex.Value[]);
}

/** The ids of the rows of one chain target that its parameter matches (and the caller may see), as a subquery. */
function chainSubquery(db: Knex, chain: ChainTarget, alias: string, scope: RowScope): QB {
  const inner = `${alias}c`;
  const sub = db(`${chain.target.table} as ${inner}`).select(`${inner}.id`);
  applyFilters(db, sub, chain.target, { params: [chain.param] }, scope, inner);
  return sub;
}

function columnParam(db: Knex, q: QB, p: ParsedParam, def: ColumnSearchParam, alias: string, scope: RowScope): void {
  const col = columnSql(db, def, alias);
  const typeCol = def.typeColumn ? quoted(alias, def.typeColumn) : undefined;
  if (p.chain) {
    // a column holds ids of one table (the first stored target), unless a type column says which
    const stored = (def.targets ?? []).find((t) => p.chain!.some((c) => c.target.type === t));
    const chains = typeCol ? p.chain : p.chain.filter((c) => c.target.type === stored);
    q.where((any) => {
      for (const c of chains) {
        any.orWhere((w) => {
          if (typeCol) w.whereRaw(`${typeCol} = ?`, [c.target.type]);
          w.whereIn(db.raw(col) as unknown as string, chainSubquery(db, c, alias, scope));
        });
      }
      if (chains.length === 0) any.whereRaw('1 = 0');
    });
    return;
  }
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
      whereIn(q, col, refs.map((r) => r.split('/')[1]!));
      return;
    }
    const byType = new Map<string, string[]>();
    for (const r of refs) {
      const [type, id] = r.split('/') as [string, string];
      byType.set(type, [...(byType.get(type) ?? []), id]);
    }
    q.where((any) => {
      for (const [type, ids] of byType) any.orWhere((w) => { w.whereRaw(`${typeCol} = ?`, [type]); whereIn(w, col, ids); });
      if (byType.size === 0) any.whereRaw('1 = 0');
    });
    return;
  }
  if (def.type === 'string') {
    q.where((w) => stringMatch(w, p, col, `LOWER(${col})`));
    return;
  }
  throw badRequest(`Search on ${def.type} parameter ${def.name} is not supported`);
}

/**
 * OR of a string parameter's values: :exact compares the original value, otherwise the normalised
 * one starts with (or, :contains, contains) the normalised search value.
 */
function stringMatch(w: QB, p: ParsedParam, exactColumn: string, normalised: string): void {
  for (const v of p.strings) {
    if (p.modifier === 'exact') w.orWhereRaw(`${exactColumn} = ?`, [v]);
    else w.orWhereRaw(`${normalised} LIKE ?${ESCAPE}`, [(p.modifier === 'contains' ? '%' : '') + likeEscape(normalizeString(v)) + '%']);
  }
}

function tokenColumnValues(def: ColumnSearchParam, tok: TokenParam): unknown[] {
  if (tok.code === undefined) return [];
  if (def.tokenToColumn) return def.tokenToColumn(tok.system, tok.code) ?? [];
  return tok.hasSystem && tok.system ? [] : [tok.code];
}

function indexParam(db: Knex, q: QB, type: string, p: ParsedParam, def: IndexSearchParam, alias: string, scope: RowScope): void {
  const table = def.type === 'string' ? 'search_string' : 'search_token';
  const s = `${alias}s`;
  const sub = (fill?: (x: QB) => void): QB => {
    const x = db(`${table} as ${s}`).select(db.raw('1'))
      .where(`${s}.resource_type`, type).andWhere(`${s}.param`, def.name).andWhereRaw(`${s}.resource_id = ${alias}.id`);
    if (fill) x.andWhere((w) => fill(w));
    return x;
  };
  if (p.chain) {
    // the index holds "Type/id": compare with each target type's matching ids so prefixed
    const concat = dialectOf(db) === 'mysql' ? `CONCAT(?, ${alias}c.id)` : `? || ${alias}c.id`;
    q.whereExists(sub((w) => {
      for (const c of p.chain!) w.orWhereIn(`${s}.code`, chainSubquery(db, c, alias, scope).clearSelect().select(db.raw(concat, [`${c.target.type}/`])));
    }));
    return;
  }
  if (p.missing !== undefined) {
    if (p.missing) q.whereNotExists(sub()); else q.whereExists(sub());
    return;
  }
  if (def.type === 'string') {
    q.whereExists(sub((w) => stringMatch(w, p, `${s}.value`, `${s}.norm`)));
    return;
  }
  if (def.type === 'reference') {
    const refs = p.strings.flatMap((v) => referenceCandidates(p, v));
    q.whereExists(sub((w) => w.whereIn(`${s}.code`, refs)));
    return;
  }
  const match = sub((w) => {
    for (const tok of p.tokens) {
      w.orWhere((x) => {
        if (tok.code !== undefined) x.where(`${s}.code`, tok.code);
        if (tok.hasSystem) {
          if (tok.system === undefined) x.whereNull(`${s}.system`);
          else x.where(`${s}.system`, tok.system);
        }
      });
    }
  });
  const native = def.native;
  const nativeValues = native ? p.tokens.flatMap((tok) => (tok.code === undefined ? [] : native.tokenToColumn(tok.system, tok.code) ?? [])) : [];
  const matches = (w: QB): void => {
    w.whereExists(match);
    if (native && nativeValues.length) {
      // a row without a kept version was written natively: its column speaks for it
      const kept = db('resource_history as kh').select(db.raw('1')).where('kh.resource_type', type).andWhereRaw(`kh.resource_id = ${alias}.id`);
      w.orWhere((x) => { x.whereNotExists(kept); whereIn(x, quoted(alias, native.column), nativeValues); });
    }
  };
  if (p.modifier === 'not') q.whereNot(matches); else q.where(matches);
}

/**
 * Applies the filters of a search (not paging) to a query over `<table> as <alias>`, narrowed to
 * what `scope` lets the caller see of the type and of every type a chain reaches into.
 */
export function applyFilters(db: Knex, q: QB, def: ResourceDefinition, req: Pick<SearchRequest, 'params'>, scope: RowScope, alias = 't'): QB {
  if (def.softDelete) q.whereNull(`${alias}.deleted_at`);
  whereOfType(q, def, alias);
  whereWithinDeadline(db, q); // SQLite: a runaway scan stops at HMS_STATEMENT_TIMEOUT
  scope.narrow(db, q, def, alias);
  for (const p of req.params) {
    if (p.def.source === 'column') columnParam(db, q, p, p.def, alias, scope);
    else indexParam(db, q, def.type, p, p.def, alias, scope);
  }
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
