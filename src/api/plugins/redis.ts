/** Decorates the app with a fail-fast Redis connection when REDIS_URL is set (queues, health). */
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { producerConnection } from '../../workers/redis.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Present only when REDIS_URL is configured. */
    redis?: Redis;
  }
}

export default fp(async (app) => {
  const url = app.config.REDIS_URL;
  if (!url) return;
  const redis = producerConnection(url, app.log);
  app.decorate('redis', redis);
  app.addHook('onClose', async () => {
    redis.disconnect();
  });
}, { name: 'hms-redis', dependencies: ['hms-database'] });
