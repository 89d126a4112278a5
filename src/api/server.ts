/** Starts the HTTP API: builds the app and listens. Used by `hms serve` and `hms start`. */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { buildApp, type BuildOptions } from './app.js';

export async function startServer(config: Config, opts: Omit<BuildOptions, 'config'> = {}): Promise<FastifyInstance> {
  const app = await buildApp({ config, ...opts });
  await app.listen({ port: config.PORT, host: config.HOST });
  return app;
}
