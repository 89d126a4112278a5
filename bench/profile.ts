/**
 * Summary of a V8 CPU profile (node --cpu-prof) of the HMS server: CPU time by package or
 * source area, by function (self time), and by the deepest HMS source function on the stack
 * (which of our code paths the time was spent under, library work included).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface ProfileRow { name: string; ms: number; share: number }
export interface ProfileSummary {
  file: string;
  /** What the summary covers, e.g. 'read' (one measurement window) or 'whole run'. */
  scope: string;
  totalMs: number;
  /** Busy time (total minus idle). */
  busyMs: number;
  byArea: ProfileRow[];
  byFunction: ProfileRow[];
  bySourceFunction: ProfileRow[];
}

/** The newest main-thread profile in a directory (CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile, thread 0). */
export function newestProfile(dir: string): string | undefined {
  try {
    const files = readdirSync(dir).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)).sort();
    return files.length ? join(dir, files[files.length - 1]!) : undefined;
  } catch {
    return undefined;
  }
}

function areaOf(url: string, functionName: string, root: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native/V8)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 14).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  return relative(root, path);
}

function top(map: Map<string, number>, total: number, n: number): ProfileRow[] {
  return [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({ name, ms: us / 1000, share: us / total }));
}

/**
 * Summarises a profile; with a window (CLOCK_MONOTONIC microseconds, the clock of both V8's
 * profile timestamps and process.hrtime) only the samples taken inside it count.
 */
export function summarizeProfile(file: string, root: string, window?: { fromUs: number; toUs: number }, n = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const srcRoot = join(root, 'src') + '/';

  const area = new Map<string, number>();
  const fn = new Map<string, number>();
  const srcFn = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number): void => { m.set(k, (m.get(k) ?? 0) + v); };
  const label = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${areaOf(url, functionName, root)}:${lineNumber + 1}` : '';
    return `${functionName || '(anonymous)'}${where ? ' ' + where : ''}`;
  };
  const deepestSource = new Map<number, string>();
  const sourceOf = (id: number): string => {
    const known = deepestSource.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id)!;
    const path = node.callFrame.url.startsWith('file://') ? decodeURIComponent(new URL(node.callFrame.url).pathname) : '';
    const p = parent.get(id);
    const found = path.startsWith(srcRoot) ? label(node) : p !== undefined ? sourceOf(p) : '(no HMS frame: framework, I/O callbacks, GC)';
    deepestSource.set(id, found);
    return found;
  };

  let total = 0;
  let idle = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    const node = byId.get(id)!;
    total += dt;
    if (node.callFrame.functionName === '(idle)') { idle += dt; return; }
    add(area, areaOf(node.callFrame.url, node.callFrame.functionName, root), dt);
    add(fn, label(node), dt);
    add(srcFn, sourceOf(id), dt);
  });
  const busy = total - idle;
  return {
    file,
    scope: window ? 'window' : 'whole run',
    totalMs: total / 1000,
    busyMs: busy / 1000,
    byArea: top(area, busy, n),
    byFunction: top(fn, busy, n),
    bySourceFunction: top(srcFn, busy, n),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const section = (title: string, rows: ProfileRow[]): string =>
    [`  ${title}`, ...rows.map((r) => `    ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`)].join('\n');
  return [
    `HMS CPU profile, ${s.scope} (${s.file}): ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s (shares are of busy time)`,
    section('by package / source file (self time)', s.byArea),
    section('by function (self time)', s.byFunction),
    section('by deepest HMS source function on the stack', s.bySourceFunction),
  ].join('\n');
}
