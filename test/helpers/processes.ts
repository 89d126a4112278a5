/**
 * Real processes for fault tests: `node bin/hms.mjs ...` children with a clean environment (as
 * test/e2e/cli.test.ts spawns them), a supervisor that starts a worker again whenever one exits,
 * a private redis-server, a TCP proxy that can be cut, and bounded polling.
 */
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (test/helpers/ -> ../..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'hms.mjs');

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** The environment of a child: this process's, minus test-runner loaders, plus the test's settings. */
export function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.HMS_TEST_FAULTS;
  for (const key of Object.keys(env)) if (key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key];
  // no demo data (test/e2e/demo.test.ts turns it on), no overload refusals on a loaded CI machine
  const out: NodeJS.ProcessEnv = { ...env, LOG_LEVEL: 'warn', HOST: '127.0.0.1', HMS_MAX_EVENT_LOOP_DELAY: '0', HMS_DEMO: '0' };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Children still running when this process exits (a timed-out test) are killed, not orphaned. */
const live = new Set<ChildProcess>();
process.once('exit', () => { for (const c of live) c.kill('SIGKILL'); });

export interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
}

/** Spawns a command; output is captured; killed (SIGKILL) at teardown if still running (unless `teardown` is false: the caller sees to it). */
export function spawnRun(t: Test, command: string, args: string[], env: NodeJS.ProcessEnv, teardown = true): Run {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  let done = false;
  live.add(child);
  child.once('exit', () => live.delete(child));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { done = true; resolve({ code, signal }); });
    child.once('error', (e) => { done = true; err += String(e); resolve({ code: -1, signal: null }); });
  });
  const run: Run = { child, stdout: () => out, stderr: () => err, exited, running: () => !done };
  if (teardown) t.teardown(async () => {
    if (run.running()) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return run;
}

/** Spawns `node bin/hms.mjs ...args`. */
export function hms(t: Test, args: string[], env: NodeJS.ProcessEnv, teardown = true): Run {
  return spawnRun(t, process.execPath, [BIN, ...args], env, teardown);
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Resolves with p's value, or rejects after ms. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms); }),
  ]);
}

/** Polls `what` every `every` ms until `ok` holds or ms pass; returns the last value either way. */
export async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms: number, every = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    let v: T;
    try {
      v = await what();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(every);
      continue;
    }
    if (ok(v) || Date.now() > end) return v;
    await sleep(every);
  }
}

/** Waits until the child printed `text` on stdout (bounded), failing early if it exits. */
export async function waitForOutput(run: Run, text: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!run.stdout().includes(text)) {
    if (!run.running()) throw new Error(`the process exited before printing ${JSON.stringify(text)}: ${run.stderr().slice(-2000)}`);
    if (Date.now() > end) throw new Error(`the process did not print ${JSON.stringify(text)} within ${ms} ms: ${run.stderr().slice(-2000)}`);
    await sleep(50);
  }
}

/** Stops a child with SIGTERM (graceful), SIGKILL after `graceMs`. */
export async function stop(run: Run, graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (!run.running()) return run.exited;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => { if (run.running()) run.child.kill('SIGKILL'); }, graceMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `hms worker` processes, started again whenever one exits (when `restart` is on): the
 * supervisor of a deployment (systemd, Kubernetes) in small. Stopped (SIGTERM, then SIGKILL)
 * at the test's teardown.
 */
export class WorkerPool {
  readonly runs: Run[] = [];
  /** Exits seen while the pool was up: code and signal. */
  readonly exits: { code: number | null; signal: NodeJS.Signals | null; at: number }[] = [];
  restart = true;
  private closing = false;

  constructor(t: Test, private readonly env: NodeJS.ProcessEnv, private readonly args: string[] = []) {
    this.t = t;
    t.teardown(() => this.close());
  }

  private readonly t: Test;

  /** Starts one worker; resolves once it says it runs. */
  async start(): Promise<Run> {
    if (this.closing) throw new Error('the pool is closed');
    const run = hms(this.t, ['worker', ...this.args], this.env, false);
    this.runs.push(run);
    void run.exited.then((exit) => {
      if (this.closing) return;
      this.exits.push({ ...exit, at: Date.now() });
      if (this.restart) void this.start().catch(() => undefined);
    });
    await waitForOutput(run, 'HMS worker running', 60_000);
    return run;
  }

  live(): Run[] {
    return this.runs.filter((r) => r.running());
  }

  /** Kills every live worker at once with SIGKILL (no restart). */
  async killAll(): Promise<void> {
    const live = this.live();
    for (const r of live) r.child.kill('SIGKILL');
    await Promise.all(live.map((r) => r.exited));
  }

  /** Stops every worker gracefully; none is started again. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.restart = false;
    await Promise.all(this.runs.map(async (r) => {
      const wasRunning = r.running();
      const exit = await stop(r);
      // a worker that had to be killed did not shut down gracefully: say so, with what it logged
      if (wasRunning && exit.signal === "SIGKILL") process.stderr.write(`worker ${r.child.pid} did not stop on SIGTERM within 10 s; it logged:\n${(r.stderr() + r.stdout()).slice(-3000)}\n`);
    }));
    // HMS_TEST_LOG_DIR: every worker's output kept in a file there (diagnostics)
    if (process.env.HMS_TEST_LOG_DIR) writeFileSync(join(process.env.HMS_TEST_LOG_DIR, `workers-${Date.now()}.log`), this.logs());
  }

  /** All the workers' output (diagnostics). */
  logs(): string {
    return this.runs.map((r, i) => `--- worker ${i} (pid ${r.child.pid})\n${r.stderr()}${r.stdout()}`).join('\n');
  }
}

/** A private redis-server on a port of its own, without persistence: each start is empty. */
export class RedisServer {
  run?: Run;
  constructor(private readonly t: Test, readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start(): Promise<void> {
    // killed by the test (kill()), not at the teardown of each start: a restart's would run first
    this.run = spawnRun(this.t, 'redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--maxmemory-policy', 'noeviction'], { ...process.env }, false);
    await waitForOutput(this.run, 'Ready to accept connections', 10_000);
  }

  /** Kills it (SIGKILL: it keeps nothing anyway). */
  async kill(): Promise<void> {
    if (!this.run?.running()) return;
    this.run.child.kill('SIGKILL');
    await this.run.exited;
  }
}

/**
 * A TCP proxy to a server (the database) that the test can cut: every connection destroyed at
 * both ends and nothing listening, until it listens again on the same port.
 */
export class CuttableProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;
  connections = 0;

  constructor(private readonly targetHost: string, private readonly targetPort: number) {}

  async listen(port = this.port): Promise<number> {
    const server = createServer((client) => {
      this.connections++;
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const end = () => { client.destroy(); upstream.destroy(); this.sockets.delete(client); this.sockets.delete(upstream); };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    return this.port;
  }

  /** Destroys every connection and stops listening. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  async close(): Promise<void> {
    await this.cut();
  }
}
