/**
 * The bench database: created (or dropped and recreated) on its own, migrated, and seeded with
 * N patients through HMS's real write path (createResource: validation, patients row,
 * resource_history version 1, search index rows), with bounded concurrency (1 by default:
 * concurrent creates deadlock on MySQL, see docs/benchmarks.md, and retrying costs more than
 * the parallelism gains).
 * Patients come from a small deterministic generator, so every run sees the same data.
 */
import type { Knex } from 'knex';
import mysql from 'mysql2/promise';
import '../src/fhir/resources/index.js';
import { createDb, migrateLatest } from '../src/db/knex.js';
import { createResource, type FhirContext } from '../src/fhir/interactions.js';
import { PATIENT_EXTENSIONS } from '../src/mappers/patient-mapper.js';
import type { BenchConfig } from './config.js';

/** Identifier system of seeded patients; its value is the patient's sequence number. */
export const SEED_SYSTEM = 'urn:hms-bench:seed';
/** Family name of the patients the create scenario adds (no seeded family starts like it). */
export const LOADTEST_FAMILY = 'Loadtest';

const FAMILY = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
  'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts',
  'Gomez', 'Phillips', 'Evans', 'Turner', 'Diaz', 'Parker', 'Cruz', 'Edwards', 'Collins', 'Reyes',
  'Stewart', 'Morris', 'Morales', 'Murphy', 'Cook', 'Rogers', 'Gutierrez', 'Ortiz', 'Morgan', 'Cooper',
  'Peterson', 'Bailey', 'Reed', 'Kelly', 'Howard', 'Ramos', 'Kim', 'Cox', 'Ward', 'Richardson',
  'Watson', 'Brooks', 'Chavez', 'Wood', 'James', 'Bennett', 'Gray', 'Mendoza', 'Ruiz', 'Hughes',
  'Price', 'Alvarez', 'Castillo', 'Sanders', 'Patel', 'Myers', 'Long', 'Ross', 'Foster', 'Jimenez',
];
const GIVEN_FEMALE = [
  'Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Sarah', 'Karen',
  'Lisa', 'Nancy', 'Betty', 'Margaret', 'Sandra', 'Ashley', 'Kimberly', 'Emily', 'Donna', 'Michelle',
  'Carol', 'Amanda', 'Dorothy', 'Melissa', 'Deborah', 'Stephanie', 'Rebecca', 'Sharon', 'Laura', 'Cynthia',
];
const GIVEN_MALE = [
  'James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Charles',
  'Christopher', 'Daniel', 'Matthew', 'Anthony', 'Mark', 'Donald', 'Steven', 'Paul', 'Andrew', 'Joshua',
  'Kenneth', 'Kevin', 'Brian', 'George', 'Timothy', 'Ronald', 'Edward', 'Jason', 'Jeffrey', 'Ryan',
];
const STREETS = ['Main St', 'Oak Ave', 'Maple Dr', 'Cedar Ln', 'Pine St', 'Elm St', 'Washington Ave', 'Lake Rd', 'Hill St', 'Park Ave'];
const PLACES: [city: string, state: string, zip: string][] = [
  ['Springfield', 'IL', '627'], ['Portland', 'OR', '972'], ['Austin', 'TX', '787'], ['Denver', 'CO', '802'],
  ['Boston', 'MA', '021'], ['Columbus', 'OH', '432'], ['Madison', 'WI', '537'], ['Raleigh', 'NC', '276'],
  ['Tucson', 'AZ', '857'], ['Richmond', 'VA', '232'], ['Albany', 'NY', '122'], ['Fresno', 'CA', '937'],
];
const BLOOD_TYPES = ['A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-'];

/** mulberry32: a tiny seeded PRNG, enough to vary test data reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rnd: () => number, list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
const digits = (rnd: () => number, n: number): string => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join('');

/** Family name of seeded patient i (what benchPatient(i) carries). */
export function seedFamily(i: number): string {
  return pick(prng(Math.imul(i + 1, 0x9e3779b1)), FAMILY);
}

/** Seeded patient number i: the same resource on every run. */
export function benchPatient(i: number): Record<string, unknown> {
  const rnd = prng(Math.imul(i + 1, 0x9e3779b1));
  const family = pick(rnd, FAMILY);
  const female = rnd() < 0.5;
  const givenList = female ? GIVEN_FEMALE : GIVEN_MALE;
  const given = rnd() < 0.3 ? [pick(rnd, givenList), pick(rnd, givenList)] : [pick(rnd, givenList)];
  const born = new Date(Date.UTC(1930, 0, 1) + Math.floor(rnd() * 90 * 365.25) * 86_400_000).toISOString().slice(0, 10);
  const [city, state, zip] = pick(rnd, PLACES);
  const patient: Record<string, unknown> = {
    resourceType: 'Patient',
    identifier: [{ system: SEED_SYSTEM, value: String(i) }],
    active: true,
    name: [{ use: 'official', family, given }],
    telecom: [
      { system: 'phone', value: `555-${digits(rnd, 3)}-${digits(rnd, 4)}`, use: 'home' },
      { system: 'email', value: `${given[0]!.toLowerCase()}.${family.toLowerCase()}.${i}@example.org` },
    ],
    gender: female ? 'female' : 'male',
    birthDate: born,
    address: [{ use: 'home', line: [`${1 + Math.floor(rnd() * 9000)} ${pick(rnd, STREETS)}`], city, state, postalCode: zip + digits(rnd, 2), country: 'USA' }],
  };
  if (rnd() < 0.5) {
    patient.extension = [{ url: PATIENT_EXTENSIONS.bloodType, valueCode: pick(rnd, BLOOD_TYPES) }];
  }
  return patient;
}

/** Distinct 3-letter family-name prefixes of the first n seeded patients (what search asks for). */
export function familyPrefixes(n: number): string[] {
  const out = new Set<string>();
  for (let i = 0; i < n && out.size < FAMILY.length; i++) out.add(seedFamily(i).slice(0, 3));
  return [...out].sort();
}

const RETRYABLE = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);

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

/** How many seeded patients the database holds, and how many patients in all. */
export async function seededCount(db: Knex): Promise<{ seeded: number; patients: number }> {
  const seeded = await count(db('search_token').where({ resource_type: 'Patient', param: 'identifier', system: SEED_SYSTEM }));
  const patients = await count(db('patients'));
  return { seeded, patients };
}

/** Ids of seeded patients 0..n-1. */
export async function seededIds(db: Knex, n: number): Promise<string[]> {
  const rows = (await db('search_token')
    .where({ resource_type: 'Patient', param: 'identifier', system: SEED_SYSTEM })
    .andWhereRaw('CAST(code AS UNSIGNED) < ?', [n])
    .select('resource_id')) as { resource_id: string }[];
  return rows.map((r) => r.resource_id);
}

export interface SeedStats {
  patients: number;
  seconds: number;
  patientsPerSecond: number;
  concurrency: number;
  /** Creates that still failed with a deadlock (or lock wait timeout) and were retried here. */
  deadlocksRetried: number;
  /** Rows the seeding left in the tables the write path fills. */
  rows: { patients: number; resourceHistory: number; searchString: number; searchToken: number };
}

/** Table sizes after seeding (rows of the write path's tables). */
export async function tableRows(db: Knex): Promise<SeedStats['rows']> {
  return {
    patients: await count(db('patients')),
    resourceHistory: await count(db('resource_history').where('resource_type', 'Patient')),
    searchString: await count(db('search_string').where('resource_type', 'Patient')),
    searchToken: await count(db('search_token').where('resource_type', 'Patient')),
  };
}

/**
 * Creates patients from..to-1 through createResource, `concurrency` at a time, each in its own
 * transaction as a POST would be; security-log auditing is a no-op here.
 */
export async function seedPatients(db: Knex, from: number, to: number, concurrency: number, progress?: (done: number) => void): Promise<SeedStats> {
  const ctx: FhirContext = {
    db,
    baseUrl: 'http://bench.invalid/fhir',
    strict: false,
    maxCount: 1000,
    audit: async () => undefined,
  };
  const started = process.hrtime.bigint();
  let next = from;
  let done = 0;
  let deadlocks = 0;
  const create = async (i: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await createResource(ctx, 'Patient', benchPatient(i));
        if (!result.created) throw new Error(`seeding patient ${i} did not create it`);
        return;
      } catch (err) {
        // Concurrent creates deadlock on the search-index gap locks (see docs/benchmarks.md);
        // the transaction was rolled back whole, so it is simply tried again.
        const e = err as { code?: string; nativeError?: { code?: string } };
        if (!RETRYABLE.has(e.nativeError?.code ?? e.code ?? '') || attempt >= 20) throw err;
        deadlocks++;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  };
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < to && failure === undefined) {
      try {
        await create(next++);
      } catch (err) {
        failure ??= err;
        return;
      }
      done++;
      if (progress && done % 1000 === 0) progress(done);
    }
  };
  // every worker finishes its current create before this returns (or throws), so none outlives the pool
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, to - from)) }, worker));
  if (failure !== undefined) throw failure;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    patients: to - from,
    seconds,
    patientsPerSecond: (to - from) / seconds,
    concurrency,
    deadlocksRetried: deadlocks,
    rows: await tableRows(db),
  };
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
  await db('security_logs').truncate();
  return removed;
}
