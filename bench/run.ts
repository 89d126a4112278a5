/**
 * `npm run bench`: HMS against a floor (bare Fastify + mysql2 on the same tables), same machine,
 * same run, same autocannon settings. See docs/benchmarks.md.
 *
 *   1. create/migrate the bench database (hms_bench), seed N patients with their records (`hms seed`)
 *   2. create an admin and a session token
 *   3. run `hms migrate`, start `hms serve` and the floor as child processes on free ports
 *   4. for each scenario (read, generic-read, search, create, observation, generic-search, everything): warm up, then measure
 *      HMS and the floor; then for each larger scale (BENCH_SCALES, e.g. 10 = 10 x N patients)
 *      seed up to it and measure the scaled scenarios (observation, generic-search, everything) again
 *   5. print the table, write bench/results/latest.json, exit 1 if read ratio < target, generic-read ratio
 *      < read ratio, generic-search p50 growth > x1.3, or any non-2xx
 *
 * Environment: DATABASE_URL (mysql://root@127.0.0.1:3306/hms_bench), REDIS_URL, BENCH_PATIENTS (10000),
 * BENCH_DURATION (10 s), BENCH_WARMUP (3 s), BENCH_CONNECTIONS (10), BENCH_POOL (10),
 * BENCH_SCENARIOS (read,...,generic-read,...,generic-search,everything), BENCH_SCALES (1,10), BENCH_RESET (drop and reseed),
 * BENCH_PROFILE (CPU-profile HMS), BENCH_READ_TARGET (0.5).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import type { Knex } from 'knex';
import { createAdmin } from '../src/auth/admin.js';
import { startSession } from '../src/auth/sessions.js';
import { packageVersion } from '../src/version.js';
import { ACCESS_SCENARIOS, BenchConfigError, GENERIC_SEARCH_DAYS, GENERIC_SEARCH_GROWTH, loadBenchConfig, SCALED_SCENARIOS, type BenchConfig, type ScenarioName } from './config.js';
import { askers, refreshSystemToken, type Askers } from './askers.js';
import { ensureDatabase, familyPrefixes, openMigrated, purgeLoadLeftovers, seededCount, seededIds, seededImmunizationIds, seedTo, type SeedStats } from './seed.js';
import { databaseServerPid, freePort, logErrorCounts, machineBusySeconds, runNode, startServer, type ChildServer } from './processes.js';
import { measure, scenarioRequests, STATUS_COUNTERS, warmUp, type LoadRequest, type Side, type StatusCounters } from './measure.js';
import { accessTable, detailsTable, growthTable, resultsTable, scaleGrowth, writeResults, type BenchResults, type ScenarioResult } from './report.js';
import { formatProfile, newestProfile, summarizeProfile } from './profile.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = join(ROOT, 'bench', 'results');

const log = (line: string): void => { process.stdout.write(line + '\n'); };

/** CPU (in cores) used by processes outside the benchmark above which a measurement is flagged as noisy. */
const NOISE_CORES = 0.25;

/** Cores the machine keeps busy over a second while the benchmark does nothing. */
async function quietCheck(): Promise<number> {
  const before = machineBusySeconds();
  const at = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  const after = machineBusySeconds();
  return before === undefined || after === undefined ? 0 : (after - before) / ((Date.now() - at) / 1000);
}

/** Seeds up to `target` patients, logging the rate. */
async function seedUpTo(db: Knex, target: number): Promise<SeedStats | undefined> {
  const have = await seededCount(db);
  if (have >= target) {
    log(`Database holds ${have} seeded patients (>= ${target}): seeding skipped`);
    return undefined;
  }
  log(`Seeding ${target - have} patients with their records (hms seed) ...`);
  const stats = await seedTo(db, target, (done) => { if (done % 10_000 === 0) log(`  ${done} / ${target - have}`); });
  if (stats) {
    log(`Seeded ${stats.patients} patients in ${stats.seconds.toFixed(1)} s: ${stats.rows} rows + ${stats.indexRows} search index rows, ` +
      `${stats.rowsPerSecond.toFixed(0)} rows/s (${Object.entries(stats.byTable).map(([t, n]) => `${t} ${n}`).join(', ')})`);
    const g = stats.generic;
    log(`  of which the generic store: ${Object.entries(g.byType).map(([t, n]) => `${n} ${t}`).join(', ')}: ${g.rows} rows + ${g.indexRows} index rows ` +
      `in ${g.seconds.toFixed(1)} s, ${((g.rows + g.indexRows) / g.seconds).toFixed(0)} rows/s (${Object.entries(g.byTable).map(([t, n]) => `${t} ${n}`).join(', ')})`);
  }
  return stats;
}

/** Step 1: the bench database, migrated and holding at least N seeded patients. */
async function prepareData(cfg: BenchConfig): Promise<{ db: Knex; seed?: SeedStats }> {
  await ensureDatabase(cfg, cfg.reset);
  if (cfg.reset) log(`Dropped and recreated database ${cfg.database} (BENCH_RESET)`);
  const db = await openMigrated(cfg, cfg.pool);
  const removed = await purgeLoadLeftovers(db);
  if (removed) log(`Removed ${removed} patients earlier create runs added, and the security log`);
  return { db, seed: await seedUpTo(db, cfg.patients) };
}

/** n patient ids picked at random among all seeded ones (or among `all` when given). */
async function sampleIds(db: Knex, n: number, from?: string[]): Promise<string[]> {
  const all = from ?? await seededIds(db, Number.MAX_SAFE_INTEGER);
  for (let i = all.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [all[i], all[j]] = [all[j]!, all[i]!]; }
  return all.slice(0, n);
}

/** One GET that must answer 200, to fail early and clearly before any load. */
async function smoke(name: string, url: string, headers: Record<string, string>, check: (body: unknown) => boolean): Promise<void> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: unknown;
  try { body = JSON.parse(text); } catch { body = text; }
  if (res.status !== 200 || !check(body)) throw new Error(`smoke test ${name}: GET ${url} answered ${res.status}: ${text.slice(0, 500)}`);
}

/** The commit under test and how many files under src/ and migrations/ differ from it. */
function sourceState(): { commit: string; modifiedFiles: number } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src', 'migrations', 'bin'], { cwd: ROOT, encoding: 'utf8' });
    return { commit, modifiedFiles: status.split('\n').filter(Boolean).length };
  } catch {
    return { commit: 'unknown', modifiedFiles: 0 };
  }
}

async function main(): Promise<number> {
  const cfg = loadBenchConfig();
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    database: '',
  };
  const source = sourceState();
  log(`HMS ${packageVersion} (${source.commit}${source.modifiedFiles ? `, ${source.modifiedFiles} modified file(s) under src/ migrations/ bin/` : ''}) benchmark: ${cfg.patients} patients, ${cfg.duration} s per measurement (+${cfg.warmup} s warm-up), ` +
    `${cfg.connections} connections, DB pool ${cfg.pool}, on ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}`);

  // 1-3: data, admin, token
  const { db, seed } = await prepareData(cfg);
  let ids: string[];
  let immunizationIds: string[];
  let token: string;
  let userId: string;
  const seeds: SeedStats[] = seed ? [seed] : [];
  try {
    ids = await sampleIds(db, cfg.patients);
    if (ids.length < cfg.patients) throw new Error(`expected ${cfg.patients} seeded patient ids, found ${ids.length}; rerun with BENCH_RESET=1`);
    immunizationIds = await sampleIds(db, cfg.patients, await seededImmunizationIds(db));
    if (cfg.scenarios.some((s) => s.startsWith('generic-')) && immunizationIds.length === 0) {
      throw new Error('the bench database holds no seeded Immunizations (seeded before the generic store): rerun with BENCH_RESET=1');
    }
    userId = await createAdmin(db, {
      email: `bench-${Date.now()}-${randomBytes(3).toString('hex')}@bench.example.org`,
      password: randomBytes(18).toString('base64url'),
      name: 'Benchmark',
      cost: 12,
    });
    token = await startSession(db, userId, { ttlSeconds: 4 * 3600, userAgent: 'hms-bench' });
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const others: Askers | undefined = cfg.scenarios.some((s) => ACCESS_SCENARIOS[s]) ? await askers(db) : undefined;
  const prefixes = familyPrefixes();
  const observation = { code: '8867-4', since: new Date(Date.now() - 400 * 86_400_000).toISOString().slice(0, 10) };
  const immunizationSince = new Date(Date.now() - GENERIC_SEARCH_DAYS * 86_400_000).toISOString().slice(0, 10);

  const status = await mysql.createConnection({ ...cfg.server, database: cfg.database });
  const [versionRows] = await status.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
  machine.database = String(versionRows[0]?.v ?? 'unknown');
  const statusCounters = async (): Promise<StatusCounters> => {
    const [rows] = await status.query<mysql.RowDataPacket[]>(`SHOW GLOBAL STATUS WHERE Variable_name IN (${STATUS_COUNTERS.map(() => '?').join(',')})`, [...STATUS_COUNTERS]);
    return Object.fromEntries(rows.map((r) => [String(r.Variable_name), Number(r.Value)]));
  };

  // 4-5: the two servers
  const profileDir = join(RESULTS_DIR, `profile-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const servers: Partial<Record<Side, ChildServer>> = {};
  const results: ScenarioResult[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  // the database settles after seeding and after the leftovers of an earlier run were removed
  // (purge, page flushing): wait for it, up to a minute, before anything is measured
  let idle = await quietCheck();
  for (let i = 0; i < 60 && idle > NOISE_CORES; i++) idle = await quietCheck();
  if (idle > NOISE_CORES) {
    warnings.push(`before the run, the machine was already using ${idle.toFixed(2)} cores: other processes compete with the benchmark`);
    log(`WARNING: ${warnings[warnings.length - 1]}`);
  }
  let hmsExit: number | null = null;
  try {
    const hmsEnv = {
      ...process.env, DATABASE_URL: cfg.databaseUrl, REDIS_URL: cfg.redisUrl, HOST: '127.0.0.1',
      LOG_LEVEL: 'warn', HMS_DB_POOL_MAX: String(cfg.pool), HMS_BASE_URL: '',
      // one bench user makes thousands of requests a second: the limiter stays in the path, never trips
      HMS_RATE_LIMIT: '1000000000',
    };
    // `hms serve` refuses to start with pending migrations: apply them with the CLI's own code
    // (the sources may have changed since this process loaded them)
    await runNode([join(ROOT, 'bin', 'hms.mjs'), 'migrate'], hmsEnv, ROOT);
    const hmsPort = await freePort();
    servers.hms = await startServer({
      name: 'hms',
      args: [...(cfg.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), join(ROOT, 'bin', 'hms.mjs'), 'serve'],
      env: { ...hmsEnv, PORT: String(hmsPort) },
      port: hmsPort,
      cwd: ROOT,
      logFile: join(RESULTS_DIR, 'hms.log'),
    });
    const floorPort = await freePort();
    servers.floor = await startServer({
      name: 'floor',
      args: ['--import', 'tsx', join(ROOT, 'bench', 'floor.ts')],
      env: { ...process.env, FLOOR_PORT: String(floorPort), FLOOR_DATABASE_URL: cfg.databaseUrl, FLOOR_POOL: String(cfg.pool) },
      port: floorPort,
      cwd: ROOT,
      logFile: join(RESULTS_DIR, 'floor.log'),
    });
    log(`HMS (pid ${servers.hms.pid}) on ${servers.hms.url}, floor (pid ${servers.floor.pid}) on ${servers.floor.url}`);

    const auth = { authorization: `Bearer ${token}`, accept: 'application/fhir+json' };
    await smoke('HMS read', `${servers.hms.url}/fhir/Patient/${ids[0]}`, auth, (b) => (b as { id?: string }).id === ids[0]);
    await smoke('floor read', `${servers.floor.url}/floor/patient/${ids[0]}`, {}, (b) => (b as { id?: string }).id === ids[0]);
    await smoke('HMS search', `${servers.hms.url}/fhir/Patient?name=${prefixes[0]}`, auth, (b) => ((b as { entry?: unknown[] }).entry?.length ?? 0) > 0);
    await smoke('floor search', `${servers.floor.url}/floor/patient?name=${prefixes[0]}`, {}, (b) => Array.isArray(b) && b.length > 0);
    if (cfg.scenarios.some((s) => s.startsWith('generic-'))) {
      const imm = immunizationIds[0]!;
      await smoke('HMS generic read', `${servers.hms.url}/fhir/Immunization/${imm}`, auth, (b) => (b as { id?: string }).id === imm);
      await smoke('floor generic read', `${servers.floor.url}/floor/immunization/${imm}`, {}, (b) => (b as { id?: string }).id === imm);
      const withOne = (await db('fhir_resources').where({ resource_type: 'Immunization', id: imm }).first('patient_id')) as { patient_id: string };
      const q = `patient=${withOne.patient_id}&date=ge1900-01-01`;
      await smoke('HMS generic search', `${servers.hms.url}/fhir/Immunization?${q}`, auth, (b) => ((b as { entry?: unknown[] }).entry?.length ?? 0) === 3);
      await smoke('floor generic search', `${servers.floor.url}/floor/immunization?patient=${withOne.patient_id}&date=1900-01-01`, {}, (b) => Array.isArray(b) && b.length === 3);
    }
    if (others) {
      for (const [as, a] of Object.entries(others.inputs)) {
        await smoke(`HMS read as ${as}`, `${servers.hms.url}/fhir/Patient/${a.ids[0]}`, { authorization: `Bearer ${a.token}`, accept: 'application/fhir+json' }, (b) => (b as { id?: string }).id === a.ids[0]);
      }
    }

    // 6: the measurements, at each data scale
    const dbPid = databaseServerPid();
    const runs: { scenario: ScenarioName; scale: number }[] = [];
    for (const scale of cfg.scales) {
      for (const scenario of cfg.scenarios) if (scale === cfg.scales[0] || SCALED_SCENARIOS.includes(scenario)) runs.push({ scenario, scale });
    }
    let scaleNow = cfg.scales[0]!;
    for (const { scenario, scale } of runs) {
      if (scale !== scaleNow) {
        scaleNow = scale;
        const more = await seedUpTo(db, cfg.patients * scale);
        if (more) seeds.push(more);
        ids = await sampleIds(db, cfg.patients);
        immunizationIds = await sampleIds(db, cfg.patients, await seededImmunizationIds(db));
        // seeding takes longer than the session's idle timeout: a fresh session for the next measurements
        token = await startSession(db, userId, { ttlSeconds: 4 * 3600, userAgent: 'hms-bench' });
      }
      const access = ACCESS_SCENARIOS[scenario];
      // a system token lives at most 300 s: a fresh one for each measurement
      if (access?.as === 'system' && others) await refreshSystemToken(db, others);
      const requests = scenarioRequests(scenario, { ids, prefixes, token, observation, immunizationIds, immunizationSince, askers: others?.inputs });
      const bySide = {} as Record<Side, ScenarioResult['hms']>;
      // an access scenario has the floor of its base scenario, measured in this run
      const baseFloor = access ? results.find((r) => r.scenario === access.base && r.scale === scale)?.floor : undefined;
      if (baseFloor) bySide.floor = baseFloor;
      for (const side of (baseFloor ? ['hms'] : ['hms', 'floor']) as Side[]) {
        const server = servers[side]!;
        const request: LoadRequest = requests[side];
        const opts = { url: server.url, connections: cfg.connections, duration: cfg.duration, request, serverPid: server.pid, databasePid: dbPid, status: statusCounters };
        process.stdout.write(`${scenario.padEnd(14)} x${String(scale).padEnd(3)} ${side.padEnd(5)} ... `);
        await warmUp(opts, cfg.warmup);
        const m = await measure(opts);
        bySide[side] = m;
        log(`${m.reqPerSec.toFixed(0)} req/s, p50 ${m.latencyMs.p50.toFixed(2)} ms, p99 ${m.latencyMs.p99.toFixed(2)} ms` +
          (m.non2xx || m.errors || m.timeouts ? `  (non-2xx ${m.non2xx}, errors ${m.errors}, timeouts ${m.timeouts}: ${JSON.stringify(m.statusCodes)})` : ''));
        if (m.non2xx || m.errors || m.timeouts) {
          problems.push(`${scenario} on ${side}: ${m.non2xx} non-2xx responses, ${m.errors} errors, ${m.timeouts} timeouts (status codes ${JSON.stringify(m.statusCodes)})`);
        }
        if (m.requests === 0) problems.push(`${scenario} on ${side}: no request completed`);
        if ((m.cpuCores.other ?? 0) > NOISE_CORES) {
          warnings.push(`${scenario} on ${side}: other processes used ${m.cpuCores.other!.toFixed(2)} cores of ${machine.cpus} during the measurement; its figures are unreliable`);
        }
      }
      const admin = access ? results.find((r) => r.scenario === access.base && r.scale === scale) : undefined;
      results.push({
        scenario, scale, patients: cfg.patients * scale, hms: bySide.hms, floor: bySide.floor, ratio: bySide.hms.reqPerSec / bySide.floor.reqPerSec,
        ...(admin ? { vsAdmin: bySide.hms.reqPerSec / admin.hms.reqPerSec } : {}),
      });
    }
  } finally {
    await db.destroy();
    hmsExit = (await servers.hms?.stop()) ?? null;
    await servers.floor?.stop();
    await status.end();
    for (const server of Object.values(servers)) {
      const n = server.linesSinceReady();
      if (!n) continue;
      log(`${server.name} logged ${n} line(s) while under load (${server.logFile}):`);
      for (const [what, count] of Object.entries(logErrorCounts(server.logFile))) log(`  ${count} x ${what}`);
    }
  }

  // 7: report
  const read = results.find((r) => r.scenario === 'read');
  const growth = scaleGrowth(results);
  const met = read ? read.ratio >= cfg.readTarget : undefined;
  const accessMissed = results.filter((r) => r.vsAdmin !== undefined && r.vsAdmin < cfg.accessTarget);
  for (const r of accessMissed) problems.push(`${r.scenario}: ${(r.vsAdmin! * 100).toFixed(0)} % of the admin's throughput, below the access target ${(cfg.accessTarget * 100).toFixed(0)} %`);
  // the generic store's targets: its read against the floor at least as good as the seed types' read; its search flat
  const genericRead = results.find((r) => r.scenario === 'generic-read');
  const genericReadMet = genericRead && read ? genericRead.ratio >= read.ratio : undefined;
  if (genericReadMet === false) problems.push(`generic-read ratio ${genericRead!.ratio.toFixed(2)} is below the read ratio ${read!.ratio.toFixed(2)} of the same run`);
  const genericGrowth = growth.find((g) => g.scenario === 'generic-search')?.at.at(-1);
  const genericSearchMet = genericGrowth ? genericGrowth.growth <= GENERIC_SEARCH_GROWTH : undefined;
  if (genericSearchMet === false) problems.push(`generic-search p50 grew x${genericGrowth!.growth.toFixed(2)} up to ${genericGrowth!.patients} patients, above x${GENERIC_SEARCH_GROWTH}`);
  const verdict = problems.length === 0 && met !== false ? 'pass' : 'fail';
  const out: BenchResults = {
    date: new Date().toISOString(),
    machine,
    settings: { patients: cfg.patients, durationSeconds: cfg.duration, warmupSeconds: cfg.warmup, connections: cfg.connections, dbPool: cfg.pool, database: cfg.database },
    hmsVersion: packageVersion,
    source,
    seed: { seededThisRun: seeds.length > 0, stats: seeds },
    scenarios: results,
    scaling: growth,
    target: { scenario: 'read', minRatio: cfg.readTarget, ratio: read?.ratio, met },
    accessTarget: { minRatioToAdmin: cfg.accessTarget, met: accessMissed.length === 0 },
    genericTargets: {
      read: { minRatio: read?.ratio, ratio: genericRead?.ratio, met: genericReadMet },
      search: { maxGrowth: GENERIC_SEARCH_GROWTH, growth: genericGrowth?.growth, met: genericSearchMet },
    },
    problems,
    warnings,
    verdict,
  };

  if (cfg.profile) {
    const file = newestProfile(profileDir);
    if (!file) {
      log(`\nNo CPU profile was written to ${profileDir} (HMS exited with ${hmsExit})`);
    } else {
      out.profile = {};
      for (const r of results) {
        const summary = summarizeProfile(file, ROOT, r.hms.window);
        summary.scope = `${r.scenario} measurement`;
        out.profile[r.scenario as ScenarioName] = summary;
        log('\n' + formatProfile(summary));
      }
    }
  }

  log('\n' + resultsTable(results));
  log('\n' + detailsTable(results));
  if (results.some((r) => r.vsAdmin !== undefined)) log('\n' + accessTable(results));
  if (growth.length) log('\n' + growthTable(growth));
  const file = join(RESULTS_DIR, 'latest.json');
  writeResults(file, out);
  log(`\nResults written to ${file}`);
  for (const w of warnings) log(`WARNING: ${w}`);
  for (const p of problems) log(`PROBLEM: ${p}`);
  if (genericRead && read) log(`generic-read ratio ${genericRead.ratio.toFixed(2)} ${genericReadMet ? '>=' : '<'} read ratio ${read.ratio.toFixed(2)} (target: >=)`);
  if (genericGrowth) log(`generic-search p50 growth x${genericGrowth.growth.toFixed(2)} up to ${genericGrowth.patients} patients (target: <= x${GENERIC_SEARCH_GROWTH})`);
  if (read) {
    log(`Verdict: ${verdict.toUpperCase()}: read ratio ${read.ratio.toFixed(2)} ${met ? '>=' : '<'} target ${cfg.readTarget}` +
      (problems.length ? `, and ${problems.length} problem(s) above` : ''));
  } else {
    log(`Verdict: ${verdict.toUpperCase()}: read not measured (BENCH_SCENARIOS)` + (problems.length ? `, ${problems.length} problem(s) above` : ''));
  }
  return verdict === 'pass' ? 0 : 1;
}

main().then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof BenchConfigError) {
      process.stderr.write(`bench: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
