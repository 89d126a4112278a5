/**
 * The HA topology of docs/high-availability.md as local processes, for the failover and scale
 * drills: a MariaDB Galera cluster (Debian's mariadbd with the galera-4 provider, rsync SST) on
 * ports of its own, Redis with a replica and three Sentinels, and HAProxy (Debian's haproxy) in
 * front of the database and of the API processes. Every process is killed when the drill ends.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { freePort } from './processes.js';

const live = new Set<ChildProcess>();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });

function run(cmd: string, args: string[], log: string, opts: { uid?: number; gid?: number } = {}): ChildProcess {
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...opts });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function until(what: () => Promise<boolean>, ms: number, label: string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await what().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${label} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const killed = (c: ChildProcess) => new Promise<void>((resolve) => { if (c.exitCode !== null || c.signalCode !== null) resolve(); else c.once('exit', () => resolve()); });

export interface GaleraNode { name: string; port: number; child: ChildProcess }

/** Three (or n) Galera nodes on 127.0.0.1; the first bootstraps the cluster. */
export class Galera {
  private constructor(readonly nodes: GaleraNode[]) {}

  static async start(dir: string, n = 3): Promise<Galera> {
    const uid = Number(execFileSync('id', ['-u', 'mysql']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'mysql']).toString().trim());
    mkdirSync(dir, { recursive: true });
    chownSync(dir, uid, gid);
    const ports = await Promise.all(Array.from({ length: n }, async () => ({ sql: await freePort(), gcomm: await freePort(), ist: await freePort(), sst: await freePort() })));
    const cluster = `gcomm://${ports.map((p) => `127.0.0.1:${p.gcomm}`).join(',')}`;
    const nodes: GaleraNode[] = [];
    for (let i = 0; i < n; i++) {
      const data = join(dir, `node${i + 1}`);
      execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
      const p = ports[i]!;
      const child = run('mariadbd', [
        '--no-defaults', `--datadir=${data}`, '--user=mysql', `--port=${p.sql}`, '--bind-address=127.0.0.1', `--socket=${join(dir, `node${i + 1}.sock`)}`,
        `--pid-file=${join(dir, `node${i + 1}.pid`)}`, `--server-id=${i + 1}`, `--log-bin=${join(data, 'binlog')}`, '--log-slave-updates=ON', '--binlog-format=ROW',
        '--innodb-autoinc-lock-mode=2', '--innodb-buffer-pool-size=128M', '--skip-name-resolve',
        '--wsrep-on=ON', '--wsrep-provider=/usr/lib/galera/libgalera_smm.so', '--wsrep-cluster-name=hms-drill', `--wsrep-cluster-address=${cluster}`,
        '--wsrep-node-address=127.0.0.1', `--wsrep-node-name=galera${i + 1}`, `--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:${p.gcomm};ist.recv_addr=127.0.0.1:${p.ist}`,
        `--wsrep-sst-receive-address=127.0.0.1:${p.sst}`, '--wsrep-sst-method=rsync', ...(i === 0 ? ['--wsrep-new-cluster'] : []),
      ], join(dir, `node${i + 1}.log`));
      const node = { name: `galera${i + 1}`, port: p.sql, child };
      nodes.push(node);
      // one at a time: each joins by state transfer from the others
      await until(async () => (await Galera.status(node.port, 'wsrep_local_state_comment')) === 'Synced', 120_000, `${node.name} synced`);
    }
    return new Galera(nodes);
  }

  static async status(port: number, name: string): Promise<string | undefined> {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
    try {
      const [rows] = await conn.query('SHOW STATUS LIKE ?', [name]);
      return (rows as { Value: string }[])[0]?.Value;
    } finally {
      await conn.end();
    }
  }

  async sql(i: number, statement: string): Promise<void> {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: this.nodes[i]!.port, user: 'root' });
    try { await conn.query(statement); } finally { await conn.end(); }
  }

  async kill(i: number): Promise<void> {
    this.nodes[i]!.child.kill('SIGKILL');
    await killed(this.nodes[i]!.child);
  }
}

/** A Redis master, a replica and three Sentinels (quorum 2). */
export class RedisHA {
  private constructor(readonly master: { port: number; child: ChildProcess }, readonly replica: { port: number; child: ChildProcess }, readonly sentinels: number[]) {}

  get url(): string {
    return `redis+sentinel://${this.sentinels.map((p) => `127.0.0.1:${p}`).join(',')}/mymaster/0`;
  }

  static async start(dir: string): Promise<RedisHA> {
    mkdirSync(dir, { recursive: true });
    const server = async (name: string, extra: string[]) => {
      const port = await freePort();
      const child = run('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir, '--appendfilename', `${name}.aof`, '--appenddirname', `${name}-aof`, '--maxmemory-policy', 'noeviction', ...extra], join(dir, `${name}.log`));
      await until(async () => { const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }); r.on('error', () => undefined); try { await r.connect(); return (await r.ping()) === 'PONG'; } finally { r.disconnect(); } }, 10_000, `${name} up`);
      return { port, child };
    };
    const master = await server('master', []);
    const replica = await server('replica', ['--replicaof', '127.0.0.1', String(master.port)]);
    const sentinels: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel${i}.conf`);
      writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor mymaster 127.0.0.1 ${master.port} 2`,
        'sentinel down-after-milliseconds mymaster 2000', 'sentinel failover-timeout mymaster 10000', ''].join('\n'));
      run('redis-server', [conf, '--sentinel'], join(dir, `sentinel${i}.log`));
      sentinels.push(port);
    }
    await until(async () => { const r = new Redis({ port: sentinels[2]!, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }); r.on('error', () => undefined); try { await r.connect(); const m = await r.call('SENTINEL', 'MASTER', 'mymaster') as string[]; return m.includes('num-other-sentinels') && m[m.indexOf('num-other-sentinels') + 1] === '2'; } finally { r.disconnect(); } }, 20_000, 'three sentinels that know each other');
    return new RedisHA(master, replica, sentinels);
  }

  async killMaster(): Promise<void> {
    this.master.child.kill('SIGKILL');
    await killed(this.master.child);
  }

  /** The port the sentinels name as master now. */
  async masterPort(): Promise<number> {
    const r = new Redis({ port: this.sentinels[0]!, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      const [, port] = (await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')) as [string, string];
      return Number(port);
    } finally {
      r.disconnect();
    }
  }
}

/** HAProxy in front of the Galera nodes (one writer, the others backup) and of the API processes. */
export class HAProxy {
  private constructor(readonly mysqlPort: number, readonly httpPort: number, private readonly child: ChildProcess) {}

  static async start(dir: string, galera: number[], api: number[]): Promise<HAProxy> {
    const mysqlPort = await freePort();
    const httpPort = await freePort();
    mkdirSync(dir, { recursive: true });
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, [
      'global', '  maxconn 4096', 'defaults', '  timeout connect 3s', '  timeout client 5m', '  timeout server 5m', '  timeout check 2s', '  retries 2',
      ...(galera.length ? [
        'frontend mysql', '  mode tcp', `  bind 127.0.0.1:${mysqlPort}`, '  default_backend galera',
        'backend galera', '  mode tcp', '  option tcp-check', '  tcp-check connect', '  default-server inter 1s fall 2 rise 3 on-marked-down shutdown-sessions',
        ...galera.map((p, i) => `  server galera${i + 1} 127.0.0.1:${p} check${i > 0 ? ' backup' : ''}`),
      ] : []),
      'frontend fhir', '  mode http', `  bind 127.0.0.1:${httpPort}`, '  default_backend api',
      'backend api', '  mode http', '  balance roundrobin', '  option httpchk GET /health/ready', '  http-check expect status 200', '  default-server inter 1s fall 2 rise 2',
      ...api.map((p, i) => `  server api${i + 1} 127.0.0.1:${p} check`), '',
    ].join('\n'));
    execFileSync('haproxy', ['-c', '-q', '-f', cfg]);
    const child = run('haproxy', ['-db', '-f', cfg], join(dir, 'haproxy.log'));
    await until(async () => new Promise<boolean>((resolve) => { const c = connect(httpPort, '127.0.0.1'); c.once('connect', () => { c.destroy(); resolve(true); }); c.once('error', () => resolve(false)); }), 20_000, 'HAProxy up');
    if (galera.length) await until(async () => { const c = await mysql.createConnection({ host: '127.0.0.1', port: mysqlPort, user: 'root' }); await c.end(); return true; }, 20_000, 'HAProxy to Galera');
    return new HAProxy(mysqlPort, httpPort, child);
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await killed(this.child);
  }
}
