/**
 * Parses a search query against a resource definition into a typed request, without I/O.
 * https://hl7.org/fhir/R4/search.html
 */
import { badRequest } from '../outcome.js';
import { searchParam, type ResourceDefinition, type SearchParamDef } from '../registry.js';
import { parseDateParam, type DateRange } from './dates.js';

export type Query = Record<string, string | string[] | undefined>;

export type Modifier = 'exact' | 'contains' | 'missing' | 'not';

export interface TokenParam { system?: string; code?: string; hasSystem: boolean }

export interface ParsedParam {
  def: SearchParamDef;
  modifier?: Modifier;
  /** References: the :[type] modifier (e.g. general-practitioner:Practitioner=123). */
  targetType?: string;
  /** OR-joined values (comma separated in the query). */
  strings: string[];
  dates: DateRange[];
  tokens: TokenParam[];
  missing?: boolean;
}

export interface SortKey { name: string; descending: boolean; expressions: string[]; text: boolean }

export type TotalMode = 'none' | 'estimate' | 'accurate';
export type SummaryMode = 'true' | 'false' | 'text' | 'data' | 'count';

export interface SearchRequest {
  /** AND-joined parameters. */
  params: ParsedParam[];
  count: number;
  sort: SortKey[];
  total?: TotalMode;
  summary?: SummaryMode;
  elements?: string[];
  cursor?: string;
  /** Parameters that were ignored (lenient handling), with the reason. */
  ignored: { name: string; reason: string }[];
}

export interface ParseOptions {
  strict: boolean;
  defaultCount: number;
  maxCount: number;
}

/** Result parameters HMS implements, and those it knows but does not implement yet. */
const RESULT_PARAMS = new Set(['_count', '_sort', '_total', '_summary', '_elements', '_cursor', '_format', '_pretty']);
const MODIFIERS_BY_TYPE: Record<string, Modifier[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['missing', 'not'],
  date: ['missing'],
  reference: ['missing'],
  number: ['missing'],
};

/** Splits a parameter value on unescaped commas and unescapes \, \| \$ \\. */
export function splitValues(raw: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) {
      cur += c + raw[++i];
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const unescape = (s: string): string => s.replace(/\\([\\,|$])/g, '$1');

/** Parses a token value: [system]|[code], |code, system|, or code. */
export function parseToken(raw: string): TokenParam {
  const i = raw.search(/(?<!\\)\|/);
  if (i < 0) return { code: unescape(raw), hasSystem: false };
  const system = unescape(raw.slice(0, i));
  const code = unescape(raw.slice(i + 1));
  return { system: system || undefined, code: code || undefined, hasSystem: true };
}

function asList(v: unknown): string[] {
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => typeof x === 'string')) throw badRequest('Search parameter values must be strings');
  return list as string[];
}

function one(query: Query, name: string): string | undefined {
  const list = asList(query[name]);
  if (list.length > 1) throw badRequest(`Search parameter ${name} may appear only once`);
  return list[0];
}

/** Parses the query of a search on one type. Throws a 400 FhirError on malformed values. */
export function parseSearch(def: ResourceDefinition, query: Query, opts: ParseOptions): SearchRequest {
  const req: SearchRequest = { params: [], count: opts.defaultCount, sort: [], ignored: [] };
  const ignore = (name: string, reason: string): void => {
    if (opts.strict) throw badRequest(`${reason} (Prefer: handling=strict)`);
    req.ignored.push({ name, reason });
  };

  for (const [key, rawValue] of Object.entries(query)) {
    const [name, modifierRaw] = key.split(':', 2) as [string, string | undefined];
    if (name.startsWith('_') && RESULT_PARAMS.has(name)) continue;
    const def2 = searchParam(def, name);
    if (!def2) {
      ignore(key, `Unknown search parameter '${name}' for ${def.type}`);
      continue;
    }
    let modifier = modifierRaw as Modifier | undefined;
    let targetType: string | undefined;
    if (modifierRaw && def2.type === 'reference' && (def2.targets ?? []).includes(modifierRaw)) {
      targetType = modifierRaw;
      modifier = undefined;
    } else if (modifier && !(MODIFIERS_BY_TYPE[def2.type] ?? []).includes(modifier)) {
      // an unknown modifier changes what the client asked for: ignoring it would widen the result
      throw badRequest(`Modifier ':${modifierRaw}' is not supported on ${def2.type} parameter '${name}'`);
    }
    for (const raw of asList(rawValue)) {
      const parsed: ParsedParam = { def: def2, modifier, targetType, strings: [], dates: [], tokens: [] };
      if (modifier === 'missing') {
        if (raw !== 'true' && raw !== 'false') throw badRequest(`${key} takes true or false, not '${raw}'`);
        parsed.missing = raw === 'true';
        req.params.push(parsed);
        continue;
      }
      const values = splitValues(raw).filter((v) => v !== '');
      if (values.length === 0) continue; // an empty value is ignored, as the spec says
      for (const v of values) {
        if (def2.type === 'date') parsed.dates.push(parseDateParam(v, name));
        else if (def2.type === 'token') parsed.tokens.push(parseToken(v));
        else parsed.strings.push(unescape(v));
      }
      req.params.push(parsed);
    }
  }

  const count = one(query, '_count');
  if (count !== undefined) {
    if (!/^\d+$/.test(count)) throw badRequest(`_count must be a non-negative integer, not '${count}'`);
    req.count = Math.min(Number(count), opts.maxCount);
  }

  const sort = one(query, '_sort');
  if (sort) {
    for (const item of sort.split(',').filter(Boolean)) {
      const descending = item.startsWith('-');
      const name = descending ? item.slice(1) : item;
      const p = searchParam(def, name);
      if (!p?.sort) {
        ignore('_sort', `Cannot sort ${def.type} by '${name}'`);
        continue;
      }
      req.sort.push({ name, descending, expressions: p.sort, text: p.type === 'string' });
    }
  }

  const total = one(query, '_total');
  if (total !== undefined) {
    if (!['none', 'estimate', 'accurate'].includes(total)) throw badRequest(`_total must be none, estimate or accurate, not '${total}'`);
    req.total = total as TotalMode;
  }

  const summary = one(query, '_summary');
  if (summary !== undefined) {
    if (!['true', 'false', 'text', 'data', 'count'].includes(summary)) throw badRequest(`_summary must be true, false, text, data or count, not '${summary}'`);
    req.summary = summary as SummaryMode;
  }

  const elements = one(query, '_elements');
  if (elements) req.elements = elements.split(',').map((e) => e.trim()).filter(Boolean);

  req.cursor = one(query, '_cursor');
  return req;
}
