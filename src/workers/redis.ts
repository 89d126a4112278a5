/**
 * Redis connections per BullMQ's production guide: producers and probes fail fast (no offline
 * queue, one retry); workers (later) use maxRetriesPerRequest: null. Every connection logs errors.
 */
import { Redis } from 'ioredis';

export interface RedisLogger { warn(obj: object, msg: string): void }

/** A fail-fast connection for enqueueing jobs and health checks. */
export function producerConnection(url: string, log: RedisLogger): Redis {
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
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
