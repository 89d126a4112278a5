/**
 * Compiles a parsed search into SQL over the resource's table (alias t) and the search index
 * tables. Paging is keyset: the cursor holds the sort values of the last row seen, so pages stay
 * correct while rows are inserted. https://hl7.org/fhir/R4/search.html
 */
import type { Knex } from 'knex';
import { badRequest } from '../outcome.js';
import type { ColumnSearchParam, IndexSearchParam, ResourceDefinition } from '../registry.js';
import { approximate, utc, type DateRange } from './dates.js';
import type { ParsedParam, SearchRequest, TokenParam } from './params.js';
import { normalizeString } from './normalize.js';
import { dateToSqlTimestamp } from '../../mappers/datatypes.js';
import { whereExactIds } from '../../db/resource-repository.js';

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
  const atLeast = (ms: number): void => { if (ms > MAX_MS) q.whereRaw('1 = 0'); else if (ms > MIN_MS) q.where(col, '>=', literal(ms, kind)); };
  const below = (ms: number): void => { if (ms <= MIN_MS) q.whereRaw('1 = 0'); else if (ms <= MAX_MS) q.where(col, '<', literal(ms, kind)); };
  const lo = range.start.getTime();
  const hi = range.end.getTime();
  switch (range.prefix) {
    case 'eq': atLeast(ceil(lo)); below(floor(hi - unit) + unit); break; // [v, v+unit) inside [lo, hi)
    case 'ne': {
      const from = ceil(lo);
      const to = floor(hi - unit) + unit;
      q.where((w) => {
        if (from > MIN_MS) w.orWhere(col, '<', literal(from, kind));
        if (to <= MAX_MS) w.orWhere(col, '>=', literal(to, kind));
        if (from <= MIN_MS && to > MAX_MS) w.whereRaw('1 = 0');
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

function referenceCandidates(p: ParsedParam, value: string): string[] {
  const targets = p.targetType ? [p.targetType] : p.def.targets ?? [];
  const m = value.match(/(?:^|\/)([A-Z][A-Za-z]+)\/([^/]+?)(?:\/_history\/[^/]+)?$/);
  if (m) {
    if (targets.length && !targets.includes(m[1]!)) throw badRequest(`Parameter ${p.def.name} cannot refer to ${m[1]}`);
    return [`${m[1]}/${m[2]}`];
  }
  return targets.map((t) => `${t}/${value}`);
}

function columnParam(db: Knex, q: QB, p: ParsedParam, def: ColumnSearchParam): void {
  const col = `t.${def.column}`;
  if (p.missing !== undefined) {
    const absent = def.missingValues ?? [];
    if (p.missing) q.where((w) => { w.whereNull(col); if (absent.length) w.orWhereIn(col, absent as string[]); });
    else { q.whereNotNull(col); if (absent.length) q.whereNotIn(col, absent as string[]); }
    return;
  }
  if (def.type === 'date') {
    q.where((w) => {
      w.where((any) => { for (const range of p.dates) any.orWhere((x) => dateCondition(x, col, range, def.dateKind)); });
      if (def.missingValues?.length) w.whereNotIn(col, def.missingValues as string[]);
    });
    return;
  }
  if (def.type === 'token') {
    const values = p.tokens.flatMap((tok) => tokenColumnValues(def, tok));
    if (p.modifier === 'not') q.whereNotIn(col, values as string[]);
    else if (values.length === 0) q.whereRaw('1 = 0');
    else if (def.caseSensitive) whereExactIds(db, q, col, values as string[]);
    else q.whereIn(col, values as string[]);
    return;
  }
  if (def.type === 'reference') {
    const ids = p.strings.flatMap((v) => referenceCandidates(p, v)).map((r) => r.split('/')[1]!);
    q.whereIn(col, ids);
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
    if (p.modifier === 'exact') w.orWhere(exactColumn, '=', v);
    else w.orWhereRaw(`${normalised} LIKE ?${ESCAPE}`, [(p.modifier === 'contains' ? '%' : '') + likeEscape(normalizeString(v)) + '%']);
  }
}

function tokenColumnValues(def: ColumnSearchParam, tok: TokenParam): unknown[] {
  if (tok.code === undefined) return [];
  if (def.tokenToColumn) return def.tokenToColumn(tok.system, tok.code) ?? [];
  return tok.hasSystem && tok.system ? [] : [tok.code];
}

function indexParam(db: Knex, q: QB, type: string, p: ParsedParam, def: IndexSearchParam): void {
  const table = def.type === 'string' ? 'search_string' : 'search_token';
  const sub = (fill?: (s: QB) => void): QB => {
    const s = db(`${table} as s`).select(db.raw('1'))
      .where('s.resource_type', type).andWhere('s.param', def.name).andWhereRaw('s.resource_id = t.id');
    if (fill) s.andWhere((w) => fill(w));
    return s;
  };
  if (p.missing !== undefined) {
    if (p.missing) q.whereNotExists(sub()); else q.whereExists(sub());
    return;
  }
  if (def.type === 'string') {
    q.whereExists(sub((w) => stringMatch(w, p, 's.value', 's.norm')));
    return;
  }
  if (def.type === 'reference') {
    const refs = p.strings.flatMap((v) => referenceCandidates(p, v));
    q.whereExists(sub((w) => w.whereIn('s.code', refs)));
    return;
  }
  const match = sub((w) => {
    for (const tok of p.tokens) {
      w.orWhere((x) => {
        if (tok.code !== undefined) x.where('s.code', tok.code);
        if (tok.hasSystem) {
          if (tok.system === undefined) x.whereNull('s.system');
          else x.where('s.system', tok.system);
        }
      });
    }
  });
  if (p.modifier === 'not') q.whereNotExists(match); else q.whereExists(match);
}

/** Applies the filters of a search (not paging) to a query over `<table> as t`. */
export function applyFilters(db: Knex, q: QB, def: ResourceDefinition, req: Pick<SearchRequest, 'params'>): QB {
  if (def.softDelete) q.whereNull('t.deleted_at');
  for (const p of req.params) {
    if (p.def.source === 'column') columnParam(db, q, p, p.def);
    else indexParam(db, q, def.type, p, p.def);
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
    for (const e of s.expressions) keys.push({ expr: qualify(e) + (s.text && dialect === 'sqlite' ? ' COLLATE NOCASE' : ''), descending: s.descending });
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
export function applyKeyset(q: QB, keys: OrderKey[], cursor?: Cursor): QB {
  const backwards = cursor?.direction === 'prev';
  if (cursor) {
    q.where((outer) => {
      keys.forEach((k, i) => {
        outer.orWhere((w) => {
          for (let j = 0; j < i; j++) w.whereRaw(`${keys[j]!.expr} = ?`, [cursor.values[j] as Knex.Value]);
          const after = k.descending !== backwards ? '<' : '>';
          w.whereRaw(`${k.expr} ${after} ?`, [cursor.values[i] as Knex.Value]);
        });
      });
    });
  }
  for (const k of keys) q.orderByRaw(`${k.expr} ${k.descending !== backwards ? 'DESC' : 'ASC'}`);
  return q;
}
