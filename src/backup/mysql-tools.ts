/**
 * The MariaDB client programs backups run (mariadb-dump, mariadb, mariadb-binlog, from Debian's
 * mariadb-client), with DATABASE_URL's credentials in a temporary option file readable by this
 * user only, never on a command line (where `ps` would show the password).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mysqlConnection } from '../db/knex.js';

export interface MysqlTarget { host: string; port: number; user: string; password: string; database: string }

export function mysqlTarget(databaseUrl: string): MysqlTarget {
  const c = mysqlConnection(databaseUrl);
  return { host: c.host, port: c.port, user: c.user, password: c.password, database: c.database };
}

/** The same server, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const executable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The first of the programs named that is on PATH (mariadb-dump, else mysqldump ...). */
export function clientProgram(names: string[]): string {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const n of names) for (const dir of dirs) if (executable(join(dir, n))) return join(dir, n);
  throw new Error(`none of ${names.join(', ')} is installed (Debian: apt-get install mariadb-client)`);
}

export interface ClientRun {
  child: ChildProcess;
  /** Resolves when it exits 0; rejects with its stderr's last lines otherwise. */
  done: Promise<void>;
  /** Kills it (SIGKILL) if it still runs, and removes its option file. */
  kill(): void;
}

/** Option files not yet removed: removed synchronously however the process ends. */
const optionDirs = new Set<string>();
process.on('exit', () => { for (const d of optionDirs) rmSync(d, { recursive: true, force: true }); });

/**
 * Runs a client program with the target's connection as its only option file (--defaults-file,
 * which must come first: ~/.my.cnf or /etc/mysql could otherwise point it at another server).
 * Resolves when it exits 0; rejects with its stderr otherwise.
 */
export function runClient(program: string, target: MysqlTarget, args: string[], stdio: { stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' } = {}): ClientRun {
  const dir = mkdtempSync(join(tmpdir(), 'hms-mysql-'));
  optionDirs.add(dir);
  const file = join(dir, 'client.cnf');
  const quote = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  writeFileSync(file, `[client]\nhost=${quote(target.host)}\nport=${target.port}\nuser=${quote(target.user)}\npassword=${quote(target.password)}\n`, { mode: 0o600 });
  const cleanup = () => { rmSync(dir, { recursive: true, force: true }); optionDirs.delete(dir); };
  const child = spawn(program, [`--defaults-file=${file}`, ...args], { stdio: [stdio.stdin ?? 'ignore', stdio.stdout ?? 'pipe', 'pipe'], env: { ...process.env, TZ: 'UTC' } });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 20_000) stderr += d; });
  // a reader gone early (an SQL error in the loader) must fail the restore, not the process
  child.stdin?.on('error', () => undefined);
  child.stdout?.on('error', () => undefined);
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => { cleanup(); reject(err); });
    child.once('close', (code, signal) => {
      cleanup();
      if (code === 0) resolve();
      else reject(new Error(`${program.split('/').pop()} ${signal ? `was killed by ${signal}` : `exited ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
  return {
    child, done,
    kill() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); cleanup(); },
  };
}

/** Waits for all of them; on the first failure kills the others, then rethrows it. */
export async function allOrKill(runs: ClientRun[], streams: Promise<unknown>[] = []): Promise<void> {
  try {
    await Promise.all([...runs.map((r) => r.done), ...streams]);
  } catch (err) {
    for (const r of runs) r.kill();
    await Promise.allSettled([...runs.map((r) => r.done), ...streams]);
    throw err;
  }
}
