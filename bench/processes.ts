/**
 * Child servers of the benchmark (HMS and the floor): free ports, start and wait for /health,
 * stop (also when the benchmark fails or is interrupted), and CPU time read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A TCP port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export interface ChildServer {
  name: string;
  pid: number;
  /** Where its stdout and stderr go. */
  logFile: string;
  /** Lines it has written since it was ready. */
  linesSinceReady(): number;
  /** http://127.0.0.1:port */
  url: string;
  port: number;
  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code (null when killed). */
  stop(): Promise<number | null>;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Makes sure no child outlives the benchmark, however it ends. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping child servers\n`);
      for (const child of live) child.kill('SIGTERM');
      setTimeout(() => process.exit(130), 3000).unref();
      Promise.all([...live].map((c) => new Promise((r) => c.once('exit', r)))).then(() => process.exit(130));
    });
  }
}

/** Runs `node ...args` to completion; rejects with its output unless it exits 0. */
export function runNode(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.on('error', reject);
    child.on('exit', (code) => {
      live.delete(child);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`node ${args.join(' ')} exited with ${code}:\n${out.trim()}`));
    });
  });
}

export interface StartOptions {
  name: string;
  /** Arguments to node. */
  args: string[];
  env: NodeJS.ProcessEnv;
  port: number;
  cwd: string;
  /** Its output is written here (and echoed until it is ready). */
  logFile: string;
  healthPath?: string;
  timeoutMs?: number;
}

/** Starts `node ...args` and resolves once GET healthPath answers 200; rejects (and kills it) otherwise. */
export async function startServer(opts: StartOptions): Promise<ChildServer> {
  hookExit();
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const log = createWriteStream(opts.logFile);
  const child = spawn(process.execPath, opts.args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const tail: string[] = [];
  let ready = false;
  let lines = 0;
  const relay = (chunk: Buffer): void => {
    log.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      tail.push(line.slice(0, 2000));
      if (tail.length > 40) tail.shift();
      if (ready) lines++;
      else process.stderr.write(`[${opts.name}] ${line.slice(0, 2000)}\n`);
    }
  };
  child.stdout!.on('data', relay);
  child.stderr!.on('data', relay);
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exited = code;
      live.delete(child);
      log.end();
      resolve(code);
    });
  });

  const stop = async (): Promise<number | null> => {
    if (exited !== undefined) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exit;
    clearTimeout(timer);
    return code;
  };

  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`${opts.name} exited with code ${exited} before it was ready:\n${tail.join('\n')}`);
    }
    try {
      const res = await fetch(url + (opts.healthPath ?? '/health'));
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${opts.name} did not answer ${opts.healthPath ?? '/health'} within ${(opts.timeoutMs ?? 60_000) / 1000}s:\n${tail.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  ready = true;
  return { name: opts.name, pid: child.pid!, url, port: opts.port, logFile: opts.logFile, linesSinceReady: () => lines, stop };
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, or undefined where /proc is not readable. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "pid (comm)": state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (all cores, everything but idle and iowait), from /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, ...ticks] = line.trim().split(/\s+/);
    const n = ticks.map(Number);
    const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - n[3]! - n[4]!) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Pid of the local database server (mariadbd or mysqld), when it runs on this machine. */
export function databaseServerPid(): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
        if (comm === 'mariadbd' || comm === 'mysqld') return Number(entry);
      } catch {
        // gone, or not ours to read
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** Counts of the distinct errors in a pino (JSON lines) log: "msg (err.code)" -> count. */
export function logErrorCounts(file: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return counts; }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; err?: { code?: string; type?: string } };
      const key = `${entry.msg ?? '(no msg)'}${entry.err ? ` (${entry.err.code ?? entry.err.type ?? 'error'})` : ''}`;
      counts[key] = (counts[key] ?? 0) + 1;
    } catch {
      // not a log entry
    }
  }
  return counts;
}
