/**
 * The R4 (4.0.1) JSON Schema of r4/json-schema.ts made to check what it means. As published it lets much invalid FHIR through,
 * because JSON Schema keywords only apply to values of their own kind:
 * - complex types and resources have `properties` but no `type: object`, so `extension: [5]`,
 *   `meta: "meta"` and a singleton sent as an array (`managingOrganization: [{...}]`) pass;
 * - integer, positiveInt and unsignedInt are `type: number` with a string `pattern`, which a
 *   number never meets, so `1.5`, `-3` and `-2147483649` pass; decimals admit Infinity (1e309);
 * - xhtml (Narrative.div) has no type at all, base64Binary no pattern;
 * - Reference.reference is any string;
 * - contained resources (ResourceList) are a oneOf over all 146 types, which costs seconds to
 *   compile into every type;
 * - a choice element ([x]) is one property per type, any number of which may be given, and the
 *   required primitives of datatypes (Extension.url ...) are not required.
 * Here each of those is put right once, when the schema is loaded: objects are objects, the
 * integer types are JSON integers in their ranges, decimals are finite, a div keeps the narrative
 * rules (narrative.ts), a reference has a valid shape (references.ts), a contained resource (or a
 * Bundle entry's) is checked against the schema of its own type, compiled on first use, one
 * choice of each [x] element is allowed, and datatypes' required primitives (and ext-1) are checked.
 */
import { Ajv, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv';
import { readR4Schema, isR4ResourceType, r4Corrections } from './r4/json-schema.js';
import { narrativeProblem } from './narrative.js';
import { referenceShape } from './references.js';

export const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';

const INT_MAX = 2_147_483_647;
/** The R4 integer types by the pattern the schema gives them: a JSON integer within its range. */
const INTEGER_TYPES: Record<string, { minimum: number; maximum: number }> = {
  '^-?([0]|([1-9][0-9]*))$': { minimum: -INT_MAX - 1, maximum: INT_MAX },
  '^[0]|([1-9][0-9]*)$': { minimum: 0, maximum: INT_MAX },
  '^[1-9][0-9]*$': { minimum: 1, maximum: INT_MAX },
};
const DECIMAL_PATTERN = '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$';
const BASE64_PATTERN = '^(\\s*([0-9a-zA-Z+/=]){4}\\s*)+$';

const present = (v: unknown): boolean => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);

/** The pattern of the element names of a choice (`value[x]`: valueString, _valueString ...), made once per choice. */
const choiceNames = new Map<string, RegExp>();

/** The element `name` of an object, or `_name` (extensions only) counts; `value[x]` matches any valueXxx. */
export function hasPrimitive(o: Record<string, unknown>, name: string): boolean {
  if (name.endsWith('[x]')) {
    let pattern = choiceNames.get(name);
    if (!pattern) choiceNames.set(name, (pattern = new RegExp(`^_?${name.slice(0, -3)}[A-Z]`)));
    return Object.keys(o).some((k) => pattern.test(k) && present(o[k]));
  }
  return present(o[name]) || present(o[`_${name}`]);
}

/** Error keywords whose value is valid FHIR that HMS cannot hold (422, not 400). */
export const BEYOND_RANGE = 'hmsFinite';

let ajv: Ajv | undefined;
let definitions: Record<string, Node> | undefined;
const compiled = new Map<string, ValidateFunction>();

/** The compiled validator of an R4 resource type (undefined for a name that is none). */
export function resourceValidator(type: string): ValidateFunction | undefined {
  let validate = compiled.get(type);
  if (validate || !isR4ResourceType(type)) return validate;
  validate = loadAjv().getSchema(`${SCHEMA_ID}#/definitions/${type}`);
  if (validate) compiled.set(type, validate);
  return validate;
}

type Node = Record<string, unknown>;

/** The definition a property of the schema refers to (itself or its items), if it is one of a complex type or backbone element. */
function definitionOf(defs: Record<string, Node>, property: Node | undefined): Node | undefined {
  const ref = (property?.$ref ?? (property?.items as Node | undefined)?.$ref) as string | undefined;
  const def = ref?.startsWith('#/definitions/') ? defs[ref.slice('#/definitions/'.length)] : undefined;
  return def?.properties ? def : undefined;
}

/**
 * Whether the R4 schema has an element at a dotted path of a resource type or datatype
 * (`class.value`, `protocolApplied.doseNumber[x]`: any choice of it).
 */
export function definesPath(type: string, path: string): boolean {
  loadAjv();
  let def: Node | undefined = definitions![type];
  const parts = path.split('.');
  for (const [i, part] of parts.entries()) {
    const properties = (def?.properties ?? {}) as Record<string, Node>;
    if (i === parts.length - 1) {
      if (!part.endsWith('[x]')) return Object.hasOwn(properties, part);
      const stem = part.slice(0, -3);
      return Object.keys(properties).some((k) => k.startsWith(stem) && /^[A-Z]/.test(k.slice(stem.length)));
    }
    def = Object.hasOwn(properties, part) ? definitionOf(definitions!, properties[part]) : undefined;
    if (!def) return false;
  }
  return false;
}

/** Puts one schema node right (see the module comment); returns the node to use in its place. */
function repair(node: Node): Node {
  if (node.type === 'number' && typeof node.pattern === 'string') {
    const integer = INTEGER_TYPES[node.pattern];
    const { pattern: _pattern, ...rest } = node;
    if (integer) return { ...rest, type: 'integer', ...integer };
    if (node.pattern === DECIMAL_PATTERN) return { ...rest, [BEYOND_RANGE]: true };
  }
  if (node.properties && node.type === undefined) node.type = 'object';
  for (const [name, value] of Object.entries((node.properties ?? {}) as Record<string, Node>)) {
    const fixed = repair(value);
    if (fixed.type === 'array' && fixed.items) {
      fixed.items = repair(fixed.items as Node);
      // primitive arrays and their _extension twins may hold null where the other has a value
      if (name.startsWith('_') || (node.properties as Node)[`_${name}`]) fixed.items = { if: { type: 'null' }, else: fixed.items };
    }
    (node.properties as Node)[name] = fixed;
  }
  return node;
}

const PRIMITIVES = ['boolean', 'integer', 'string', 'decimal', 'uri', 'url', 'canonical', 'base64Binary', 'instant', 'date', 'dateTime', 'time', 'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid'];

/**
 * The choice elements ([x]) of a definition: the schema spells each choice as its own property
 * (`effectiveDateTime`, `effectivePeriod` ...), stem plus type name, each with the element's one
 * description and never repeating; siblings such as reasonCode and reasonReference, which are two
 * elements, differ in description or repeat. Only one choice of each may be given.
 */
function choiceGroups(properties: Record<string, Node>, typeNames: Set<string>): string[][] {
  const groups = new Map<string, string[]>();
  for (const [name, prop] of Object.entries(properties)) {
    if (name.startsWith('_') || prop.type === 'array') continue;
    for (let i = 1; i < name.length; i++) {
      if (name[i]! < 'A' || name[i]! > 'Z' || !typeNames.has(name.slice(i))) continue;
      const key = `${name.slice(0, i)}|${String(prop.description)}`;
      groups.set(key, [...(groups.get(key) ?? []), name]);
      break;
    }
  }
  return [...groups.values()].filter((g) => g.length > 1);
}

/** The R4 schema with the repairs applied and the custom keywords' places marked. */
function repairedSchema(): Node {
  const schema = readR4Schema() as unknown as Node & { definitions: Record<string, Node> };
  delete schema.id;
  delete schema.$schema;
  delete schema.oneOf;
  delete schema.discriminator;
  schema.$id = SCHEMA_ID;
  const defs = schema.definitions;
  definitions = defs;
  defs.ResourceList = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } }, hmsResource: true };
  defs.xhtml = { type: 'string', hmsNarrative: true, description: defs.xhtml!.description };
  defs.base64Binary = { ...defs.base64Binary, pattern: BASE64_PATTERN };
  // "Dates SHALL be valid dates": the patterns let 2023-02-29 and 2021-04-31 through. The three
  // types, and the properties that repeat their pattern inline (the choices: occurrenceDateTime ...)
  const datePatterns = new Set(['date', 'dateTime', 'instant'].map((n) => String(defs[n]!.pattern)));
  for (const name of ['date', 'dateTime', 'instant']) defs[name] = { ...defs[name], hmsCalendar: true };
  for (const def of Object.values(defs)) {
    for (const prop of Object.values((def.properties ?? {}) as Record<string, Node>)) {
      const target = prop.type === 'array' ? (prop.items as Node | undefined) : prop;
      if (target && datePatterns.has(String(target.pattern))) target.hmsCalendar = true;
    }
  }
  for (const [name, def] of Object.entries(defs)) {
    const fixed = repair(def);
    if (INTEGER_TYPES[String(def.pattern)] || def.pattern === DECIMAL_PATTERN) defs[name] = fixed;
  }
  // datatypes' required primitives (4.0.1 profiles-types.json), but those the schema requires itself (Narrative.div)
  for (const [name, required] of Object.entries(r4Corrections().datatypeRequired)) {
    const own = new Set((defs[name]?.required ?? []) as string[]);
    const names = required.filter((n) => !own.has(n));
    if (defs[name] && names.length) defs[name].hmsPrimitives = names;
  }
  const typeNames = new Set([...Object.keys(defs).filter((k) => /^[A-Z]/.test(k)), ...PRIMITIVES.map((p) => p[0]!.toUpperCase() + p.slice(1))]);
  for (const def of Object.values(defs)) {
    const groups = def.properties ? choiceGroups(def.properties as Record<string, Node>, typeNames) : [];
    if (groups.length) def.hmsChoices = groups;
  }
  const reference = (defs.Reference!.properties as Node).reference as Node;
  (defs.Reference!.properties as Node).reference = { ...reference, hmsReference: true };
  return schema;
}

/** Where a custom keyword's data stands in the resource (Ajv's data validation context). */
interface KeywordCxt { instancePath: string }
type KeywordFn = ((schema: unknown, data: unknown, parent?: AnySchemaObject, cxt?: KeywordCxt) => boolean) & { errors?: Partial<ErrorObject>[] };

/** A custom keyword from a function that lists the errors of a value (none: valid). */
function keyword(name: string, errorsOf: (data: unknown, schema: unknown) => Partial<ErrorObject>[]): KeywordFn {
  const fn: KeywordFn = (schema, data, _parent, cxt) => {
    const errors = errorsOf(data, schema);
    fn.errors = errors.map((e) => ({ keyword: name, schemaPath: `#/${name}`, params: {}, ...e, instancePath: (cxt?.instancePath ?? '') + (e.instancePath ?? '') }));
    return errors.length === 0;
  };
  return fn;
}

/** A resource in a resource (contained, a Bundle entry): checked against its own type's schema. */
const containedResource = keyword('hmsResource', (data) => {
  const type = String((data as Node).resourceType);
  const validate = resourceValidator(type);
  if (!validate) return [{ message: `'${type.slice(0, 64)}' is not an R4 resource type`, params: { resourceType: type } }];
  return validate(data) ? [] : validate.errors ?? [];
});

/** A datatype's required primitives (r4Corrections().datatypeRequired), and ext-1: an extension has a value or extensions, not both. */
const primitives = keyword('hmsPrimitives', (data, schema) => {
  const o = data as Record<string, unknown>;
  const required = schema as string[];
  const errors: Partial<ErrorObject>[] = required.filter((name) => !hasPrimitive(o, name))
    .map((name) => ({ keyword: 'required', message: 'is required', params: { missingProperty: name } }));
  if (required.includes('url') && 'url' in o && hasPrimitive(o, 'value[x]') === present(o.extension)) {
    errors.push({ message: 'ext-1: an extension has either a value[x] or extensions, not both and not neither' });
  }
  return errors;
});

/** One choice of each choice element ([x]), its `_name` twin counted with it. */
const choices = keyword('hmsChoices', (data, schema) => {
  const o = data as Record<string, unknown>;
  const errors: Partial<ErrorObject>[] = [];
  for (const group of schema as string[][]) {
    const given = group.filter((name) => o[name] !== undefined || o[`_${name}`] !== undefined);
    if (given.length > 1) errors.push({ message: `gives ${given.join(' and ')}: only one choice of a [x] element may be given` });
  }
  return errors;
});

/** Narrative.div: the XHTML rules of narrative.ts. */
const narrative = keyword('hmsNarrative', (data) => {
  const problem = narrativeProblem(String(data));
  return problem ? [{ message: `is not valid narrative XHTML: ${problem}` }] : [];
});

/** date, dateTime, instant: a day that exists (the month's length, leap years). */
const calendar = keyword('hmsCalendar', (data) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(data));
  if (!m) return [];
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1] ?? 31;
  return d > days ? [{ message: `is not a calendar date (${m[0]})` }] : [];
});

/** Reference.reference: one of the shapes of references.ts. */
const reference = keyword('hmsReference', (data) => {
  const shape = referenceShape(String(data));
  return typeof shape === 'string' ? [{ message: `is not a valid reference: ${shape}` }] : [];
});

function loadAjv(): Ajv {
  if (ajv) return ajv;
  ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, allowUnionTypes: true });
  ajv.addKeyword({ keyword: 'hmsResource', type: 'object', schemaType: 'boolean', errors: true, validate: containedResource });
  ajv.addKeyword({ keyword: 'hmsNarrative', type: 'string', schemaType: 'boolean', errors: true, validate: narrative });
  ajv.addKeyword({ keyword: 'hmsPrimitives', type: 'object', schemaType: 'array', errors: true, validate: primitives });
  ajv.addKeyword({ keyword: 'hmsChoices', type: 'object', schemaType: 'array', errors: true, validate: choices });
  ajv.addKeyword({ keyword: 'hmsReference', type: 'string', schemaType: 'boolean', errors: true, validate: reference });
  ajv.addKeyword({ keyword: 'hmsCalendar', type: 'string', schemaType: 'boolean', errors: true, validate: calendar });
  ajv.addKeyword({ keyword: BEYOND_RANGE, type: 'number', schemaType: 'boolean', validate: (_s: unknown, data: number) => Number.isFinite(data) });
  ajv.addSchema(repairedSchema());
  return ajv;
}
