/**
 * A private MariaDB server for one test (Debian's mariadbd, the one CI already runs): a fresh data
 * directory, a free port, the binlog on (ROW format, as docs/backup.md asks of production), so
 * that point-in-time recovery and binlog shipping can be tested without touching the shared
 * server, whose binlog is off. Stopped and removed at teardown.
 */
import type { Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb } from '../../src/db/knex.js';
import { freePort, spawnRun, until, type Run } from './processes.js';

export const MARIADBD = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((p) => existsSync(p));

export class MariadbServer {
  private constructor(readonly port: number, readonly dir: string, readonly run: Run) {}

  /** A URL of a database on it (created). */
  async database(name: string): Promise<string> {
    const url = `mysql://root@127.0.0.1:${this.port}/${name}`;
    const admin = createDb({ DATABASE_URL: `mysql://root@127.0.0.1:${this.port}/mysql`, HMS_DATA_DIR: '', HMS_DB_POOL_MAX: 1 });
    await admin.raw(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`).finally(() => admin.destroy());
    return url;
  }

  static async start(t: Test): Promise<MariadbServer> {
    if (!MARIADBD) throw new Error('mariadbd is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'hms-mariadb-'));
    const data = join(dir, 'data');
    execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
    const port = await freePort();
    const run = spawnRun(t, MARIADBD, [
      '--no-defaults', `--datadir=${data}`, '--user=root', `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(dir, 'sock')}`,
      `--pid-file=${join(dir, 'pid')}`, `--log-bin=${join(data, 'binlog')}`, '--server-id=1', '--binlog-format=ROW',
      '--innodb-buffer-pool-size=64M', '--skip-name-resolve',
    ], { ...process.env }, false);
    const server = new MariadbServer(port, dir, run);
    t.teardown(async () => {
      if (run.running()) { run.child.kill('SIGTERM'); await run.exited; }
      rmSync(dir, { recursive: true, force: true });
    });
    await until(async () => {
      const db = createDb({ DATABASE_URL: `mysql://root@127.0.0.1:${port}/mysql`, HMS_DATA_DIR: '', HMS_DB_POOL_MAX: 1 });
      try { await db.raw('SELECT 1'); return true; } finally { await db.destroy(); }
    }, (ok) => ok, 30_000, 200);
    return server;
  }
}
