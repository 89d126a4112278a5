/**
 * Parses a search query against a resource definition into a typed request, without I/O.
 * https://hl7.org/fhir/R4/search.html
 */
import { badRequest, FhirError } from '../outcome.js';
import { resourceDefinition, searchParam, type ResourceDefinition, type SearchParamDef } from '../registry.js';
import { parseDateParam, type DateRange } from './dates.js';
import { parseNumberParam, type NumberValue } from './numbers.js';
import { characterCount } from './normalize.js';
import { indexSortExpression } from './index-tables.js';
import { codePointName, forbiddenCharacter } from '../../characters.js';
import { DEFAULT_SEARCH_LIMITS, LIMIT_VARIABLES, MAX_CHAIN_DEPTH, type SearchLimits } from './limits.js';

export type Query = Record<string, string | string[] | undefined>;

export type Modifier = 'exact' | 'contains' | 'missing' | 'not' | 'above' | 'below';

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
  numbers: NumberValue[];
  missing?: boolean;
  /** Chained search (patient.family=Smith): per target type, the parameter on it (any may match). */
  chain?: ChainTarget[];
}

export interface ChainTarget { target: ResourceDefinition; param: ParsedParam }

/** _include / _revinclude: resources of `source` whose parameter `param` refers to (or from) the matches. */
export interface IncludeSpec {
  source: string;
  param: string;
  targetType?: string;
  iterate: boolean;
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
  includes: IncludeSpec[];
  revincludes: IncludeSpec[];
  /** Parameters that were ignored (lenient handling), with the reason. */
  ignored: { name: string; reason: string }[];
}

export interface ParseOptions {
  strict: boolean;
  defaultCount: number;
  maxCount: number;
  /** Bounds on the request's cost (DEFAULT_SEARCH_LIMITS when absent). */
  limits?: SearchLimits;
}

/** Result parameters HMS implements, and those it knows but does not implement yet. */
const RESULT_PARAMS = new Set(['_count', '_sort', '_total', '_summary', '_elements', '_cursor', '_format', '_pretty', '_include', '_revinclude']);
const MODIFIERS_BY_TYPE: Record<string, Modifier[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['missing', 'not'],
  date: ['missing'],
  reference: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  uri: ['above', 'below', 'missing'],
};

/** Values one parameter may OR together by default (each becomes a bound value in SQL); see SearchLimits.maxValues. */
export const MAX_VALUES = DEFAULT_SEARCH_LIMITS.maxValues;

/** A 400 for a request over one of its bounds, naming the bound and the variable that sets it. */
function tooCostly(message: string, bound: keyof SearchLimits): FhirError {
  const variable = LIMIT_VARIABLES[bound];
  return new FhirError(400, `${message}${variable ? ` (${variable})` : ''}`, 'too-costly');
}

/** A parameter's name without modifiers, per chain link: subject:Patient.name:exact -> subject.name. */
const bareName = (key: string): string => key.split('.').map((link) => link.split(':', 1)[0]).join('.');

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

/** The single value of a parameter that may appear at most once (400 otherwise). */
export function one(query: Query, name: string): string | undefined {
  const list = asList(query[name]);
  if (list.length > 1) throw badRequest(`Search parameter ${name} may appear only once`);
  return list[0];
}

/** Parses one `name[:modifier]=value` of a type; undefined when the value is empty (ignored). */
function parseParam(def: ResourceDefinition, def2: SearchParamDef, key: string, modifierRaw: string | undefined, raw: string, maxValues: number): ParsedParam | undefined {
  const name = def2.name;
  let modifier = modifierRaw as Modifier | undefined;
  let targetType: string | undefined;
  if (modifierRaw && def2.type === 'reference' && (def2.targets ?? []).includes(modifierRaw)) {
    targetType = modifierRaw;
    modifier = undefined;
  } else if (modifier && !(MODIFIERS_BY_TYPE[def2.type] ?? []).includes(modifier)) {
    // an unknown modifier changes what the client asked for: ignoring it would widen the result
    throw badRequest(`Modifier ':${modifierRaw}' is not supported on ${def2.type} parameter '${name}' of ${def.type}`);
  }
  const parsed: ParsedParam = { def: def2, modifier, targetType, strings: [], dates: [], tokens: [], numbers: [] };
  if (modifier === 'missing') {
    if (raw !== 'true' && raw !== 'false') throw badRequest(`${key} takes true or false, not '${raw}'`);
    parsed.missing = raw === 'true';
    return parsed;
  }
  const values = splitValues(raw).filter((v) => v !== '');
  if (values.length === 0) return undefined; // an empty value is ignored, as the spec says
  if (values.length > maxValues) throw tooCostly(`${key} has ${values.length} values: at most ${maxValues} may be OR-ed in one parameter`, 'maxValues');
  for (const v of values) {
    if (def2.type === 'date') parsed.dates.push(parseDateParam(v, name));
    else if (def2.type === 'token') parsed.tokens.push(parseToken(v));
    else if (def2.type === 'number' || def2.type === 'quantity') parsed.numbers.push(parseNumberParam(v, name, def2.type === 'quantity'));
    else parsed.strings.push(unescape(v));
  }
  return parsed;
}

/**
 * A chained parameter (patient.family=Smith, subject:Patient.name=x), one level deep: the
 * reference parameter and, for each stored type it may point at (or the one :Type names) that
 * has the inner parameter, that parameter parsed against the type. undefined: an empty value, or
 * (lenient) no target type has the inner parameter.
 */
function parseChain(def: ResourceDefinition, key: string, raw: string, ignore: (name: string, reason: string) => void, maxValues: number): ParsedParam | undefined {
  const dot = key.indexOf('.');
  const [refName, refType] = key.slice(0, dot).split(':', 2) as [string, string | undefined];
  const rest = key.slice(dot + 1);
  if (rest.includes('.')) throw badRequest(`Chained parameter '${key}': HMS chains ${MAX_CHAIN_DEPTH} level deep`);
  const ref = searchParam(def, refName);
  if (!ref || ref.type !== 'reference') throw badRequest(`Chained parameter '${key}': '${refName}' is not a reference parameter of ${def.type}`);
  const stored = (ref.targets ?? []).filter((t) => resourceDefinition(t) && (!refType || t === refType));
  if (stored.length === 0) throw badRequest(`Chained parameter '${key}': ${refName} cannot point at a ${refType ?? 'type HMS stores'}`);
  const [innerName, innerModifier] = rest.split(':', 2) as [string, string | undefined];
  const chain: ChainTarget[] = [];
  for (const type of stored) {
    const target = resourceDefinition(type)!;
    const inner = searchParam(target, innerName);
    if (!inner) continue;
    const param = parseParam(target, inner, rest, innerModifier, raw, maxValues);
    if (!param) return undefined;
    chain.push({ target, param });
  }
  if (chain.length === 0) {
    ignore(key, `Chained parameter '${key}': no type ${refName} points at (${stored.join(', ')}) has a search parameter '${innerName}'`);
    return undefined;
  }
  return { def: ref, targetType: refType, strings: [], dates: [], tokens: [], numbers: [], chain };
}

/** Parses _include / _revinclude values: Source:param[:Target], or * for every reference parameter. */
function parseIncludes(def: ResourceDefinition, query: Query, key: '_include' | '_revinclude', opts: { strict: boolean }, req: SearchRequest): IncludeSpec[] {
  const out: IncludeSpec[] = [];
  for (const [k, v] of Object.entries(query)) {
    const [name, modifier] = k.split(':', 2);
    if (name !== key) continue;
    if (modifier !== undefined && modifier !== 'iterate' && modifier !== 'recurse') throw badRequest(`Modifier ':${modifier}' is not supported on ${key} (use :iterate)`);
    for (const raw of asList(v)) {
      if (raw === '*') {
        if (key === '_include') {
          for (const p of def.searchParams) if (p.type === 'reference') out.push({ source: def.type, param: p.name, iterate: modifier !== undefined });
        } else throw badRequest('_revinclude=* is not supported: name the source type and parameter, e.g. Encounter:patient');
        continue;
      }
      const [source, param, targetType] = raw.split(':');
      const sourceDef = source ? resourceDefinition(source) : undefined;
      const p = sourceDef && param ? searchParam(sourceDef, param) : undefined;
      if (!sourceDef || !p || p.type !== 'reference' || (targetType && !(p.targets ?? []).includes(targetType))) {
        const reason = `${key}=${raw} is not a reference search parameter of a type HMS serves`;
        if (opts.strict) throw badRequest(reason);
        req.ignored.push({ name: key, reason });
        continue;
      }
      if (key === '_include' && modifier === undefined && source !== def.type) {
        const reason = `${key}=${raw}: the source type must be ${def.type} (or use ${key}:iterate)`;
        if (opts.strict) throw badRequest(reason);
        req.ignored.push({ name: key, reason });
        continue;
      }
      out.push({ source: source!, param: param!, targetType, iterate: modifier !== undefined });
    }
  }
  return out;
}

/** A 400 for a name or value holding a character no FHIR value holds (src/characters.ts), naming the code point (never echoing the text). */
function checkCharacters(text: string, what: string): void {
  const code = forbiddenCharacter(text);
  if (code !== undefined) throw badRequest(`${what} holds the character ${codePointName(code)}, which no FHIR value holds`);
}

/** Result parameters whose values the server wrote itself (a cursor may be longer than any client value). */
const SERVER_WRITTEN = new Set(['_cursor']);

/** The characters of a text when it has more than `max` (undefined otherwise: within the bound). */
function overLength(text: string, max: number): number | undefined {
  // a text of at most `max` UTF-16 units has at most `max` characters: only longer ones are counted
  if (text.length <= max) return undefined;
  const n = characterCount(text);
  return n > max ? n : undefined;
}

/**
 * Refuses a parameter name over the name bound, a value (each comma-separated value alone) over
 * HMS_SEARCH_MAX_VALUE_LENGTH, and a name or value holding a character no FHIR value holds. The
 * refusal names the parameter (a name within its bound), never quotes the value.
 */
function checkNameAndValues(key: string, values: string[], limits: SearchLimits): void {
  const nameLength = overLength(key, limits.maxNameLength);
  if (nameLength !== undefined) throw tooCostly(`A search parameter name has ${nameLength} characters: at most ${limits.maxNameLength} are allowed`, 'maxNameLength');
  checkCharacters(key, 'A search parameter name');
  const bounded = !SERVER_WRITTEN.has(key.split(':', 1)[0]!);
  for (const raw of values) {
    if (bounded && raw.length > limits.maxValueLength) {
      for (const piece of splitValues(raw)) {
        const n = overLength(piece, limits.maxValueLength);
        if (n !== undefined) throw tooCostly(`A value of search parameter '${key}' has ${n} characters: at most ${limits.maxValueLength} are allowed in one value`, 'maxValueLength');
      }
    }
    checkCharacters(raw, `A value of search parameter '${key}'`);
  }
}

/**
 * Refuses a request over its bounds before any of it is parsed: the length of every name and
 * value, the number of search parameters (every occurrence), the occurrences of one name, the
 * _include/_revinclude values, the _sort keys.
 */
function checkBounds(query: Query, limits: SearchLimits): void {
  let params = 0;
  let includes = 0;
  const repeats = new Map<string, number>();
  for (const [key, value] of Object.entries(query)) {
    const list = asList(value);
    checkNameAndValues(key, list, limits);
    const n = list.length;
    const name = key.split(':', 1)[0]!;
    if (name === '_include' || name === '_revinclude') { includes += n; continue; }
    if (RESULT_PARAMS.has(name)) continue;
    params += n;
    const bare = bareName(key);
    repeats.set(bare, (repeats.get(bare) ?? 0) + n);
  }
  // the repeats first: the more precise answer to identifier=a&identifier=b&... (x200)
  for (const [name, n] of repeats) {
    if (n > limits.maxRepeats) throw tooCostly(`Search parameter '${name}' appears ${n} times: at most ${limits.maxRepeats} are allowed in one request`, 'maxRepeats');
  }
  if (params > limits.maxParams) throw tooCostly(`The search has ${params} search parameters: at most ${limits.maxParams} are allowed in one request`, 'maxParams');
  if (includes > limits.maxIncludes) throw tooCostly(`The search has ${includes} _include/_revinclude values: at most ${limits.maxIncludes} are allowed in one request`, 'maxIncludes');
  const sort = query._sort;
  const sortKeys = typeof sort === 'string' ? sort.split(',').filter(Boolean).length : 0;
  if (sortKeys > limits.maxSortKeys) throw tooCostly(`_sort has ${sortKeys} keys: at most ${limits.maxSortKeys} are allowed`, 'maxSortKeys');
}

/** Values a parsed parameter binds, its chain's included. */
const valueCount = (p: ParsedParam): number =>
  p.strings.length + p.tokens.length + p.dates.length + p.numbers.length + (p.chain ?? []).reduce((n, c) => n + valueCount(c.param), 0);

/** Parses the query of a search on one type. Throws a 400 FhirError on malformed values or a request over its bounds. */
export function parseSearch(def: ResourceDefinition, query: Query, opts: ParseOptions): SearchRequest {
  const limits = opts.limits ?? DEFAULT_SEARCH_LIMITS;
  checkBounds(query, limits);
  const req: SearchRequest = { params: [], count: opts.defaultCount, sort: [], ignored: [], includes: [], revincludes: [] };
  const ignore = (name: string, reason: string): void => {
    if (opts.strict) throw badRequest(`${reason} (Prefer: handling=strict)`);
    req.ignored.push({ name, reason });
  };

  for (const [key, rawValue] of Object.entries(query)) {
    if (key.includes('.') && !key.startsWith('_')) {
      for (const raw of asList(rawValue)) {
        const chained = parseChain(def, key, raw, ignore, limits.maxValues);
        if (chained) req.params.push(chained);
      }
      continue;
    }
    const [name, modifierRaw] = key.split(':', 2) as [string, string | undefined];
    if (name.startsWith('_') && RESULT_PARAMS.has(name)) continue;
    const def2 = searchParam(def, name);
    if (!def2) {
      ignore(key, `Unknown search parameter '${name}' for ${def.type}`);
      continue;
    }
    for (const raw of asList(rawValue)) {
      const parsed = parseParam(def, def2, key, modifierRaw, raw, limits.maxValues);
      if (parsed) req.params.push(parsed);
    }
  }
  const values = req.params.reduce((n, p) => n + valueCount(p), 0);
  if (values > limits.maxValues) throw tooCostly(`The search has ${values} values in all: at most ${limits.maxValues}`, 'maxValues');
  req.includes = parseIncludes(def, query, '_include', opts, req);
  req.revincludes = parseIncludes(def, query, '_revinclude', opts, req);

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
      // a generic type's index-backed parameter sorts by its index rows, which every resource of
      // the type has (a seed type's rows written natively have none: its parameters name a sort)
      const byIndex = p?.source === 'index' && def.storageKind === 'generic';
      const expressions = p?.sort ?? (byIndex ? [indexSortExpression(def.type, p, descending)] : undefined);
      if (!p || !expressions) {
        ignore('_sort', `Cannot sort ${def.type} by '${name}'`);
        continue;
      }
      req.sort.push({ name, descending, expressions, text: p.type === 'string' });
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
