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

export interface ClientRun { child: ChildProcess; done: Promise<void>; cleanup(): void }

/**
 * Runs a client program with the target's connection as its option file (--defaults-extra-file
 * must come first). Resolves when it exits 0; rejects with its stderr otherwise.
 */
export function runClient(program: string, target: MysqlTarget, args: string[], stdio: { stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' } = {}): ClientRun {
  const dir = mkdtempSync(join(tmpdir(), 'hms-mysql-'));
  const file = join(dir, 'client.cnf');
  const quote = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  writeFileSync(file, `[client]\nhost=${quote(target.host)}\nport=${target.port}\nuser=${quote(target.user)}\npassword=${quote(target.password)}\n`, { mode: 0o600 });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const child = spawn(program, [`--defaults-extra-file=${file}`, ...args], { stdio: [stdio.stdin ?? 'ignore', stdio.stdout ?? 'pipe', 'pipe'], env: { ...process.env, TZ: 'UTC' } });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 20_000) stderr += d; });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => { cleanup(); reject(err); });
    child.once('close', (code, signal) => {
      cleanup();
      if (code === 0) resolve();
      else reject(new Error(`${program.split('/').pop()} ${signal ? `was killed by ${signal}` : `exited ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
  return { child, done, cleanup };
}
