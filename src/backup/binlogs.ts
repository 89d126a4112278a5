/**
 * `hms backup binlogs`: ships the server's binlog to HMS_BINLOG_DIR as it is written
 * (`mariadb-binlog --read-from-remote-server --raw --stop-never`, which the server streams to like
 * a replica), so that what is committed is on another disk within about a second: the RPO of a
 * point-in-time restore is that lag, far inside the seed's 15 minutes. It starts from the last
 * file already shipped (fetched again whole), else from the newest backup's, else from the
 * server's oldest; when the connection drops (a server restart) it starts again after 2 s.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import type { Config } from '../config.js';
import { createDb } from '../db/knex.js';
import { listBackups } from './backup.js';
import { sameServer, serverIdentity, sortBinlogs, type ServerIdentity } from './binlog-files.js';
import { mysqlTarget, runClient, type ClientRun } from './mysql-tools.js';

const describe = (s: ServerIdentity) => `server_id ${s.serverId} on ${s.hostname}:${s.port} (${s.binlogBase})`;

/** The server whose binlog a directory holds (server.json, written by the first shipping). */
export async function shippedServer(dir: string): Promise<ServerIdentity | undefined> {
  const path = join(dir, 'server.json');
  return existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as ServerIdentity) : undefined;
}

/**
 * Refuses to ship another server's binlog into a directory that holds one server's: its file
 * names would collide (binlog.000007 of two servers) and a restore would replay the wrong one.
 * Point the shipper at one database node, never at a load balancer that may switch nodes.
 */
async function checkServer(config: Config, dir: string): Promise<void> {
  const db = createDb({ ...config, HMS_DB_POOL_MAX: 1 });
  try {
    const now = await serverIdentity(db);
    const before = await shippedServer(dir);
    if (before && !sameServer(before, now)) throw new Error(`${dir} holds the binlog of ${describe(before)}, and DATABASE_URL reaches ${describe(now)}: ship each server into a directory of its own (HMS_BINLOG_DIR)`);
    if (!before) await writeFile(join(dir, 'server.json'), `${JSON.stringify(now, null, 2)}\n`);
  } finally {
    await db.destroy();
  }
}

async function firstFile(config: Config): Promise<string> {
  const dir = config.HMS_BINLOG_DIR!;
  const shipped = existsSync(dir) ? sortBinlogs(await readdir(dir)) : [];
  if (shipped.length) return shipped.at(-1)!;
  const newest = (await listBackups(config.HMS_BACKUP_DIR!)).at(-1)?.manifest.binlog?.file;
  if (newest) return newest;
  const db = createDb({ ...config, HMS_DB_POOL_MAX: 1 });
  try {
    const [rows] = (await db.raw('SHOW BINARY LOGS')) as [{ Log_name: string }[]];
    if (!rows.length) throw new Error('the server writes no binlog (log_bin is OFF): see docs/backup.md');
    return rows[0]!.Log_name;
  } finally {
    await db.destroy();
  }
}

export interface BinlogShipper { stop(): Promise<void>; running(): ClientRun | undefined }

export async function shipBinlogs(config: Config, log: (line: string) => void): Promise<BinlogShipper> {
  if (!config.DATABASE_URL) throw new Error('binlog shipping is for MariaDB (DATABASE_URL); the embedded SQLite database is backed up whole');
  const dir = config.HMS_BINLOG_DIR!;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = mysqlTarget(config.DATABASE_URL);
  const program = 'mariadb-binlog';
  // a server id of its own: the primary drops an older connection of the same id
  const serverId = randomInt(100_000, 2 ** 31 - 1);
  let stopped = false;
  let current: ClientRun | undefined;
  const loop = (async () => {
    while (!stopped) {
      const first = await checkServer(config, dir).then(() => firstFile(config)).catch((err: unknown) => { log(`binlog shipping: ${(err as Error).message}`); return undefined; });
      if (first && !stopped) {
        log(`binlog shipping from ${first} into ${dir}`);
        current = runClient(program, target, ['--read-from-remote-server', '--raw', '--stop-never', `--stop-never-slave-server-id=${serverId}`, `--result-file=${dir}/`, first], { stdout: 'ignore' });
        await current.done.catch((err: unknown) => { if (!stopped) log(`binlog shipping stopped: ${(err as Error).message}`); });
        current = undefined;
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return {
    running: () => current,
    async stop() {
      stopped = true;
      current?.kill();
      await loop;
    },
  };
}
