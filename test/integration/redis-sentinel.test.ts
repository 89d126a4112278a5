/**
 * REDIS_URL through Redis Sentinel (redis+sentinel://): private redis-servers on ports of their
 * own, a master and a replica, and a sentinel watching them. The app's connections find the
 * master through the sentinel; when the master is killed the sentinel promotes the replica and
 * the same connection writes to it. The URL parser is checked on its own too.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { producerConnection, redisAnswers, redisConnectOptions } from '../../src/workers/redis.js';
import { freePort, spawnRun, until, waitForOutput } from '../helpers/processes.js';
import { tempDir } from '../helpers/cli.js';

const quiet = { warn: () => undefined };

t.test('redis+sentinel:// URLs', async (t) => {
  t.same(redisConnectOptions('redis://127.0.0.1:6379/0'), { url: 'redis://127.0.0.1:6379/0', options: {} });
  t.same(redisConnectOptions('redis+sentinel://s1:26379,s2,[::1]:26380/mymaster/2').options, {
    sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }, { host: '::1', port: 26380 }], name: 'mymaster', db: 2,
  });
  t.match(redisConnectOptions('redis+sentinel://:p%40ss@s1:26379/m').options, { password: 'p@ss', sentinelPassword: 'p@ss', name: 'm', db: 0 });
  t.throws(() => redisConnectOptions('redis+sentinel://s1:26379'), /names the master/);
});

t.test('through a sentinel: the master found, then the replica promoted when the master dies', { skip: process.env.REDIS_URL ? false : 'needs Redis (the MariaDB + Redis run)' }, async (t) => {
  const dir = tempDir(t);
  const [master, replica, sentinel] = [await freePort(), await freePort(), await freePort()];
  const server = (port: number, extra: string[] = []) => {
    const run = spawnRun(t, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', `${port}.rdb`, ...extra], { ...process.env });
    return run;
  };
  const m = server(master);
  await waitForOutput(m, 'Ready to accept connections', 10_000);
  const r = server(replica, ['--replicaof', '127.0.0.1', String(master)]);
  await waitForOutput(r, 'MASTER <-> REPLICA sync: Finished', 10_000);
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, [
    `port ${sentinel}`, 'bind 127.0.0.1', `dir ${dir}`,
    `sentinel monitor mymaster 127.0.0.1 ${master} 1`,
    'sentinel down-after-milliseconds mymaster 1000', 'sentinel failover-timeout mymaster 5000', '',
  ].join('\n'));
  const s = spawnRun(t, 'redis-server', [conf, '--sentinel'], { ...process.env });
  await waitForOutput(s, '+monitor master mymaster', 10_000);

  const redis = producerConnection(`redis+sentinel://127.0.0.1:${sentinel}/mymaster/0`, quiet);
  t.teardown(() => redis.disconnect());
  t.ok(await redisAnswers(redis, 3000), 'the master found through the sentinel');
  await redis.set('hms:sentinel-test', 'before');
  const direct = new Redis({ host: '127.0.0.1', port: master, lazyConnect: true });
  t.equal(await direct.get('hms:sentinel-test'), 'before', 'written to the master');
  direct.disconnect();

  m.child.kill('SIGKILL');
  await m.exited;
  // the sentinel needs down-after-milliseconds to call it down, then promotes the replica
  const written = await until(async () => { await redis.set('hms:sentinel-test', 'after'); return true; }, (ok) => ok, 20_000, 250);
  t.ok(written, 'the same connection writes again once the replica is promoted');
  const promoted = new Redis({ host: '127.0.0.1', port: replica, lazyConnect: true });
  t.teardown(() => promoted.disconnect());
  t.equal(await promoted.get('hms:sentinel-test'), 'after', 'to the promoted replica');
  t.match(await promoted.info('replication'), /role:master/);
});
