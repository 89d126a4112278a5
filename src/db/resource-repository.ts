/**
 * The one write path of versioned resources: the row's columns, the version kept in
 * resource_history and the search index change together in one transaction.
 */
import type { Knex } from 'knex';
import type objection from 'objection';
import { modelsByTable, type SeedModel } from './models.js';
import { dialectOf } from './dialect.js';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';
import { appendRows } from './write-buffer.js';

export type Row = Record<string, unknown>;

/**
 * Row-level storage of a type whose resources are more than one row of one table (e.g. an
 * Observation is a row of the observations projection plus a measurement of a vitals row).
 * Each hook gets the complete row of the type's table (version_id, created_at, updated_at
 * included) and writes whatever else belongs with it.
 */
export interface StorageHooks {
  /** Joins and selects added to every read of rows (alias t); fromRow sees the extra columns. */
  joinReads?(db: Knex, q: Knex.QueryBuilder): void;
  insertRow?(trx: Knex, id: string, row: Row): Promise<void>;
  updateRow?(trx: Knex, id: string, row: Row): Promise<void>;
  /** Removes the row (hard delete). */
  deleteRow?(trx: Knex, id: string): Promise<void>;
}

/** What the repository needs to know about a resource type's storage. */
export interface StorageSpec {
  type: string;
  table: string;
  /** deleted_at marks deletion; otherwise a delete removes the row and only the history remains. */
  softDelete: boolean;
  /** Rows of the table that belong to the type. */
  rowFilter?: Record<string, string[]>;
  /** The table has version_id (default true). */
  versioned?: boolean;
  /** Column of the last change (default updated_at). */
  updatedColumn?: string;
  /** Versions are kept in resource_history (default true). */
  kept?: boolean;
  storage?: StorageHooks;
  /** The row holds the current resource (JSON) in this column: reads take it from there, not from resource_history. */
  document?: string;
  /** The type is indexed in the date, number and quantity tables too (the generic store). */
  indexAll?: boolean;
}

export interface IndexEntries {
  strings: { param: string; value: string; norm: string }[];
  tokens: { param: string; system: string | null; code: string }[];
  /** Date ranges [low, high) in epoch ms (types stored generically: the seed types search dates by column). */
  dates?: { param: string; low: number; high: number }[];
  numbers?: { param: string; value: number }[];
  quantities?: { param: string; value: number; system: string | null; code: string | null }[];
}

/**
 * The search index tables and the part of IndexEntries each holds: every type's strings and
 * tokens, and (indexAll) dates, numbers and quantities.
 */
export const INDEX_TABLES = [
  ['search_string', 'strings'], ['search_token', 'tokens'], ['search_date', 'dates'], ['search_number', 'numbers'], ['search_quantity', 'quantities'],
] as const;
const BASIC_INDEX = INDEX_TABLES.slice(0, 2);

export interface StoredResource {
  row: Row;
  /** The resource as last written through the write path (undefined for rows written natively). */
  kept?: Record<string, unknown>;
  versionId: number;
  lastUpdated: string;
  deleted: boolean;
}

export interface HistoryEntry {
  versionId: number;
  method: string;
  recordedAt: string;
  resource?: Record<string, unknown>;
}

export interface WriteInput {
  id: string;
  columns: Row;
  resource: Record<string, unknown>;
  index: IndexEntries;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  userId?: string;
}

/** Current time at the precision TIMESTAMP columns hold (whole seconds), as Date and SQL text. */
export function nowSeconds(): { date: Date; sql: string } {
  const date = new Date(Math.floor(Date.now() / 1000) * 1000);
  return { date, sql: dateToSqlTimestamp(date) };
}

const parseJson = (v: unknown): Record<string, unknown> | undefined =>
  v === null || v === undefined ? undefined : typeof v === 'string' ? JSON.parse(v) : (v as Record<string, unknown>);

/** The row of an id among the type's rows of its table (updates and deletes). */
function ofType(trx: Knex, spec: StorageSpec, id: string): { model?: objection.QueryBuilder<SeedModel>; plain?: Knex.QueryBuilder } {
  const model = modelsByTable[spec.table];
  const filter = Object.entries(spec.rowFilter ?? {});
  if (model) {
    const q = model.query(trx).where('id', id);
    for (const [column, values] of filter) q.whereIn(column, values);
    return { model: q };
  }
  const q = trx(spec.table).where('id', id);
  for (const [column, values] of filter) q.whereIn(column, values);
  return { plain: q };
}

/** Writes columns over the row of an id (through the table's model when it has one). */
async function patchOf(trx: Knex, spec: StorageSpec, id: string, row: Row): Promise<void> {
  const q = ofType(trx, spec, id);
  if (q.model) await q.model.patch(row);
  else await q.plain!.update(row);
}

/** Converts a row of currentQuery into a StoredResource. */
export function storedFromRow(spec: StorageSpec, raw: Row): StoredResource {
  const { _kept, ...row } = raw;
  return {
    row,
    kept: spec.document ? parseJson(row[spec.document]) : parseJson(_kept),
    versionId: Number(row.version_id ?? 1),
    lastUpdated: String(row[spec.updatedColumn ?? 'updated_at'] ?? row.created_at ?? ''),
    deleted: spec.softDelete ? row.deleted_at !== null && row.deleted_at !== undefined : false,
  };
}

/** Restricts a query over `alias` to the rows of the type (its row filter). */
export function whereOfType(q: Knex.QueryBuilder, spec: StorageSpec, alias = 't'): Knex.QueryBuilder {
  for (const [column, values] of Object.entries(spec.rowFilter ?? {})) q.whereIn(`${alias}.${column}`, values);
  return q;
}

/** Select of the type's rows joined with their current kept version. */
export function currentQuery(db: Knex, spec: StorageSpec): Knex.QueryBuilder {
  const q = db(`${spec.table} as t`).select('t.*');
  if (spec.kept !== false && !spec.document) {
    q.leftJoin('resource_history as h', (j) => {
      j.on('h.resource_type', '=', db.raw('?', [spec.type])).andOn('h.resource_id', '=', 't.id').andOn('h.version_id', '=', 't.version_id');
    }).select('h.resource as _kept', 'h.recorded_by as _recorded_by', 'h.recorded_at as _recorded_at');
  }
  spec.storage?.joinReads?.(db, q);
  return whereOfType(q, spec);
}

/**
 * Matches ids exactly. FHIR ids are case-sensitive, but the seed's tables use a case-insensitive
 * collation on MySQL (and their foreign keys pin it), so the indexed comparison is narrowed by a
 * binary one there.
 */
export function whereExactIds(db: Knex, q: Knex.QueryBuilder, column: string, ids: string[]): Knex.QueryBuilder {
  q.whereIn(column, ids);
  if (dialectOf(db) === 'mysql') q.andWhereRaw(`BINARY ?? IN (${ids.map(() => 'BINARY ?').join(', ')})`, [column, ...ids]);
  return q;
}

export const whereExactId = (db: Knex, q: Knex.QueryBuilder, column: string, id: string): Knex.QueryBuilder => whereExactIds(db, q, column, [id]);

const ID_SLOT = '\u0000id';
const readSql = new Map<string, { sql: string; bindings: unknown[] }>();

/**
 * A condition a read adds to its statement (the caller's reach, src/fhir/access.ts). Statements
 * are built once per `key` with placeholders for the values, so `apply` must build the same SQL
 * for any values under one key.
 */
export interface ReadNarrowing<V extends object = Record<string, unknown>> {
  key: string;
  values: V;
  apply(db: Knex, q: Knex.QueryBuilder, alias: string, values: V): void;
}

/** Placeholders standing for each value (arrays element by element) while a statement is built. */
function slotsOf(values: object): { slots: Record<string, unknown>; lookup: Map<string, unknown> } {
  const slots: Record<string, unknown> = {};
  const lookup = new Map<string, unknown>();
  for (const [k, v] of Object.entries(values)) {
    if (Array.isArray(v)) {
      slots[k] = v.map((x, i) => { const slot = `\u0000${k}.${i}`; lookup.set(slot, x); return slot; });
    } else {
      const slot = `\u0000${k}`;
      slots[k] = slot;
      lookup.set(slot, v);
    }
  }
  return { slots, lookup };
}

/** The read-by-id statement of a type (and narrowing shape), built once: it is the hottest query of the service. */
function readStatement(db: Knex, spec: StorageSpec, forUpdate: boolean, narrowing?: ReadNarrowing<object>): { sql: string; bindings: unknown[]; lookup?: Map<string, unknown> } {
  const mysql = dialectOf(db) === 'mysql';
  const key = `${spec.type}:${mysql}:${forUpdate}:${narrowing?.key ?? ''}`;
  const slots = narrowing ? slotsOf(narrowing.values) : undefined;
  let statement = readSql.get(key);
  if (!statement) {
    const q = whereExactId(db, currentQuery(db, spec), 't.id', ID_SLOT).limit(1);
    if (narrowing) narrowing.apply(db, q, 't', slots!.slots as never);
    if (forUpdate && mysql) q.forUpdate();
    statement = q.toSQL().toNative() as { sql: string; bindings: unknown[] };
    readSql.set(key, statement);
  }
  return { ...statement, lookup: slots?.lookup };
}

/** Reads the current state of one resource (deleted ones included, flagged), within a narrowing when given. */
export async function readCurrent(db: Knex, spec: StorageSpec, id: string, forUpdate = false, narrowing?: ReadNarrowing<object>): Promise<StoredResource | undefined> {
  const { sql, bindings, lookup } = readStatement(db, spec, forUpdate, narrowing);
  const values = bindings.map((b) => (b === ID_SLOT ? id : lookup?.has(b as string) ? lookup.get(b as string) : b));
  let raw: Row | undefined;
  if (dialectOf(db) !== 'mysql') raw = ((await db.raw(sql, values as Knex.RawBinding[])) as Row[])[0];
  else if (db.isTransaction) raw = ((await db.raw(sql, values as Knex.RawBinding[])) as [Row[]])[0][0];
  else raw = (await executePrepared(db, sql, values))[0];
  return raw ? storedFromRow(spec, raw) : undefined;
}

/** The current rows of many ids of a type (missing ids are left out; deleted ones are flagged), narrowed when given. */
export async function readMany(db: Knex, spec: StorageSpec, ids: string[], narrow?: (q: Knex.QueryBuilder) => void): Promise<StoredResource[]> {
  if (ids.length === 0) return [];
  const q = whereExactIds(db, currentQuery(db, spec), 't.id', ids);
  narrow?.(q);
  const rows = (await q) as Row[];
  return rows.map((r) => storedFromRow(spec, r));
}

/** The values of index-backed reference parameters of some resources: resource id -> "Type/id" codes. */
export async function indexedReferences(db: Knex, type: string, param: string, ids: string[]): Promise<{ resourceId: string; code: string }[]> {
  if (ids.length === 0) return [];
  const rows = (await db('search_token').where({ resource_type: type, param }).whereIn('resource_id', ids).select('resource_id', 'code')) as Row[];
  return rows.map((r) => ({ resourceId: String(r.resource_id), code: String(r.code) }));
}

interface MysqlConnection {
  execute(sql: string, values: unknown[], cb: (err: Error | null, rows: Row[]) => void): void;
}

/**
 * Runs a statement as a server-side prepared statement on a pooled mysql2 connection, skipping
 * knex's binding rewrite and mysql2's client-side escaping (the read-by-id hot path).
 */
async function executePrepared(db: Knex, sql: string, values: unknown[]): Promise<Row[]> {
  const conn = (await db.client.acquireConnection()) as MysqlConnection;
  try {
    return await new Promise<Row[]>((resolve, reject) => conn.execute(sql, values, (err, rows) => (err ? reject(err) : resolve(rows))));
  } finally {
    await db.client.releaseConnection(conn);
  }
}

async function writeIndex(trx: Knex, spec: StorageSpec, id: string, index: IndexEntries | undefined, fresh = false): Promise<void> {
  const tables = spec.indexAll ? INDEX_TABLES : BASIC_INDEX;
  if (!fresh) {
    // a new id has no index rows; skipping the DELETE also spares InnoDB a gap lock on the id range
    for (const [table] of tables) await trx(table).where({ resource_type: spec.type, resource_id: id }).delete();
  }
  if (!index) return;
  for (const [table, part] of tables) {
    await appendRows(trx, table, (index[part] ?? []).map((s) => ({ resource_type: spec.type, resource_id: id, ...s })));
  }
}

async function appendHistory(trx: Knex, spec: StorageSpec, id: string, version: number, method: string, at: string, resource: unknown, userId?: string): Promise<void> {
  await appendRows(trx, 'resource_history', [{
    resource_type: spec.type, resource_id: id, version_id: version, method, recorded_at: at,
    recorded_by: userId ?? null, resource: resource === null ? null : JSON.stringify(resource),
  }]);
}

/**
 * Inserts a new resource as `version` (1, or the next one after a hard-deleted past whose history
 * remains).
 */
export async function insertResource(trx: Knex, spec: StorageSpec, input: WriteInput, at: string, version = 1): Promise<void> {
  const row = { ...input.columns, id: input.id, version_id: version, created_at: at, [spec.updatedColumn ?? 'updated_at']: at };
  if (spec.storage?.insertRow) await spec.storage.insertRow(trx, input.id, row);
  // (gathered in a buffered transaction where the table allows: src/db/write-buffer.ts)
  else await appendRows(trx, spec.table, [row]);
  await appendHistory(trx, spec, input.id, version, input.method, at, input.resource, input.userId);
  await writeIndex(trx, spec, input.id, input.index, version === 1);
}

/** Writes version `version` over an existing row (also revives a soft-deleted one). */
export async function updateResource(trx: Knex, spec: StorageSpec, input: WriteInput, version: number, at: string): Promise<void> {
  const extra: Row = spec.softDelete ? { deleted_at: null } : {};
  const row = { ...input.columns, ...extra, version_id: version, [spec.updatedColumn ?? 'updated_at']: at };
  if (spec.storage?.updateRow) await spec.storage.updateRow(trx, input.id, row);
  else await patchOf(trx, spec, input.id, row);
  await appendHistory(trx, spec, input.id, version, input.method, at, input.resource, input.userId);
  await writeIndex(trx, spec, input.id, input.index);
}

/**
 * Deletes a resource as version `version`: soft (deleted_at) or by removing the row. Either way
 * the history keeps a DELETE entry, so reads answer 410 and search no longer finds it.
 */
export async function deleteResource(trx: Knex, spec: StorageSpec, id: string, version: number, at: string, userId?: string): Promise<void> {
  if (spec.softDelete) await patchOf(trx, spec, id, { deleted_at: at, version_id: version, [spec.updatedColumn ?? 'updated_at']: at });
  else if (spec.storage?.deleteRow) await spec.storage.deleteRow(trx, id);
  else { const q = ofType(trx, spec, id); await (q.model ? q.model.delete() : q.plain!.delete()); }
  await appendHistory(trx, spec, id, version, 'DELETE', at, null, userId);
  await writeIndex(trx, spec, id, undefined);
}

/** The newest history entry of an id (without its resource): how a removed row is known to have existed. */
export async function latestVersion(db: Knex, spec: StorageSpec, id: string): Promise<{ versionId: number; method: string; recordedAt: string } | undefined> {
  const r = await whereExactId(db, db('resource_history').where({ resource_type: spec.type }), 'resource_id', id)
    .orderBy('version_id', 'desc').first('version_id', 'method', 'recorded_at');
  return r ? { versionId: Number(r.version_id), method: String(r.method), recordedAt: String(r.recorded_at) } : undefined;
}

/** One version of a resource from its history. */
export async function readVersion(db: Knex, spec: StorageSpec, id: string, version: number): Promise<HistoryEntry | undefined> {
  const r = await whereExactId(db, db('resource_history').where({ resource_type: spec.type, version_id: version }), 'resource_id', id).first();
  return r ? { versionId: Number(r.version_id), method: String(r.method), recordedAt: String(r.recorded_at), resource: parseJson(r.resource) } : undefined;
}

/** Versions of a resource, newest first, optionally since a time and below a version (paging). */
export async function listVersions(db: Knex, spec: StorageSpec, id: string, opts: { limit: number; since?: string; belowVersion?: number }): Promise<HistoryEntry[]> {
  const q = whereExactId(db, db('resource_history').where({ resource_type: spec.type }), 'resource_id', id).orderBy('version_id', 'desc').limit(opts.limit);
  if (opts.since) q.where('recorded_at', '>=', opts.since);
  if (opts.belowVersion !== undefined) q.where('version_id', '<', opts.belowVersion);
  const rows = await q;
  return rows.map((r: Row) => ({ versionId: Number(r.version_id), method: String(r.method), recordedAt: String(r.recorded_at), resource: parseJson(r.resource) }));
}

/** Takes the row lock that serialises conditional creates with the same criteria (held until commit). */
export async function lockConditional(trx: Knex, key: string, at: string): Promise<void> {
  await trx('conditional_locks').insert({ lock_key: key, touched_at: at }).onConflict('lock_key').merge(['touched_at']);
}

/**
 * Ids that exist (not deleted, matching the filter, within the narrowing over `table as t`) in a
 * table; used to check references before writing.
 */
export async function existingIds(db: Knex, table: string, ids: string[], opts: { softDelete: boolean; where?: Record<string, string[]>; narrow?: (q: Knex.QueryBuilder) => void }): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const q = db(`${table} as t`).whereIn('t.id', ids).select('t.id');
  if (opts.softDelete) q.whereNull('t.deleted_at');
  for (const [column, values] of Object.entries(opts.where ?? {})) q.whereIn(`t.${column}`, values);
  opts.narrow?.(q);
  return new Set((await q).map((r: Row) => String(r.id)));
}

/** A version of any resource, as type and system history list them. */
export interface TypedHistoryEntry extends HistoryEntry {
  resourceType: string;
  resourceId: string;
}

/** Where a page of type or system history ended: the (recorded_at, type, id, version) of its last row. */
export interface HistoryCursor {
  recordedAt: string;
  resourceType: string;
  resourceId: string;
  versionId: number;
}

/**
 * Versions of every resource of some types, newest first in (recorded_at, resource_type,
 * resource_id, version_id) order, keyset paged: `before` is the last row of the previous page.
 * `since` keeps versions recorded at or after it; `at` keeps the versions that were current at
 * some point of [at.from, at.to): recorded before `to` and not superseded by a version recorded
 * at or before `from`. Served by the (resource_type, recorded_at) index.
 */
export async function listTypedVersions(db: Knex, opts: {
  types: string[]; limit: number; since?: string; before?: HistoryCursor; at?: { from: string; to: string };
}): Promise<TypedHistoryEntry[]> {
  if (opts.types.length === 0) return [];
  const q = db('resource_history as h').whereIn('h.resource_type', opts.types)
    .select('h.resource_type', 'h.resource_id', 'h.version_id', 'h.method', 'h.recorded_at', 'h.resource')
    .orderBy([{ column: 'h.recorded_at', order: 'desc' }, { column: 'h.resource_type', order: 'desc' }, { column: 'h.resource_id', order: 'desc' }, { column: 'h.version_id', order: 'desc' }])
    .limit(opts.limit);
  if (opts.since) q.where('h.recorded_at', '>=', opts.since);
  if (opts.at) {
    const { from, to } = opts.at;
    q.where('h.recorded_at', '<', to).whereNot('h.method', 'DELETE').whereNotExists((s) => {
      s.select(db.raw('1')).from('resource_history as n')
        .whereRaw('n.resource_type = h.resource_type AND n.resource_id = h.resource_id AND n.version_id > h.version_id')
        .where('n.recorded_at', '<=', from);
    });
  }
  const b = opts.before;
  if (b) {
    q.where((w) => {
      w.where('h.recorded_at', '<', b.recordedAt)
        .orWhere((x) => x.where('h.recorded_at', b.recordedAt).where('h.resource_type', '<', b.resourceType))
        .orWhere((x) => x.where('h.recorded_at', b.recordedAt).where('h.resource_type', b.resourceType).where('h.resource_id', '<', b.resourceId))
        .orWhere((x) => x.where('h.recorded_at', b.recordedAt).where('h.resource_type', b.resourceType).where('h.resource_id', b.resourceId).where('h.version_id', '<', b.versionId));
    });
  }
  const rows = (await q) as Row[];
  return rows.map((r) => ({
    resourceType: String(r.resource_type), resourceId: String(r.resource_id), versionId: Number(r.version_id),
    method: String(r.method), recordedAt: String(r.recorded_at), resource: parseJson(r.resource),
  }));
}
