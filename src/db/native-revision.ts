/**
 * Native changes as versions, in batches: the write path (resource-repository.ts) for work that
 * changes some columns of many rows at once off the request path (the overdue sweep marking
 * invoices overdue). Each changed row becomes a new version exactly as an API write makes one:
 * version_id up by one and the updated column set, a resource_history row holding the resource as
 * the new version reads, and the search index rows it implies. It does so with a few statements
 * per batch instead of several per row: one UPDATE per distinct current version (guarded by that
 * version, so a row changed meanwhile fails the batch instead of being overwritten), multi-row
 * INSERTs of the history, and index rows rewritten only where they change. A row that was only
 * ever written natively (no history) first gets its current state kept as the version it is.
 *
 * The caller locks the rows first (SELECT ... FOR UPDATE, or SQLite's write lock) and reads them
 * in the same transaction (readMany): what it passes is the state it revises.
 */
import type { Knex } from 'knex';
import { insertRows } from './write-buffer.js';
import { type IndexEntries, type Row, type StorageSpec, type StoredResource } from './resource-repository.js';

export interface NativeRevisionOptions {
  spec: StorageSpec;
  /** The columns every revised row gets (the same for all of them). */
  columns: Row;
  /** The change's time, SQL 'YYYY-MM-DD HH:MM:SS' UTC: the updated column and the history's recorded_at. */
  at: string;
  /** The user the versions are recorded as written by (undefined: the system). */
  userId?: string;
  /** The method the history gives the versions (default PUT: each is a whole new version). */
  method?: 'PUT' | 'PATCH';
  /**
   * The resource the new version reads as, meta included (the definition's fromRow over the row
   * and the kept resource, then withMeta). The row has the new columns, version and updated time,
   * and _recorded_at / _recorded_by as a read of the new version will see them: the change's time
   * and writer when there is a kept version to compare columns with, null for a row that was only
   * ever written natively (it reads from its columns alone, so its new version holds all of them).
   * `lastUpdated` is the version's time (SQL, UTC).
   */
  render(row: Row, kept: Record<string, unknown> | undefined, version: number, lastUpdated: string): Record<string, unknown>;
  /** The index rows the resources imply (absent: the type has no index-backed search parameters). */
  index?: NativeIndex;
}

/** A type's index-backed search parameters: the entries of a resource, and which tables they use. */
export interface NativeIndex {
  entries(resource: Record<string, unknown>): IndexEntries;
  /** The type has string parameters (search_string). */
  strings: boolean;
  /** The type has token or reference parameters (search_token). */
  tokens: boolean;
}

export interface NativeRevisionResult {
  revised: number;
  indexRowsDeleted: number;
  indexRowsInserted: number;
}

const chunks = <T>(items: T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};

/** Ids per IN list (well under SQLite's bound-value limit and MySQL's packet size). */
const IDS_PER_STATEMENT = 1000;

/**
 * Writes one new version of each stored resource with `columns` changed, in `trx`. Throws (and so
 * rolls the caller's transaction back) when a row is not at the version it was read at.
 */
export async function reviseNatively(trx: Knex.Transaction, stored: StoredResource[], opts: NativeRevisionOptions): Promise<NativeRevisionResult> {
  const { spec, columns, at } = opts;
  if (spec.storage || spec.versioned === false || spec.kept === false) {
    throw new Error(`${spec.type}: native revisions need a versioned single-table type with kept versions`);
  }
  const result: NativeRevisionResult = { revised: 0, indexRowsDeleted: 0, indexRowsInserted: 0 };
  if (stored.length === 0) return result;
  if (stored.some((s) => s.deleted)) throw new Error(`${spec.type}: a deleted resource cannot be revised natively`);
  const updated = spec.updatedColumn ?? 'updated_at';

  // the rows: one UPDATE per current version (nearly always one), each guarded by it
  const byVersion = new Map<number, string[]>();
  for (const s of stored) {
    const ids = byVersion.get(s.versionId);
    if (ids) ids.push(String(s.row.id));
    else byVersion.set(s.versionId, [String(s.row.id)]);
  }
  for (const [version, ids] of byVersion) {
    for (const part of chunks(ids, IDS_PER_STATEMENT)) {
      const n = await trx(spec.table).whereIn('id', part).andWhere('version_id', version)
        .update({ ...columns, version_id: version + 1, [updated]: at });
      if (n !== part.length) throw new Error(`${spec.type}: ${part.length - n} of ${part.length} rows changed while they were being revised`);
    }
  }

  // the versions
  const resources = new Map<string, Record<string, unknown>>();
  const history: Row[] = [];
  for (const s of stored) {
    const id = String(s.row.id);
    const version = s.versionId + 1;
    const kept = s.kept;
    if (!kept) {
      // a row only ever written natively has no history: its state so far (which reads and vread
      // served as its one version) is kept first, so that the version it had stays readable
      const since = s.lastUpdated || at;
      history.push({
        resource_type: spec.type, resource_id: id, version_id: s.versionId, method: s.versionId === 1 ? 'POST' : 'PUT',
        recorded_at: since, recorded_by: null, resource: JSON.stringify(opts.render({ ...s.row, _recorded_at: null, _recorded_by: null }, undefined, s.versionId, since)),
      });
    }
    const row: Row = {
      ...s.row, ...columns, version_id: version, [updated]: at,
      _recorded_at: kept ? at : null, _recorded_by: kept ? (opts.userId ?? null) : null,
    };
    const resource = opts.render(row, kept, version, at);
    resources.set(id, resource);
    history.push({
      resource_type: spec.type, resource_id: id, version_id: version, method: opts.method ?? 'PUT',
      recorded_at: at, recorded_by: opts.userId ?? null, resource: JSON.stringify(resource),
    });
  }
  await insertRows(trx, 'resource_history', history);
  result.revised = stored.length;

  if (opts.index) {
    const counts = await rewriteIndex(trx, spec.type, resources, opts.index);
    result.indexRowsDeleted = counts.deleted;
    result.indexRowsInserted = counts.inserted;
  }
  return result;
}

/** Brings the index rows of the resources in line with what they now imply, touching only rows that differ. */
async function rewriteIndex(
  trx: Knex.Transaction, type: string, resources: Map<string, Record<string, unknown>>, index: NativeIndex,
): Promise<{ deleted: number; inserted: number }> {
  const ids = [...resources.keys()];
  const wanted = new Map<string, IndexEntries>();
  for (const [id, r] of resources) wanted.set(id, index.entries(r));
  let deleted = 0;
  let inserted = 0;
  const tables = [
    { table: 'search_string', used: index.strings, columns: ['param', 'value', 'norm'], entries: (e: IndexEntries) => e.strings as Row[] },
    { table: 'search_token', used: index.tokens, columns: ['param', 'system', 'code'], entries: (e: IndexEntries) => e.tokens as Row[] },
  ].filter((x) => x.used);
  for (const { table, columns, entries } of tables) {
    const key = (r: Row): string => JSON.stringify(columns.map((c) => r[c] ?? null));
    const existing = new Map<string, Map<string, unknown[]>>();
    for (const part of chunks(ids, IDS_PER_STATEMENT)) {
      const rows = (await trx(table).where('resource_type', type).whereIn('resource_id', part).select('id', 'resource_id', ...columns)) as Row[];
      for (const r of rows) {
        let byKey = existing.get(String(r.resource_id));
        if (!byKey) existing.set(String(r.resource_id), (byKey = new Map<string, unknown[]>()));
        const k = key(r);
        const rowIds = byKey.get(k);
        if (rowIds) rowIds.push(r.id);
        else byKey.set(k, [r.id]);
      }
    }
    const remove: unknown[] = [];
    const add: Row[] = [];
    for (const id of ids) {
      const have = existing.get(id) ?? new Map<string, unknown[]>();
      for (const e of entries(wanted.get(id)!)) {
        const rowIds = have.get(key(e));
        // each wanted entry keeps one matching row; rows left over (stale or duplicated) go
        if (rowIds?.length) rowIds.shift();
        else add.push({ resource_type: type, resource_id: id, ...e });
      }
      for (const rowIds of have.values()) remove.push(...rowIds);
    }
    for (const part of chunks(remove, IDS_PER_STATEMENT)) deleted += await trx(table).whereIn('id', part as Knex.Value[]).delete();
    await insertRows(trx, table, add);
    inserted += add.length;
  }
  return { deleted, inserted };
}
