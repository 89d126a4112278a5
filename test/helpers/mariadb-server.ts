/**
 * A private MariaDB server (Debian's mariadbd, the one CI already runs) for a test or the backup
 * drill (bench/backup-drill.ts): a fresh data directory, a free port, the binlog on (ROW format,
 * as docs/backup.md asks of production), so that point-in-time recovery and binlog shipping run
 * without touching the shared server, whose binlog is off. Stopped and removed at teardown.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { createDb } from '../../src/db/knex.js';
import { freePort, until } from './processes.js';

export const MARIADBD = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((p) => existsSync(p));

/** What a test (tap's t) or a script gives for cleaning up. */
export interface Teardown { teardown(fn: () => Promise<void> | void): void }

export class MariadbServer {
  private exited: Promise<void>;

  private constructor(readonly port: number, readonly dir: string, private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** The URL of a database on it. */
  url(name: string): string {
    return `mysql://root@127.0.0.1:${this.port}/${name}`;
  }

  /** Creates a database; its URL. */
  async database(name: string): Promise<string> {
    const admin = createDb({ DATABASE_URL: this.url('mysql'), HMS_DATA_DIR: '', HMS_DB_POOL_MAX: 1 });
    await admin.raw(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`).finally(() => admin.destroy());
    return this.url(name);
  }

  /** SIGKILL: the server gone at once, as in a crash (its data directory stays until teardown). */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  static async start(t: Teardown, opts: { bufferPool?: string } = {}): Promise<MariadbServer> {
    if (!MARIADBD) throw new Error('mariadbd is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'hms-mariadb-'));
    const data = join(dir, 'data');
    execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
    const port = await freePort();
    const log = openSync(join(dir, 'error.log'), 'a');
    const child = spawn(MARIADBD, [
      '--no-defaults', `--datadir=${data}`, '--user=root', `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(dir, 'sock')}`,
      `--pid-file=${join(dir, 'pid')}`, `--log-bin=${join(data, 'binlog')}`, '--server-id=1', '--binlog-format=ROW',
      `--innodb-buffer-pool-size=${opts.bufferPool ?? '64M'}`, '--skip-name-resolve',
    ], { stdio: ['ignore', log, log] });
    const server = new MariadbServer(port, dir, child);
    process.once('exit', () => child.kill('SIGKILL'));
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await server.exited; }
      rmSync(dir, { recursive: true, force: true });
    });
    // mysql2 alone, not a knex pool: a refused connection while it starts is expected, not worth a warning
    await until(async () => {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
      await conn.end();
      return true;
    }, (ok) => ok, 30_000, 200);
    return server;
  }
}
