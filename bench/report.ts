/** The benchmark's tables (Markdown, so they paste into docs/benchmarks.md) and its JSON results. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ScenarioName } from './config.js';
import type { Measurement } from './measure.js';
import type { SeedStats } from './seed.js';
import type { ProfileSummary } from './profile.js';

export interface ScenarioResult {
  scenario: ScenarioName;
  /** Data scale (multiple of the base patient count) and the patients the database held. */
  scale: number;
  patients: number;
  hms: Measurement;
  floor: Measurement;
  /** HMS req/s ÷ floor req/s */
  ratio: number;
  /** Access scenarios: HMS req/s ÷ HMS req/s of the same request as admin (the access check's cost). */
  vsAdmin?: number;
}

export interface BenchResults {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; os: string; node: string; database: string };
  settings: { patients: number; durationSeconds: number; warmupSeconds: number; connections: number; dbPool: number; database: string };
  hmsVersion: string;
  /** git commit of the sources under test, and files changed since it (uncommitted work is measured too). */
  source: { commit: string; modifiedFiles: number };
  seed: { seededThisRun: boolean; stats: SeedStats[] };
  scenarios: ScenarioResult[];
  /** p50 latency of each scaled scenario at the smallest and at each larger scale. */
  scaling: ScaleGrowth[];
  target: { scenario: 'read'; minRatio: number; ratio?: number; met?: boolean };
  accessTarget?: { minRatioToAdmin: number; met: boolean };
  /** The generic store: generic-read's ratio against the read ratio of the same run; generic-search's p50 growth. */
  genericTargets?: { read: { minRatio?: number; ratio?: number; met?: boolean }; search: { maxGrowth: number; growth?: number; met?: boolean } };
  problems: string[];
  /** Conditions that make the figures less trustworthy (e.g. other processes using CPU). */
  warnings: string[];
  verdict: 'pass' | 'fail';
  profile?: Partial<Record<ScenarioName, ProfileSummary>>;
}

const num = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const ms = (n: number): string => num(n, n < 10 ? 2 : 1);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/**
 * The main table: throughput (all completed requests) and latency (2xx responses only) of HMS and
 * of the floor, their ratio, and the failed requests (non-2xx, errors, timeouts) on each side.
 */
export function resultsTable(results: ScenarioResult[]): string {
  return table(
    ['scenario', 'patients', 'HMS req/s', 'HMS p50 ms', 'HMS p99 ms', 'floor req/s', 'floor p50 ms', 'floor p99 ms', 'ratio', 'non-2xx HMS / floor'],
    results.map((r) => [
      r.scenario, String(r.patients), num(r.hms.reqPerSec), ms(r.hms.latencyMs.p50), ms(r.hms.latencyMs.p99),
      num(r.floor.reqPerSec), ms(r.floor.latencyMs.p50), ms(r.floor.latencyMs.p99), num(r.ratio, 2),
      `${r.hms.non2xx + r.hms.errors + r.hms.timeouts} / ${r.floor.non2xx + r.floor.errors + r.floor.timeouts}`,
    ]),
  );
}

/** Where the work went: CPU cores busy and SQL statements per request, on each side. */
export function detailsTable(results: ScenarioResult[]): string {
  const sql = (m: Measurement): string => {
    const s = m.sqlPerRequest;
    if (s.Questions === undefined) return 'n/a';
    return `${num(s.Questions, 2)} (${num(s.Com_select, 2)} sel, ${num(s.Com_insert, 2)} ins, ${num(s.Com_update, 2)} upd, ${num(s.Com_delete, 2)} del, ${num(s.Com_commit, 2)} commit)`;
  };
  const rows: string[][] = [];
  for (const r of results) {
    for (const side of ['hms', 'floor'] as const) {
      const m = r[side];
      rows.push([`${r.scenario} x${r.scale} ${side}`, String(m.requests), num(m.cpuCores.server, 2), num(m.cpuCores.database, 2), num(m.cpuCores.loadGenerator, 2), num(m.cpuCores.other, 2), num(m.cpuCores.machine, 2), sql(m)]);
    }
  }
  return table(['run', 'requests', 'server CPU', 'DB CPU', 'autocannon CPU', 'other CPU', 'machine CPU', 'SQL statements per request'], rows);
}

/** The access scenarios beside their admin scenario: throughput, latency, and the ratios to admin and to the floor. */
export function accessTable(results: ScenarioResult[]): string {
  const rows = results.filter((r) => r.vsAdmin !== undefined).map((r) => {
    const base = r.scenario.replace(/-.*/, '');
    const admin = results.find((x) => x.scenario === base && x.scale === r.scale)!;
    return [r.scenario, num(r.hms.reqPerSec), ms(r.hms.latencyMs.p50), ms(r.hms.latencyMs.p99), num(admin.hms.reqPerSec), num(r.vsAdmin, 2), num(r.ratio, 2), num(admin.ratio, 2)];
  });
  return table(['asked as', 'req/s', 'p50 ms', 'p99 ms', 'admin req/s', 'vs admin', 'vs floor', 'admin vs floor'], rows);
}

export interface ScaleGrowth { scenario: ScenarioName; base: { patients: number; p50: number }; at: { patients: number; p50: number; growth: number }[] }

/** How the HMS p50 of each scenario measured at several scales grew from the smallest one. */
export function scaleGrowth(results: ScenarioResult[]): ScaleGrowth[] {
  const out: ScaleGrowth[] = [];
  for (const scenario of [...new Set(results.map((r) => r.scenario))]) {
    const runs = results.filter((r) => r.scenario === scenario).sort((a, b) => a.scale - b.scale);
    if (runs.length < 2) continue;
    const base = runs[0]!;
    out.push({
      scenario,
      base: { patients: base.patients, p50: base.hms.latencyMs.p50 },
      at: runs.slice(1).map((r) => ({ patients: r.patients, p50: r.hms.latencyMs.p50, growth: r.hms.latencyMs.p50 / base.hms.latencyMs.p50 })),
    });
  }
  return out;
}

export function growthTable(growth: ScaleGrowth[]): string {
  return table(
    ['scenario', 'patients', 'HMS p50 ms', 'patients (larger)', 'HMS p50 ms (larger)', 'p50 growth'],
    growth.flatMap((g) => g.at.map((a) => [g.scenario, String(g.base.patients), ms(g.base.p50), String(a.patients), ms(a.p50), `x${num(a.growth, 2)}`])),
  );
}

export function writeResults(file: string, results: BenchResults): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
}
