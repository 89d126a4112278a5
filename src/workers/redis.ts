/**
 * Redis connections per BullMQ's production guide: producers and probes fail fast (no offline
 * queue, one retry); workers (later) use maxRetriesPerRequest: null. Every connection logs errors.
 */
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisLogger { warn(obj: object, msg: string): void }

const SENTINEL_URL = /^rediss?\+sentinel:\/\//;

/**
 * ioredis options for REDIS_URL: `redis://[:password@]host:port/db`, or for Redis Sentinel
 * `redis+sentinel://[:password@]host1:26379,host2:26379,host3:26379/MASTER_NAME[/db]`: ioredis
 * asks the sentinels for the master and follows a failover. A password in the URL is the
 * master's and the sentinels', and so is a user name (one ACL user or requirepass for the group).
 */
export function redisConnectOptions(url: string): { url?: string; options: RedisOptions } {
  if (!SENTINEL_URL.test(url)) return { url, options: {} };
  const rest = url.replace(SENTINEL_URL, '');
  const at = rest.lastIndexOf('@', rest.indexOf('/') === -1 ? rest.length : rest.indexOf('/'));
  const auth = at === -1 ? '' : rest.slice(0, at);
  const [hosts = '', name, db] = (at === -1 ? rest : rest.slice(at + 1)).split('/');
  if (!name) throw new Error('REDIS_URL: a redis+sentinel:// URL names the master after the hosts (redis+sentinel://h1:26379,h2:26379/mymaster/0)');
  const sentinels = hosts.split(',').filter(Boolean).map((h) => {
    const i = h.lastIndexOf(':');
    return i === -1 ? { host: h, port: 26379 } : { host: h.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(h.slice(i + 1)) };
  });
  const password = auth.includes(':') ? decodeURIComponent(auth.slice(auth.indexOf(':') + 1)) : undefined;
  const username = auth.includes(':') ? decodeURIComponent(auth.slice(0, auth.indexOf(':'))) : decodeURIComponent(auth);
  return {
    options: {
      sentinels, name, db: db ? Number(db) : 0,
      ...(username ? { username, sentinelUsername: username } : {}),
      ...(password ? { password, sentinelPassword: password } : {}),
      ...(url.startsWith('rediss') ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    },
  };
}

/** A connection to REDIS_URL (plain or through Sentinel) with these options. */
export function redisClient(url: string, options: RedisOptions): Redis {
  const c = redisConnectOptions(url);
  return c.url ? new Redis(c.url, options) : new Redis({ ...c.options, ...options });
}

/** A fail-fast connection for enqueueing jobs and health checks. */
export function producerConnection(url: string, log: RedisLogger): Redis {
  const redis = redisClient(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
  redis.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'redis connection error'));
  return redis;
}

/** Whether Redis answers PING within the timeout. */
export async function redisAnswers(redis: Redis, timeoutMs = 1000): Promise<boolean> {
  try {
    if (redis.status === 'wait' || redis.status === 'end') await redis.connect();
    const pong = await Promise.race([redis.ping(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs))]);
    return pong === 'PONG';
  } catch {
    return false;
  }
}
