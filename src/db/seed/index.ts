/**
 * `hms seed`: fills the database with synthetic patients and their records in batches of
 * multi-row INSERTs (one transaction per batch), bypassing the per-resource write path. Rows
 * written this way are "native": they read through the same mappers as rows of any other
 * writer. Afterwards the search index rows of the new resources are computed from the resources
 * they read as, so index-backed search parameters find them.
 *
 * Each patient also gets resources of the generic store (3 Immunizations, 2 Procedures, an
 * AllergyIntolerance and a Claim: generate.ts genericResources). They are written as the API's
 * create writes them, batched: a fhir_resources row from the type's definition (toRow: the JSON
 * and the compartment's patient_id), version 1 in resource_history (with meta) and the index rows
 * indexEntries gives for the resource (strings, tokens, dates, numbers, quantities).
 */
import type { Knex } from 'knex';
import '../../fhir/resources/index.js';
import { genericResources, patientRows, staffRows, type GenericResource, type Row } from './generate.js';
import { dialectOf } from '../dialect.js';
import { insertRows } from '../write-buffer.js';
import { INDEX_TABLES, readMany, type IndexEntries, type StoredResource } from '../resource-repository.js';
import { allResourceDefinitions, resourceDefinition } from '../../fhir/registry.js';
import { present, withMeta } from '../../fhir/resource-view.js';
import type { Resource } from '../../fhir/types.js';
import { sqlToInstant } from '../../mappers/datatypes.js';
import { indexEntries } from '../../fhir/search/index-entries.js';

/** Tables in foreign-key order. */
const TABLES = ['patients', 'appointments', 'visits', 'vitals', 'lab_results', 'medical_conditions', 'prescriptions', 'billing', 'insurance'];
const READ_CHUNK = 5000;

export interface SeedOptions {
  patients: number;
  /** Patients per transaction. */
  batch?: number;
  /** "Today" for the generated dates (default: now). */
  now?: number;
  progress?: (done: number, rows: number) => void;
  /** Rows derived from a batch's rows that live in extension tables (e.g. the Observation projection), by table. */
  derive?: (rows: Record<string, Row[]>) => Record<string, Row[]>;
}

export interface SeedStats {
  patients: number;
  rows: number;
  indexRows: number;
  seconds: number;
  rowsPerSecond: number;
  byTable: Record<string, number>;
  /**
   * The generic-store part (included in the figures above): resources by type, rows by table (its
   * index rows included), rows, index rows, and the seconds spent building and writing them.
   */
  generic: { byType: Record<string, number>; byTable: Record<string, number>; rows: number; indexRows: number; seconds: number };
}

/** The seeded doctors and nurses (created on first use). */
async function staff(db: Knex, now: number): Promise<{ doctors: string[]; nurses: string[]; created: number }> {
  // in the database's email order, every time: patient i sees doctor i mod n, so the list must
  // come in the same order on the run that creates the staff as on every later run (creation
  // order is seed-doctor-0, 1, 2 ...; email order 0, 1, 10, 11 ...: two patients in one slot)
  const seeded = async (): Promise<Row[]> => (await db('users').where('email', 'like', 'seed-%@hms.example.org').whereNull('deleted_at').orderBy('email').select('id', 'role')) as Row[];
  let existing = await seeded();
  let created = 0;
  if (existing.length === 0) {
    const rows = staffRows(50, 20, now);
    await insertRows(db, 'users', rows);
    await indexNative(db, { users: rows.map((r) => String(r.id)) });
    existing = await seeded();
    created = rows.length;
  }
  return {
    doctors: existing.filter((r) => r.role === 'doctor').map((r) => String(r.id)),
    nurses: existing.filter((r) => r.role === 'nurse').map((r) => String(r.id)),
    created,
  };
}

/** Index rows of resources written natively: what the write path would have added for them. */
async function indexNative(db: Knex, idsByTable: Record<string, string[]>): Promise<number> {
  let n = 0;
  for (const def of allResourceDefinitions()) {
    if (!def.searchParams.some((p) => p.source === 'index')) continue;
    const ids = idsByTable[def.table];
    if (!ids?.length) continue;
    const entries: { strings: Row[]; tokens: Row[] } = { strings: [], tokens: [] };
    const found: StoredResource[] = [];
    for (let i = 0; i < ids.length; i += READ_CHUNK) found.push(...(await readMany(db, def, ids.slice(i, i + READ_CHUNK))));
    for (const stored of found) {
      const e: IndexEntries = indexEntries(def, present(def, stored));
      const id = String(stored.row.id);
      for (const s of e.strings) entries.strings.push({ resource_type: def.type, resource_id: id, ...s });
      for (const t of e.tokens) entries.tokens.push({ resource_type: def.type, resource_id: id, ...t });
    }
    await insertRows(db, 'search_string', entries.strings);
    await insertRows(db, 'search_token', entries.tokens);
    n += entries.strings.length + entries.tokens.length;
  }
  return n;
}

/**
 * Writes generic-store resources as createResource does, in multi-row INSERTs: the fhir_resources
 * row (the definition's toRow), version 1 in resource_history (the resource with meta, method
 * POST) and the index rows of indexEntries(def, resource). Returns the rows written, by table.
 */
async function insertGeneric(trx: Knex, resources: GenericResource[], stamp: string): Promise<Record<string, number>> {
  const lastUpdated = sqlToInstant(stamp)!;
  const rows: Row[] = [];
  const history: Row[] = [];
  const index: Record<string, Row[]> = Object.fromEntries(INDEX_TABLES.map(([table]) => [table, []]));
  for (const resource of resources) {
    const def = resourceDefinition(resource.resourceType);
    if (!def || def.storageKind !== 'generic') throw new Error(`${resource.resourceType} is not a type of the generic store`);
    const id = resource.id;
    const r = resource as unknown as Resource;
    rows.push({ ...def.toRow(r, { id, now: stamp }), id, version_id: 1, created_at: stamp, updated_at: stamp });
    history.push({ resource_type: def.type, resource_id: id, version_id: 1, method: 'POST', recorded_at: stamp, recorded_by: null, resource: JSON.stringify(withMeta(r, 1, lastUpdated)) });
    const entries = indexEntries(def, r);
    for (const [table, part] of INDEX_TABLES) for (const e of entries[part] ?? []) index[table]!.push({ resource_type: def.type, resource_id: id, ...e });
  }
  await insertRows(trx, 'fhir_resources', rows);
  await insertRows(trx, 'resource_history', history);
  for (const [table] of INDEX_TABLES) await insertRows(trx, table, index[table]!);
  return { fhir_resources: rows.length, resource_history: history.length, ...Object.fromEntries(INDEX_TABLES.map(([table]) => [table, index[table]!.length])) };
}

/**
 * The number of the next seeded patient: after every patient there is, and after the highest
 * number a seeded patient still holds (its email ends .<n>@example.org). Counting alone is not
 * enough: once patients are deleted the count falls below numbers in use, and a number used
 * twice books the same doctor's slot twice.
 */
async function nextPatientNumber(db: Knex): Promise<number> {
  const count = Number(((await db('patients').count({ n: '*' }))[0] as { n: number | string }).n);
  const emails = (await db('patients').where('email', 'like', '%.%@example.org').pluck('email')) as string[];
  let max = -1;
  for (const e of emails) {
    const m = /\.(\d+)@example\.org$/.exec(e);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return Math.max(count, max + 1);
}

/** Seeds `opts.patients` more patients (numbered after those already there) with their records. */
export async function seed(db: Knex, opts: SeedOptions): Promise<SeedStats> {
  const now = opts.now ?? Date.now();
  const batch = opts.batch ?? 200;
  const started = process.hrtime.bigint();
  const mysql = dialectOf(db) === 'mysql';
  const team = await staff(db, now);
  const first = await nextPatientNumber(db);
  const byTable: Record<string, number> = { users: team.created };
  let rows = team.created;
  let indexRows = 0;
  const stamp = new Date(now).toISOString().slice(0, 19).replace('T', ' ');
  const generic: SeedStats['generic'] = { byType: {}, byTable: {}, rows: 0, indexRows: 0, seconds: 0 };
  for (let from = first; from < first + opts.patients; from += batch) {
    const to = Math.min(from + batch, first + opts.patients);
    const tables: Record<string, Row[]> = Object.fromEntries(TABLES.map((t) => [t, []]));
    const resources: GenericResource[] = [];
    for (let i = from; i < to; i++) {
      const own = patientRows(i, team, now);
      for (const [table, list] of Object.entries(own)) tables[table]!.push(...list);
      resources.push(...genericResources(i, own, team, now));
    }
    const derived = opts.derive?.(tables) ?? {};
    const order = [...TABLES, ...Object.keys(derived)];
    const all = { ...tables, ...derived };
    indexRows += await db.transaction(async (trx) => {
      // the generator's rows are consistent by construction: MySQL need not check each key
      if (mysql) await trx.raw('SET foreign_key_checks = 0, unique_checks = 0');
      try {
        for (const table of order) await insertRows(trx, table, all[table] ?? []);
        const indexed = await indexNative(trx, Object.fromEntries(order.map((t) => [t, (all[t] ?? []).map((r) => String(r.id))])));
        const started = process.hrtime.bigint();
        const written = await insertGeneric(trx, resources, stamp);
        generic.seconds += Number(process.hrtime.bigint() - started) / 1e9;
        for (const [table, n] of Object.entries(written)) {
          generic.byTable[table] = (generic.byTable[table] ?? 0) + n;
          if (table.startsWith('search_')) generic.indexRows += n;
          else { byTable[table] = (byTable[table] ?? 0) + n; generic.rows += n; rows += n; }
        }
        for (const r of resources) generic.byType[r.resourceType] = (generic.byType[r.resourceType] ?? 0) + 1;
        return indexed + Object.entries(written).filter(([t]) => t.startsWith('search_')).reduce((a, [, n]) => a + n, 0);
      } finally {
        if (mysql) await trx.raw('SET foreign_key_checks = 1, unique_checks = 1');
      }
    });
    for (const table of order) {
      byTable[table] = (byTable[table] ?? 0) + (all[table]?.length ?? 0);
      rows += all[table]?.length ?? 0;
    }
    opts.progress?.(to - first, rows + indexRows);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { patients: opts.patients, rows, indexRows, seconds, rowsPerSecond: (rows + indexRows) / seconds, byTable, generic };
}
