/**
 * The resource registry: each exposed type is declared once (src/fhir/resources/<Type>.ts) and
 * routes, CapabilityStatement, OpenAPI, search, validation and the write path read it.
 */
import type { Knex } from 'knex';
import type { Resource } from './types.js';
import type { Row } from '../mappers/column-map.js';
import type { StorageHooks, StoredResource } from '../db/resource-repository.js';
import type { PolicyCategory } from '../auth/policy.js';

export type Interaction = 'read' | 'vread' | 'update' | 'patch' | 'delete' | 'history-instance' | 'history-type' | 'create' | 'search-type';
export type SearchParamType = 'string' | 'token' | 'date' | 'reference' | 'number' | 'quantity' | 'uri' | 'special' | 'composite';

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
  type: 'token' | 'date' | 'reference' | 'string' | 'number' | 'quantity';
  column: string;
  /**
   * An SQL expression to compare instead of the bare column (e.g. a date and a time column
   * combined); `t.` stands for the table alias. Per dialect.
   */
  sql?: { mysql: string; sqlite: string };
  /** Quantities: the column holding the value's UCUM unit code (absent: the unit is `unit`). */
  unitColumn?: string;
  /** Quantities: the unit every value of the column is in (UCUM code, or a currency code). */
  unit?: string;
  /** Quantities: the system of the unit codes (default UCUM; urn:iso:std:iso:4217 for money). */
  unitSystem?: string;
  /** Dates: a DATE column (day precision) or a TIMESTAMP column. */
  dateKind?: 'date' | 'timestamp';
  /** Tokens: column values a token matches (undefined = matches nothing); default: the code itself. */
  tokenToColumn?: (system: string | undefined, code: string) => unknown[] | undefined;
  /** Values the column holds when the element is absent (:missing=true). */
  missingValues?: unknown[];
  /** References: the types the column points at. */
  targets?: string[];
  /** References: a column holding the target's type, when the reference column holds ids of several types. */
  typeColumn?: string;
  /** Tokens compared case-sensitively (ids). */
  caseSensitive?: boolean;
}

/** A date, dateTime, instant or Period as indexed: the range [low, high) it covers, in epoch milliseconds. */
export interface DateRangeValue { low: number; high: number }
/** A Quantity (or Money, SimpleQuantity ...) as indexed. */
export interface QuantityIndexValue { value: number; system?: string; code?: string }
/**
 * A value to index: strings for string parameters; tokens (or bare codes) for token ones;
 * "Type/id" (or an absolute URL) for references; the URI for uri ones; ranges, numbers and
 * quantities for date, number and quantity ones.
 */
export type IndexValue = string | TokenValue | DateRangeValue | number | QuantityIndexValue;

/** A parameter over the search index tables, filled from the resource at each write. */
export interface IndexSearchParam extends SearchParamBase {
  source: 'index';
  type: 'string' | 'token' | 'reference' | 'uri' | 'date' | 'number' | 'quantity';
  /** Values to index, as IndexValue says for the parameter's type. */
  extract: (resource: Resource) => IndexValue[];
  targets?: string[];
  /**
   * Tokens: how rows written natively (no kept version, hence maybe no index rows) match, by a
   * column. API-written rows match by the index alone, which holds the exact code they state.
   */
  native?: { column: string; tokenToColumn: (system: string | undefined, code: string) => unknown[] | undefined };
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
  /**
   * The column is NOT NULL and the writing user stands in when the resource names nobody: a
   * system client (no user) must name the target, and an update keeps the stored value.
   */
  requiredUser?: boolean;
}

/** What the write path knows when it turns a resource into columns. */
export interface RowContext {
  /** The id the resource is written under. */
  id: string;
  /** The authenticated user (for NOT NULL created_by / recorded_by columns the resource leaves open). */
  userId?: string;
  /** The write's time, SQL 'YYYY-MM-DD HH:MM:SS' UTC. */
  now: string;
}

/** What a check against stored data sees, inside the write's transaction. */
export interface StoreCheckContext {
  trx: Knex.Transaction;
  id: string;
  userId?: string;
  /**
   * The columns about to be written. A check may set columns that keep their stored value across
   * updates (created_by, cancelled_by): the write path writes this very object.
   */
  columns: Row;
  /** The row as it is now (updates), undefined for a create. */
  current?: StoredResource;
  /**
   * The ids among `ids` of stored resources of `type` that the caller may read: a rule that names
   * other resources must answer for one out of the caller's reach as for one that does not exist.
   */
  visible(type: string, ids: string[]): Promise<Set<string>>;
  /** Whether a user is a doctor or nurse of this server, not deleted (looked up once per transaction). */
  isClinician(userId: string): Promise<boolean>;
}

/** What a definition's write effects see, inside the write's transaction. */
export interface WriteEffectsContext {
  trx: Knex.Transaction;
  id: string;
  /** The row before the write (undefined for a create). */
  before?: Row;
  /** The columns written (undefined for a delete). */
  after?: Row;
  /** Records an event of the write in the security log (in its transaction). */
  audit(action: string, data: Record<string, unknown>): Promise<void>;
  /** Runs once the transaction has committed (a revocation must not be heard before the change is visible). */
  afterCommit(fn: () => Promise<void>): void;
  /** Tells every API process to forget the cached sessions of a user. */
  revokeUser(userId: string): Promise<void>;
  /**
   * The writer's FHIR context bound to the write's transaction (db: trx) and to its after-commit
   * list (deferred): an effect that writes other resources does so through the interactions, in
   * the same transaction (e.g. the CoverageEligibilityResponse of a request: docs/eligibility.md).
   * A FhirContext (src/fhir/context.ts), typed unknown here: context.ts reaches this module
   * through access.ts, and importing it back would be an import cycle.
   */
  fhir: unknown;
}

export interface ResourceDefinition<R extends Resource = Resource> {
  type: string;
  /**
   * Where the type lives: 'table' (a seed table, with its own mapping) or 'generic' (the generic
   * store, built from the R4 definitions at start; src/fhir/generic).
   */
  storageKind?: 'table' | 'generic';
  /** The policy category a generic type's rules come from (src/auth/policy.ts); table-backed types have rules of their own. */
  category?: PolicyCategory;
  /** The table searched and read (alias t in SQL). */
  table: string;
  profile: string;
  description: string;
  interactions: Interaction[];
  /** Delete marks deleted_at (patients, users); otherwise delete removes the row (the history stays: reads answer 410). */
  softDelete: boolean;
  /** Rows of the table that are resources of this type (e.g. users with role doctor or nurse). */
  rowFilter?: Record<string, string[]>;
  /** The table has version_id (default true); without it every row reads as version 1. */
  versioned?: boolean;
  /** The column meta.lastUpdated and _lastUpdated come from (default updated_at). */
  updatedColumn?: string;
  /** Versions are kept in resource_history and merged on read (default true). */
  kept?: boolean;
  /** Storage beyond one row of `table` (e.g. Observation over vitals and lab_results). */
  storage?: StorageHooks;
  toRow(resource: R, ctx: RowContext): Row;
  fromRow(row: Row, kept?: R): R;
  /** Business-rule and value checks beyond the JSON schema; throw FhirError (422) to refuse. */
  check?(resource: R): void;
  /** Checks against stored data (double booking, one coverage per order ...); throw FhirError 409/422. */
  checkStored?(resource: R, ctx: StoreCheckContext): Promise<void>;
  references: ReferenceCheck[];
  searchParams: SearchParamDef[];
  /** Elements marked isSummary in the R4 definition (for _summary=true). */
  summaryElements: string[];
  /** Reference search parameters that put a resource in a patient's compartment ($everything). */
  compartment?: string[];
  /**
   * Rows are only ever appended, with time-ordered (UUIDv7) ids the server makes (the security
   * log): paged reads such as $everything see them as of their first page, so their own audit
   * rows do not keep extending the result.
   */
  appendOnly?: boolean;
  /** Operations on the type (published in the CapabilityStatement; routes in src/api/routes/operations.ts). */
  operations?: { name: string; definition: string }[];
  /**
   * The column of `table` that names the patient a row belongs to ('id' for Patient itself): the
   * access policy reaches rows through it. Absent: the type is not a patient's data (Practitioner).
   */
  patientColumn?: string;
  /** Named views for restricted readers (the policy's `view`): what such a reader sees of a resource. */
  views?: Record<string, (resource: R) => R>;
  /** Search parameters a view hides with the elements they search (a filter on them would tell the hidden values). */
  viewHiddenParams?: Record<string, string[]>;
  /** Named subsets of the type for restricted writers (the policy's `only`), tested on a resource and on a stored row. */
  subsets?: Record<string, { description: string; resource(resource: R): boolean; row(row: Row): boolean }>;
  /** Named groups of elements a restricted updater may change (the policy's `changes`): the resource without them. */
  elementGroups?: Record<string, { description: string; without(resource: R): R }>;
  /**
   * Its rows make assignments (a primary doctor, an appointment's or visit's practitioner, a care
   * team's members): a break-glass grant does not let its holder write them, or a two-minute grant
   * could become a lasting assignment.
   */
  assigns?: boolean;
  /** Effects of a write beyond the resource's own rows (a user account's sessions), in the write's transaction. */
  afterWrite?(ctx: WriteEffectsContext): Promise<void>;
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

/** The common parameters as they apply to a type (_lastUpdated reads the type's updated column). */
export function commonParamsOf(def: ResourceDefinition): SearchParamDef[] {
  const updated = def.updatedColumn ?? 'updated_at';
  return commonSearchParams.map((p) => (p.name === '_lastUpdated' && updated !== 'updated_at' ? { ...p, column: updated, sort: [updated] } as SearchParamDef : p));
}

/** A parameter of a type (its own or a common one). */
export function searchParam(def: ResourceDefinition, name: string): SearchParamDef | undefined {
  return def.searchParams.find((p) => p.name === name) ?? commonParamsOf(def).find((p) => p.name === name);
}
