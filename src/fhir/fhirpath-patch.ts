/**
 * FHIRPath Patch: a Parameters resource of `operation` parameters (add, insert, delete, replace,
 * move), each naming the elements it changes by a FHIRPath expression. Pure: it reads the
 * Parameters (400 when malformed) and applies them to a copy of a resource (422 when an operation
 * cannot apply), evaluating the paths with fhirpath.js against R4's model, which also says which
 * elements repeat, which are choices and of what type each is. https://hl7.org/fhir/R4/fhirpatch.html
 *
 * Decisions where the spec is silent (docs/patch.md): `insert` and `move` count their index in
 * the whole list that holds the path's elements; an empty list is found by the path without its
 * last step; deleting the last element of a list removes the list; a primitive's `_x` companion
 * (its id and extensions) follows the value it belongs to; a path must yield elements of the
 * resource being patched (no literals, no other resources).
 */
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import { badRequest, unprocessable } from './outcome.js';
import type { Resource } from './types.js';

type Json = Record<string, unknown>;

/** A value to write: a typed value[x], a resource, or an element built from named parts. */
export type PatchValue =
  | { kind: 'typed'; type: string; json: unknown }
  | { kind: 'resource'; json: Json }
  | { kind: 'parts'; parts: PatchPart[] };

export interface PatchPart { name: string; value: PatchValue; at: string }

type Evaluator = (resource: Resource) => unknown[];

interface Base { path: string; evaluate: Evaluator; at: string }
export type FhirPathOperation =
  | (Base & { type: 'add'; name: string; value: PatchValue })
  | (Base & { type: 'insert'; value: PatchValue; index: number })
  | (Base & { type: 'delete' })
  | (Base & { type: 'replace'; value: PatchValue })
  | (Base & { type: 'move'; source: number; destination: number });

const OPERATION_TYPES = ['add', 'insert', 'delete', 'replace', 'move'] as const;
/** The parts each operation type needs (besides type and path), and those it may have. */
const NEEDS: Record<FhirPathOperation['type'], string[]> = {
  add: ['name', 'value'], insert: ['value', 'index'], delete: [], replace: ['value'], move: ['source', 'destination'],
};
const PARTS = new Set(['type', 'path', 'name', 'value', 'index', 'source', 'destination']);

/** Parameters' primitive value[x] types: the JSON key's suffix with its first letter lowered. https://hl7.org/fhir/R4/datatypes.html#primitive */
const PRIMITIVES = new Set([
  'base64Binary', 'boolean', 'canonical', 'code', 'date', 'dateTime', 'decimal', 'id', 'instant', 'integer', 'markdown', 'oid',
  'positiveInt', 'string', 'time', 'unsignedInt', 'uri', 'url', 'uuid',
]);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPrimitiveType = (type: string): boolean => type.startsWith('System.') || /^[a-z]/.test(type);
const capitalized = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const own = <T>(map: Record<string, T>, key: string): T | undefined => (Object.hasOwn(map, key) ? map[key] : undefined);

/** The value[x] of a Parameters parameter or part: its key, if it has exactly one. */
function valueKeyOf(p: Json, at: string): string | undefined {
  const keys = Object.keys(p).filter((k) => /^value[A-Z]/.test(k));
  if (keys.length > 1) throw badRequest(`${at} has more than one value[x] (${keys.join(', ')})`, at);
  return keys[0];
}

/** Reads a `value` part: value[x], a resource, or parts (an element built from its children). */
function readValue(p: Json, at: string): PatchValue {
  const key = valueKeyOf(p, at);
  const kinds = [key, p.resource, p.part].filter((x) => x !== undefined).length;
  if (kinds !== 1) throw badRequest(`${at}: a value is one of value[x], resource or part`, at);
  if (key) {
    const suffix = key.slice('value'.length);
    const lowered = suffix.charAt(0).toLowerCase() + suffix.slice(1);
    return { kind: 'typed', type: PRIMITIVES.has(lowered) ? lowered : suffix, json: structuredClone(p[key]) };
  }
  if (p.resource !== undefined) {
    if (!isObject(p.resource) || typeof p.resource.resourceType !== 'string') throw badRequest(`${at}.resource is not a resource`, `${at}.resource`);
    return { kind: 'resource', json: structuredClone(p.resource) };
  }
  if (!Array.isArray(p.part) || p.part.length === 0) throw badRequest(`${at}.part must be a non-empty array of the element's children`, `${at}.part`);
  return {
    kind: 'parts',
    parts: p.part.map((child, i) => {
      const cat = `${at}.part[${i}]`;
      if (!isObject(child) || typeof child.name !== 'string' || child.name === '') throw badRequest(`${cat} must have a name (the child element) and a value`, cat);
      return { name: child.name, value: readValue(child, cat), at: cat };
    }),
  };
}

/** A part's single primitive of one of the given value[x] kinds. */
function primitivePart(p: Json, at: string, keys: string[]): unknown {
  const key = valueKeyOf(p, at);
  if (!key || !keys.includes(key)) throw badRequest(`${at} takes ${keys.join(' or ')}`, at);
  return p[key];
}

/** Compiles a path once (a syntax error is a malformed patch: 400). */
function compilePath(path: string, at: string): Evaluator {
  try {
    const fn = fhirpath.compile(path, r4model, { resolveInternalTypes: false });
    return (resource) => fn(resource) as unknown[];
  } catch (err) {
    throw badRequest(`${at}: '${path.slice(0, 200)}' is not a FHIRPath expression (${(err as Error).message.split('\n')[0]!.slice(0, 200)})`, at);
  }
}

/** Reads a FHIRPath Patch Parameters resource into its operations; 400 when it is malformed. */
export function parseFhirPathPatch(body: unknown): FhirPathOperation[] {
  if (!isObject(body) || body.resourceType !== 'Parameters') throw badRequest('A FHIRPath Patch is a Parameters resource');
  const params = body.parameter;
  if (!Array.isArray(params) || params.length === 0) throw badRequest('The Parameters holds no operation: a FHIRPath Patch is one `operation` parameter per change', 'Parameters.parameter');
  return params.map((param, i) => {
    const at = `Parameters.parameter[${i}]`;
    if (!isObject(param) || param.name !== 'operation') throw badRequest(`${at} must be an 'operation' parameter`, at);
    if (!Array.isArray(param.part)) throw badRequest(`${at} has no parts (type, path ...)`, at);
    const parts = new Map<string, Json>();
    for (const [j, part] of param.part.entries()) {
      const pat = `${at}.part[${j}]`;
      if (!isObject(part) || typeof part.name !== 'string' || !PARTS.has(part.name)) {
        throw badRequest(`${pat}: an operation's parts are ${[...PARTS].join(', ')}`, pat);
      }
      if (parts.has(part.name)) throw badRequest(`${at} has '${part.name}' more than once`, pat);
      parts.set(part.name, { ...part, at: pat });
    }
    const typePart = parts.get('type');
    const type = typePart && primitivePart(typePart, String(typePart.at), ['valueCode', 'valueString']);
    if (!OPERATION_TYPES.includes(type as never)) throw badRequest(`${at}: the operation type must be one of ${OPERATION_TYPES.join(', ')}${type === undefined ? '' : `, not '${String(type).slice(0, 50)}'`}`, at);
    const t = type as FhirPathOperation['type'];
    const pathPart = parts.get('path');
    const path = pathPart && primitivePart(pathPart, String(pathPart.at), ['valueString']);
    if (typeof path !== 'string' || path.trim() === '') throw badRequest(`${at}: a ${t} needs a path (valueString)`, at);
    for (const need of NEEDS[t]) if (!parts.has(need)) throw badRequest(`${at}: a ${t} needs a ${need}`, at);
    for (const name of parts.keys()) {
      if (name !== 'type' && name !== 'path' && !NEEDS[t].includes(name)) throw badRequest(`${at}: a ${t} has no ${name}`, String(parts.get(name)!.at));
    }
    const whole = (name: string): number => {
      const part = parts.get(name)!;
      const n = primitivePart(part, String(part.at), ['valueInteger', 'valueUnsignedInt', 'valuePositiveInt']);
      if (!Number.isInteger(n) || (n as number) < 0) throw badRequest(`${at}: ${name} must be a whole number of 0 or more`, String(part.at));
      return n as number;
    };
    const base = { path, evaluate: compilePath(path, at), at };
    const value = (): PatchValue => readValue(parts.get('value')!, String(parts.get('value')!.at));
    switch (t) {
      case 'add': {
        const namePart = parts.get('name')!;
        const name = primitivePart(namePart, String(namePart.at), ['valueString', 'valueCode']);
        if (typeof name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw badRequest(`${at}: name must be an element name`, String(namePart.at));
        return { ...base, type: t, name, value: value() };
      }
      case 'insert': return { ...base, type: t, value: value(), index: whole('index') };
      case 'delete': return { ...base, type: t };
      case 'replace': return { ...base, type: t, value: value() };
      case 'move': return { ...base, type: t, source: whole('source'), destination: whole('destination') };
    }
  });
}

/** What R4's model says of one element of a type or backbone element. */
interface ElementInfo {
  /** Its model path, e.g. Patient.deceased (for messages). */
  path: string;
  name: string;
  /** Its type; for a choice element, the types its name may be suffixed with (Boolean, DateTime ...). */
  type?: string;
  choices?: string[];
  /** The model path its own children are found under (a backbone element's path, a datatype's name). */
  childPath: string;
  repeating: boolean;
}

/** The element `name` of the type or backbone element at model path `owner`, looking through the types it derives from. */
function elementOf(owner: string, name: string): ElementInfo | undefined {
  for (let t: string | undefined = owner; t; t = own(r4model.type2Parent, t)) {
    const path = `${t}.${name}`;
    const choices = own(r4model.choiceTypePaths, path);
    if (choices) return { path, name, choices, childPath: path, repeating: false };
    const elsewhere = own(r4model.pathsDefinedElsewhere, path);
    const type = own(r4model.path2Type, elsewhere ?? path);
    if (type) {
      const backbone = type === 'BackboneElement' || type === 'Element';
      return {
        path, name, type, childPath: backbone ? (elsewhere ?? path) : type,
        repeating: own(r4model.path2Repeating, path) === true || (elsewhere !== undefined && own(r4model.path2Repeating, elsewhere) === true),
      };
    }
  }
  return undefined;
}

/** Whether a value of type `value` may stand where type `element` is expected (Age where Quantity is). */
function fits(element: string, value: string): boolean {
  // a primitive's lexical form is checked by validating the patched resource
  if (isPrimitiveType(element) && isPrimitiveType(value)) return true;
  for (let t: string | undefined = value; t; t = own(r4model.type2Parent, t)) if (t === element) return true;
  return false;
}

/** The JSON key and content a value takes as element `el`. */
function materialize(value: PatchValue, el: ElementInfo, at: string): { key: string; json: unknown } {
  if (el.choices) {
    if (value.kind !== 'typed') throw unprocessable(`${el.path} is a choice of ${el.choices.join(', ')}: give it as value[x] to say which`, at);
    // the value's own type first (Age among Quantity, Age), else a type it derives from
    const type = capitalized(value.type);
    const choice = el.choices.find((c) => c === type) ?? (isPrimitiveType(value.type) ? undefined : el.choices.find((c) => fits(c, type)));
    if (!choice) throw unprocessable(`${el.path} takes ${el.choices.join(', ')}, not ${value.type}`, at);
    return { key: `${el.name}${choice}`, json: value.json };
  }
  const type = el.type!;
  switch (value.kind) {
    case 'typed':
      if (type === 'BackboneElement' || type === 'Element' || !fits(type, value.type)) throw unprocessable(`${el.path} is ${type === 'BackboneElement' || type === 'Element' ? 'an element: give its children as parts' : `of type ${type}`}, not ${value.type}`, at);
      return { key: el.name, json: value.json };
    case 'resource':
      if (type !== 'Resource') throw unprocessable(`${el.path} is of type ${type}, not a resource`, at);
      return { key: el.name, json: value.json };
    case 'parts':
      if (isPrimitiveType(type) || type === 'Resource') throw unprocessable(`${el.path} is of type ${type}: give it as value[x]`, at);
      return { key: el.name, json: build(value.parts, el.childPath) };
  }
}

/** An element built from parts: each part a child, repeating children gathered into lists. */
function build(parts: PatchPart[], owner: string): Json {
  const out: Json = {};
  for (const part of parts) {
    const el = elementOf(owner, part.name);
    if (!el) throw unprocessable(`${owner} has no element '${part.name}'`, part.at);
    const { key, json } = materialize(part.value, el, part.at);
    if (el.repeating) ((out[key] ??= []) as unknown[]).push(json);
    else if (Object.hasOwn(out, key)) throw unprocessable(`${el.path} does not repeat: give it once`, part.at);
    else out[key] = json;
  }
  return out;
}

/** A node of a fhirpath.js result (resolveInternalTypes: false). */
interface Node {
  data: unknown;
  path: string | null;
  propName?: string | null;
  index?: number | null;
  parentResNode: Node | null;
}

const isNode = (v: unknown): v is Node => isObject(v) && 'parentResNode' in v && 'data' in v;

/** The elements a path names in the working copy: nodes of the resource itself, nothing else. */
function evaluate(op: FhirPathOperation, resource: Resource): Node[] {
  let out: unknown[];
  try {
    out = op.evaluate(resource);
  } catch (err) {
    throw unprocessable(`${op.at}: the path '${op.path.slice(0, 200)}' cannot be evaluated (${(err as Error).message.split('\n')[0]!.slice(0, 200)})`, op.at);
  }
  for (const node of out) {
    let root: unknown = node;
    while (isNode(root) && root.parentResNode) root = root.parentResNode;
    if (!isNode(root) || root.data !== resource) throw unprocessable(`${op.at}: the path '${op.path.slice(0, 200)}' must name elements of the resource being patched`, op.at);
  }
  return out as Node[];
}

function single(op: FhirPathOperation, nodes: Node[]): Node {
  if (nodes.length !== 1) throw unprocessable(`${op.at}: a ${op.type} needs its path to match exactly one element; '${op.path.slice(0, 200)}' matches ${nodes.length === 0 ? 'none' : nodes.length}`, op.at);
  return nodes[0]!;
}

/** Where a node's value is held: the object, the JSON key (a choice's suffixed one) and the position in a list. */
interface Place { holder: Json; key: string; index: number | null; owner: string; name: string }

function placeOf(op: FhirPathOperation, node: Node): Place {
  const parent = node.parentResNode;
  if (!parent) throw unprocessable(`${op.at}: the path names the resource itself, which a ${op.type} cannot change`, op.at);
  const holder = parent.data;
  const name = node.propName ?? '';
  if (!isObject(holder)) throw unprocessable(`${op.at}: the path names an id or extension of a primitive value, which FHIRPath Patch cannot reach here; patch the value's element instead`, op.at);
  const owner = parent.path ?? '';
  let key = name;
  if (!Object.hasOwn(holder, key)) {
    const choices = own(r4model.choiceTypePaths, `${owner}.${name}`) ?? [];
    key = choices.map((c) => name + c).find((k) => Object.hasOwn(holder, k)) ?? '';
    if (!key) throw unprocessable(`${op.at}: cannot find where '${name}' is held`, op.at);
  }
  const index = Array.isArray(holder[key]) ? (node.index ?? null) : null;
  if (Array.isArray(holder[key]) && index === null) throw unprocessable(`${op.at}: cannot tell which of the '${name}' list the path names`, op.at);
  return { holder, key, index, owner, name };
}

/** Keeps a primitive list's `_x` companion (ids and extensions per item) aligned with a change to the list. */
function alongside(holder: Json, key: string, change: (list: unknown[]) => void): void {
  const companion = holder[`_${key}`];
  if (!Array.isArray(companion)) return;
  change(companion);
  if (companion.every((c) => c === null || c === undefined)) delete holder[`_${key}`];
}

/** Removes the element at a place; a list left empty goes too (FHIR has no empty arrays). */
function removeAt(place: Place): void {
  const { holder, key, index } = place;
  const list = holder[key];
  if (Array.isArray(list) && index !== null) {
    list.splice(index, 1);
    alongside(holder, key, (c) => c.splice(index, 1));
    if (list.length === 0) { delete holder[key]; delete holder[`_${key}`]; }
  } else {
    delete holder[key];
    delete holder[`_${key}`];
  }
}

/** The list a path names (its elements, all of one list), or the empty list it would be: for insert and move. */
function listOf(op: FhirPathOperation, resource: Resource, nodes: Node[]): { holder: Json; key: string; el: ElementInfo; list: unknown[] } {
  if (nodes.length > 0) {
    const first = placeOf(op, nodes[0]!);
    if (nodes.some((n) => n.parentResNode?.data !== first.holder || n.propName !== nodes[0]!.propName) || first.index === null) {
      throw unprocessable(`${op.at}: the path of a ${op.type} must name the elements of one list`, op.at);
    }
    const el = elementOf(first.owner, first.name);
    return { holder: first.holder, key: first.key, el: el!, list: first.holder[first.key] as unknown[] };
  }
  // an empty list: the path's container, and its last step the list's name
  const m = /^(.+)\.([A-Za-z][A-Za-z0-9_]*)$/.exec(op.path.trim());
  if (!m) throw unprocessable(`${op.at}: '${op.path.slice(0, 200)}' matches nothing, and has no container to ${op.type} into`, op.at);
  const container = single(op, evaluate({ ...op, evaluate: compilePath(m[1]!, op.at) } as FhirPathOperation, resource));
  if (!isObject(container.data)) throw unprocessable(`${op.at}: the container of '${op.path.slice(0, 200)}' is not an element`, op.at);
  const el = elementOf(container.path ?? '', m[2]!);
  if (!el) throw unprocessable(`${op.at}: ${container.path} has no element '${m[2]}'`, op.at);
  return { holder: container.data, key: m[2]!, el, list: [] };
}

function add(op: Extract<FhirPathOperation, { type: 'add' }>, resource: Resource): void {
  const node = single(op, evaluate(op, resource));
  if (!isObject(node.data)) throw unprocessable(`${op.at}: the path names a primitive value, which has no element '${op.name}' to add`, op.at);
  const holder = node.data;
  const el = elementOf(node.path ?? '', op.name);
  if (!el) throw unprocessable(`${op.at}: ${node.path} has no element '${op.name}'`, op.at);
  const { key, json } = materialize(op.value, el, op.at);
  if (el.repeating) {
    const list = holder[key];
    if (list === undefined) holder[key] = [json];
    else if (Array.isArray(list)) { list.push(json); alongside(holder, key, (c) => c.push(null)); }
    else throw unprocessable(`${op.at}: ${el.path} is held as a single value where a list belongs`, op.at);
    return;
  }
  const taken = el.choices ? el.choices.map((c) => op.name + c).find((k) => Object.hasOwn(holder, k)) : Object.hasOwn(holder, key) ? key : undefined;
  if (taken) throw unprocessable(`${op.at}: ${el.path} does not repeat and already has a value (${taken}): use replace`, op.at);
  holder[key] = json;
}

function insert(op: Extract<FhirPathOperation, { type: 'insert' }>, resource: Resource): void {
  const { holder, key, el, list } = listOf(op, resource, evaluate(op, resource));
  if (!el.repeating) throw unprocessable(`${op.at}: ${el.path} is not a list`, op.at);
  if (op.index > list.length) throw unprocessable(`${op.at}: index ${op.index} is beyond the end of the list (${list.length} elements)`, op.at);
  const { key: valueKey, json } = materialize(op.value, el, op.at);
  if (valueKey !== key) throw unprocessable(`${op.at}: the value belongs in ${valueKey}, not ${key}`, op.at);
  list.splice(op.index, 0, json);
  if (!Object.hasOwn(holder, key)) holder[key] = list;
  alongside(holder, key, (c) => c.splice(op.index, 0, null));
}

function remove(op: Extract<FhirPathOperation, { type: 'delete' }>, resource: Resource): void {
  const nodes = evaluate(op, resource);
  if (nodes.length === 0) return;
  if (nodes.length > 1) throw unprocessable(`${op.at}: a delete removes one element; '${op.path.slice(0, 200)}' matches ${nodes.length}`, op.at);
  removeAt(placeOf(op, nodes[0]!));
}

function replace(op: Extract<FhirPathOperation, { type: 'replace' }>, resource: Resource): void {
  const place = placeOf(op, single(op, evaluate(op, resource)));
  const el = elementOf(place.owner, place.name);
  if (!el) throw unprocessable(`${op.at}: ${place.owner} has no element '${place.name}'`, op.at);
  const { key, json } = materialize(op.value, el, op.at);
  const { holder, index } = place;
  if (key !== place.key) {
    // a choice takes another type: the old one goes, with its primitive companion
    removeAt({ ...place, index: null });
    holder[key] = json;
  } else if (index !== null) (holder[key] as unknown[])[index] = json;
  else holder[key] = json;
}

function move(op: Extract<FhirPathOperation, { type: 'move' }>, resource: Resource): void {
  const { holder, key, list } = listOf(op, resource, evaluate(op, resource));
  for (const [what, i] of [['source', op.source], ['destination', op.destination]] as const) {
    if (i >= list.length) throw unprocessable(`${op.at}: ${what} ${i} is beyond the end of the list (${list.length} elements)`, op.at);
  }
  const shift = (l: unknown[]) => { l.splice(op.destination, 0, l.splice(op.source, 1)[0]); };
  shift(list);
  alongside(holder, key, shift);
}

/** Applies the operations, in order, to a copy of the resource: the patched copy, or a 422 naming the operation that cannot apply. */
export function applyFhirPathPatch(resource: Resource, operations: FhirPathOperation[]): Resource {
  const working = structuredClone(resource);
  for (const op of operations) {
    switch (op.type) {
      case 'add': add(op, working); break;
      case 'insert': insert(op, working); break;
      case 'delete': remove(op, working); break;
      case 'replace': replace(op, working); break;
      case 'move': move(op, working); break;
    }
  }
  return working;
}
