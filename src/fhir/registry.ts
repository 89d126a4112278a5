/**
 * The resource registry: each exposed type is declared once (src/fhir/resources/<Type>.ts) and
 * routes, CapabilityStatement, OpenAPI, search, validation and the write path read it.
 */
import type { Resource } from './types.js';
import type { Row } from '../mappers/column-map.js';

export type Interaction = 'read' | 'vread' | 'update' | 'delete' | 'history-instance' | 'create' | 'search-type';
export type SearchParamType = 'string' | 'token' | 'date' | 'reference' | 'number' | 'quantity' | 'uri' | 'special';

/** A token as indexed: system may be absent. */
export interface TokenValue { system?: string; code: string }

interface SearchParamBase {
  name: string;
  description: string;
  /** FHIRPath of what the parameter matches (published in the CapabilityStatement). */
  expression: string;
  /** SQL expressions to order by for _sort (absent = not sortable). */
  sort?: string[];
  /** Canonical of a SearchParameter HMS defines itself (absent = the standard R4 one). */
  definition?: string;
}

/** A parameter over a column of the resource's table. */
export interface ColumnSearchParam extends SearchParamBase {
  source: 'column';
  type: 'token' | 'date' | 'reference' | 'string' | 'number';
  column: string;
  /** Dates: a DATE column (day precision) or a TIMESTAMP column. */
  dateKind?: 'date' | 'timestamp';
  /** Tokens: column values a token matches (undefined = matches nothing); default: the code itself. */
  tokenToColumn?: (system: string | undefined, code: string) => unknown[] | undefined;
  /** Values the column holds when the element is absent (:missing=true). */
  missingValues?: unknown[];
  /** References: the types the column points at. */
  targets?: string[];
  /** Tokens compared case-sensitively (ids). */
  caseSensitive?: boolean;
}

/** A parameter over the search index tables, filled from the resource at each write. */
export interface IndexSearchParam extends SearchParamBase {
  source: 'index';
  type: 'string' | 'token' | 'reference';
  /** Values to index: strings for string params, tokens for token params, "Type/id" for references. */
  extract: (resource: Resource) => (string | TokenValue)[];
  targets?: string[];
}

export type SearchParamDef = ColumnSearchParam | IndexSearchParam;

/** A stored reference the write path checks before it writes (422 when the target is missing). */
export interface ReferenceCheck {
  column: string;
  expression: string;
  targetType: string;
  table: string;
  /** Rows of the table that count as the target type (e.g. users with role doctor or nurse). */
  where?: Record<string, string[]>;
  /** The table has deleted_at (deleted rows do not count). */
  softDelete: boolean;
}

export interface ResourceDefinition<R extends Resource = Resource> {
  type: string;
  table: string;
  profile: string;
  description: string;
  interactions: Interaction[];
  /** Soft delete through deleted_at (else delete is not offered). */
  softDelete: boolean;
  toRow(resource: R): Row;
  fromRow(row: Row, kept?: R): R;
  /** Business-rule and value checks beyond the JSON schema; throw FhirError (422) to refuse. */
  check?(resource: R): void;
  references: ReferenceCheck[];
  searchParams: SearchParamDef[];
  /** Elements marked isSummary in the R4 definition (for _summary=true). */
  summaryElements: string[];
}

const registry = new Map<string, ResourceDefinition>();

/** Adds a resource definition to the registry. */
export function defineResource<R extends Resource>(def: ResourceDefinition<R>): ResourceDefinition<R> {
  registry.set(def.type, def as unknown as ResourceDefinition);
  return def;
}

/** The definition of a type, or undefined when HMS does not expose it. */
export function resourceDefinition(type: string): ResourceDefinition | undefined {
  return registry.get(type);
}

/** Every exposed definition, in registration order. */
export function allResourceDefinitions(): ResourceDefinition[] {
  return [...registry.values()];
}

/** Parameters every type supports (https://hl7.org/fhir/R4/search.html#all). */
export const commonSearchParams: SearchParamDef[] = [
  {
    name: '_id', source: 'column', type: 'token', column: 'id', expression: 'Resource.id', caseSensitive: true,
    description: 'Logical id of the resource', sort: ['id'],
  },
  {
    name: '_lastUpdated', source: 'column', type: 'date', column: 'updated_at', dateKind: 'timestamp',
    expression: 'Resource.meta.lastUpdated', description: 'When the resource version last changed', sort: ['updated_at'],
  },
];

/** A parameter of a type (its own or a common one). */
export function searchParam(def: ResourceDefinition, name: string): SearchParamDef | undefined {
  return def.searchParams.find((p) => p.name === name) ?? commonSearchParams.find((p) => p.name === name);
}
