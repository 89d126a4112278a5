/**
 * The bench database: created (or dropped and recreated) on its own, migrated, and seeded by
 * `hms seed`'s code (src/db/seed): patients with ~50 observations, 5 encounters, 3 conditions,
 * 2 prescriptions, 2 invoices, a coverage and an appointment each, and in the generic store
 * 3 Immunizations, 2 Procedures, an AllergyIntolerance and a Claim, from a deterministic
 * generator, so every run sees the same data.
 */
import type { Knex } from 'knex';
import mysql from 'mysql2/promise';
import { createDb, migrateLatest } from '../src/db/knex.js';
import { seedDatabase } from '../src/db/seed/seed-all.js';
import { SEED_FAMILIES } from '../src/db/seed/generate.js';
import type { SeedStats } from '../src/db/seed/index.js';
import type { BenchConfig } from './config.js';
import { AUDIT_GENESIS_HASH } from '../src/db/audit-hash.js';

export type { SeedStats };

/** Family name of the patients the create scenario adds (no seeded family starts like it). */
export const LOADTEST_FAMILY = 'Loadtest';

/** Distinct 3-letter family-name prefixes of the seeded patients (what the search scenario asks for). */
export function familyPrefixes(): string[] {
  return [...new Set(SEED_FAMILIES.map((f) => f.slice(0, 3)))].sort();
}

const quoteIdent = (name: string): string => '`' + name.replace(/`/g, '``') + '`';

/**
 * Creates the bench database if it is missing, or drops and recreates it when `recreate` is set.
 * Only ever touches config.database, which loadBenchConfig has checked is named hms_bench*.
 */
export async function ensureDatabase(config: Pick<BenchConfig, 'server' | 'database'>, recreate: boolean): Promise<void> {
  if (!/^hms_bench/.test(config.database)) throw new Error(`refusing to touch database '${config.database}'`);
  const conn = await mysql.createConnection({ ...config.server, charset: 'utf8mb4' });
  try {
    if (recreate) await conn.query(`DROP DATABASE IF EXISTS ${quoteIdent(config.database)}`);
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(config.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await conn.end();
  }
}

/** Opens the bench database with knex, as HMS does, and applies the migrations. */
export async function openMigrated(config: Pick<BenchConfig, 'databaseUrl'>, poolMax: number): Promise<Knex> {
  const db = createDb({ DATABASE_URL: config.databaseUrl, HMS_DATA_DIR: 'data', HMS_DB_POOL_MAX: poolMax });
  try {
    await migrateLatest(db);
  } catch (err) {
    await db.destroy();
    throw new Error(`migrating the bench database failed (${(err as Error).message}); rerun with BENCH_RESET=1 to rebuild it`);
  }
  return db;
}

async function count(q: Knex.QueryBuilder): Promise<number> {
  const row = (await q.count({ n: '*' }))[0] as { n: number | string };
  return Number(row.n);
}

/** How many seeded patients the database holds (all but those the create scenario added). */
export async function seededCount(db: Knex): Promise<number> {
  return count(db('patients').whereNot('last_name', LOADTEST_FAMILY));
}

/** Ids of n seeded patients. */
export async function seededIds(db: Knex, n: number): Promise<string[]> {
  const rows = (await db('patients').whereNot('last_name', LOADTEST_FAMILY).orderBy('id').limit(n).select('id')) as { id: string }[];
  return rows.map((r) => r.id);
}

/** Ids of every seeded Immunization (generic store). */
export async function seededImmunizationIds(db: Knex): Promise<string[]> {
  return (await db('fhir_resources').where({ resource_type: 'Immunization' }).whereNull('deleted_at').pluck('id')) as string[];
}

/** Seeds patients (with their records, `hms seed`) until the database holds `target` of them. */
export async function seedTo(db: Knex, target: number, progress?: (done: number) => void): Promise<SeedStats | undefined> {
  const have = await seededCount(db);
  if (have >= target) return undefined;
  return seedDatabase(db, { patients: target - have, batch: 500, progress: (done) => progress?.(done) });
}

/**
 * Removes what earlier runs' load left behind: the patients the create scenario added (with their
 * history versions and index rows) and the security log, so that every run starts from the seeded
 * data alone. Returns the number of patients removed.
 */
export async function purgeLoadLeftovers(db: Knex): Promise<number> {
  const created = db('patients').where('last_name', LOADTEST_FAMILY).select('id');
  for (const table of ['search_string', 'search_token', 'resource_history']) {
    await db(table).where('resource_type', 'Patient').whereIn('resource_id', created.clone()).delete();
  }
  const removed = await db('patients').where('last_name', LOADTEST_FAMILY).delete();
  // a fresh log for a fresh run, and a fresh chain with it (the bench database only: hms_bench*)
  await db('security_logs').truncate();
  await db('audit_chain').where({ id: 1 }).update({ last_seq: 0, last_hash: AUDIT_GENESIS_HASH });
  return removed;
}
