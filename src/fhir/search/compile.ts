/**
 * Compiles a parsed search into SQL over the resource's table (alias t) and the search index
 * tables. Paging is keyset: the cursor holds the sort values of the last row seen, so pages stay
 * correct while rows are inserted. https://hl7.org/fhir/R4/search.html
 */
import type { Knex } from 'knex';
import { badRequest } from '../outcome.js';
import type { ColumnSearchParam, IndexSearchParam, ResourceDefinition } from '../registry.js';
import { approximate, type DateRange } from './dates.js';
import type { ParsedParam, SearchRequest, TokenParam } from './params.js';
import { normalizeString } from './normalize.js';
import { dateToSqlTimestamp } from '../../mappers/datatypes.js';

type QB = Knex.QueryBuilder;

const likeEscape = (s: string): string => s.replace(/[!%_]/g, (c) => '!' + c);
const ESCAPE = " ESCAPE '!'";

function sqlBound(d: Date, kind: 'date' | 'timestamp' | undefined, roundUp: boolean): string {
  if (kind === 'date') {
    const day = d.toISOString().slice(0, 10);
    const exact = d.getTime() === Date.parse(day + 'T00:00:00Z');
    if (exact || !roundUp) return day;
    return new Date(Date.parse(day + 'T00:00:00Z') + 86_400_000).toISOString().slice(0, 10);
  }
  // TIMESTAMP columns hold whole seconds: a bound inside a second rounds up to the next one
  const ms = d.getTime();
  return dateToSqlTimestamp(new Date(roundUp && ms % 1000 ? ms - (ms % 1000) + 1000 : ms - (ms % 1000)));
}

function dateCondition(q: QB, col: string, range: DateRange, kind: 'date' | 'timestamp' | undefined): void {
  const lo = sqlBound(range.start, kind, true);
  const hi = sqlBound(range.end, kind, true);
  switch (range.prefix) {
    case 'eq': q.where(col, '>=', lo).andWhere(col, '<', hi); break;
    case 'ne': q.where((w) => w.where(col, '<', lo).orWhere(col, '>=', hi)); break;
    case 'gt': case 'sa': q.where(col, '>=', hi); break;
    case 'lt': case 'eb': q.where(col, '<', lo); break;
    case 'ge': q.where(col, '>=', lo); break;
    case 'le': q.where(col, '<', hi); break;
    case 'ap': {
      const a = approximate(range);
      q.where(col, '>=', sqlBound(a.start, kind, false)).andWhere(col, '<', sqlBound(a.end, kind, true));
      break;
    }
  }
}

function referenceCandidates(p: ParsedParam, value: string): string[] {
  const targets = p.def.targets ?? [];
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
      for (const range of p.dates) w.orWhere((x) => dateCondition(x, col, range, def.dateKind));
      if (def.missingValues?.length) w.whereNotIn(col, def.missingValues as string[]);
    });
    return;
  }
  if (def.type === 'token') {
    const values = p.tokens.flatMap((tok) => tokenColumnValues(def, tok));
    if (p.modifier === 'not') q.whereNotIn(col, values as string[]);
    else if (values.length === 0) q.whereRaw('1 = 0');
    else q.whereIn(col, values as string[]);
    return;
  }
  if (def.type === 'reference') {
    const ids = p.strings.flatMap((v) => referenceCandidates(p, v)).map((r) => r.split('/')[1]!);
    q.whereIn(col, ids);
    return;
  }
  if (def.type === 'string') {
    q.where((w) => {
      for (const v of p.strings) {
        if (p.modifier === 'exact') w.orWhere(col, '=', v);
        else w.orWhereRaw(`LOWER(${col}) LIKE ?${ESCAPE}`, [(p.modifier === 'contains' ? '%' : '') + likeEscape(normalizeString(v)) + '%']);
      }
    });
    return;
  }
  void db;
  throw badRequest(`Search on ${def.type} parameter ${def.name} is not supported`);
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
    q.whereExists(sub((w) => {
      for (const v of p.strings) {
        if (p.modifier === 'exact') w.orWhere('s.value', '=', v);
        else w.orWhereRaw(`s.norm LIKE ?${ESCAPE}`, [(p.modifier === 'contains' ? '%' : '') + likeEscape(normalizeString(v)) + '%']);
      }
    }));
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

/** The ORDER BY keys of a request: the requested sorts, then id as the tie-breaker. */
export function orderKeys(req: Pick<SearchRequest, 'sort'>): OrderKey[] {
  const keys: OrderKey[] = [];
  for (const s of req.sort) for (const e of s.expressions) keys.push({ expr: qualify(e), descending: s.descending });
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
