/**
 * Benchmark settings from the environment. The benchmark only ever runs on MySQL/MariaDB (the
 * production shape) and only on a database of its own, named hms_bench*, which it may drop.
 */

export const DEFAULT_DATABASE_URL = 'mysql://root@127.0.0.1:3306/hms_bench';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** The only database names the benchmark will use, create or drop. */
const BENCH_DB_NAME = /^hms_bench[A-Za-z0-9_]{0,54}$/;

/** In the order they run: each access scenario right after its admin scenario, so the two meet the same database. */
export const SCENARIOS = [
  'read', 'read-doctor', 'read-patient', 'read-system', 'generic-read', 'search', 'search-doctor', 'search-patient', 'search-system',
  'create', 'observation', 'generic-search', 'everything',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Who an access scenario asks as (the other scenarios ask as an admin). */
export type Asker = 'admin' | 'doctor' | 'patient' | 'system';

/**
 * The access scenarios: a read or name search of the admin scenario, asked as an assigned doctor,
 * as a patient or as a system client (all authorized and audited), compared with the admin
 * scenario of the same run (the access check's cost) and with its floor.
 */
export const ACCESS_SCENARIOS: Partial<Record<ScenarioName, { base: 'read' | 'search'; as: Exclude<Asker, 'admin'> }>> = {
  'read-doctor': { base: 'read', as: 'doctor' },
  'read-patient': { base: 'read', as: 'patient' },
  'read-system': { base: 'read', as: 'system' },
  'search-doctor': { base: 'search', as: 'doctor' },
  'search-patient': { base: 'search', as: 'patient' },
  'search-system': { base: 'search', as: 'system' },
};
/** Scenarios measured again at every data scale (their latency must not grow with the data). */
export const SCALED_SCENARIOS: readonly ScenarioName[] = ['observation', 'generic-search', 'everything'];

/**
 * The generic store's scenarios: a read by id of a generic type (Immunization), which must do at
 * least as well against its floor as the seed types' read (the read scenario of the same run),
 * and a search by patient and date, whose p50 may grow by GENERIC_SEARCH_GROWTH at most from the
 * smallest to the largest scale.
 */
export const GENERIC_SEARCH_GROWTH = 1.3;
/** The generic search asks for a patient's Immunizations of the last GENERIC_SEARCH_DAYS days (the seed spreads 3 over 9 years). */
export const GENERIC_SEARCH_DAYS = Math.round(4.5 * 365);

export interface BenchConfig {
  /** mysql://... URL of the bench database (what HMS gets as DATABASE_URL). */
  databaseUrl: string;
  /** The bench database's name (always matches hms_bench*). */
  database: string;
  /** Connection settings without a database, to create or drop the bench database. */
  server: { host: string; port: number; user: string; password: string };
  redisUrl: string;
  patients: number;
  /** Seconds per measurement. */
  duration: number;
  /** Seconds of unrecorded load before each measurement. */
  warmup: number;
  connections: number;
  /** Database connections of HMS and of the floor (same size on both sides). */
  pool: number;
  /** Data sizes, as multiples of `patients`, at which the scaled scenarios are measured (1,10). */
  scales: number[];
  /** Drop and recreate the bench database even when it holds enough patients. */
  reset: boolean;
  scenarios: ScenarioName[];
  /** Run HMS under --cpu-prof and summarise where it spent its time. */
  profile: boolean;
  /** The read ratio (HMS req/s / floor req/s) below which the run fails. */
  readTarget: number;
  /** The access ratio (as a doctor, patient or system ÷ as admin) below which the run fails. */
  accessTarget: number;
}

/** A configuration problem: printed as one line, exit status 2. */
export class BenchConfigError extends Error {}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new BenchConfigError(`${name} must be an integer >= ${min} (got '${raw}')`);
  return n;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  return /^(1|true|yes|on)$/i.test(env[name] ?? '');
}

/** Checks a DATABASE_URL: MySQL/MariaDB only, and a database named hms_bench*. */
export function parseDatabaseUrl(raw: string | undefined): Pick<BenchConfig, 'databaseUrl' | 'database' | 'server'> {
  if (raw === undefined) raw = DEFAULT_DATABASE_URL;
  if (!/^(mysql|mariadb):\/\//i.test(raw)) {
    throw new BenchConfigError(
      `the benchmark runs on MySQL/MariaDB only (the production shape), not on embedded SQLite: DATABASE_URL is '${raw || '(empty)'}'. ` +
      `Unset it to use ${DEFAULT_DATABASE_URL}, or set DATABASE_URL=mysql://user:pass@host:port/hms_bench`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw.replace(/^mariadb:/i, 'mysql:'));
  } catch {
    throw new BenchConfigError(`DATABASE_URL '${raw}' is not a valid URL`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!BENCH_DB_NAME.test(database)) {
    throw new BenchConfigError(
      `the benchmark drops and recreates its database, so it only uses one named hms_bench* (letters, digits, _); ` +
      `DATABASE_URL names '${database || '(none)'}'. Use e.g. mysql://${url.host}/hms_bench`,
    );
  }
  return {
    databaseUrl: raw,
    database,
    server: {
      host: url.hostname,
      port: url.port ? Number(url.port) : 3306,
      user: decodeURIComponent(url.username || 'root'),
      password: decodeURIComponent(url.password),
    },
  };
}

function scales(raw: string | undefined): number[] {
  const list = (raw ?? '1,10').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new BenchConfigError(`BENCH_SCALES must be whole numbers >= 1, e.g. 1,10 (got '${raw}')`);
  return [...new Set(list)].sort((a, b) => a - b);
}

export function loadBenchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const scenarios = (env.BENCH_SCENARIOS ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(s)) throw new BenchConfigError(`BENCH_SCENARIOS: unknown scenario '${s}' (known: ${SCENARIOS.join(', ')})`);
  }
  const readTarget = Number(env.BENCH_READ_TARGET ?? 0.5);
  if (!(readTarget >= 0)) throw new BenchConfigError(`BENCH_READ_TARGET must be a number >= 0 (got '${env.BENCH_READ_TARGET}')`);
  const accessTarget = Number(env.BENCH_ACCESS_TARGET ?? 0.85);
  if (!(accessTarget >= 0)) throw new BenchConfigError(`BENCH_ACCESS_TARGET must be a number >= 0 (got '${env.BENCH_ACCESS_TARGET}')`);
  const redisUrl = env.REDIS_URL || DEFAULT_REDIS_URL;
  if (!/^rediss?:\/\//.test(redisUrl)) throw new BenchConfigError(`REDIS_URL must start with redis:// (got '${redisUrl}')`);
  const duration = positiveInt(env, 'BENCH_DURATION', 10);
  return {
    ...parseDatabaseUrl(env.DATABASE_URL),
    redisUrl,
    patients: positiveInt(env, 'BENCH_PATIENTS', 10_000),
    duration,
    warmup: positiveInt(env, 'BENCH_WARMUP', Math.min(3, duration), 0),
    connections: positiveInt(env, 'BENCH_CONNECTIONS', 10),
    pool: positiveInt(env, 'BENCH_POOL', 10),
    scales: scales(env.BENCH_SCALES),
    reset: flag(env, 'BENCH_RESET'),
    scenarios: SCENARIOS.filter((s) => scenarios.includes(s)),
    profile: flag(env, 'BENCH_PROFILE'),
    readTarget,
    accessTarget,
  };
}
