/**
 * The HTTP surface in front of every route: security headers, CORS, per-client rate limits and
 * the abandonment signal of each request. Registered after authentication (the rate limiter
 * keys by principal) and before any route (their hooks attach to routes as they are added).
 * See docs/limits.md.
 */
import fp from 'fastify-plugin';
import securityHeaders from './security-headers.js';
import corsPlugin, { corsOrigins } from './cors.js';
import rateLimitPlugin from './rate-limit.js';
import requestSignalPlugin from './request-signal.js';
import type { Config } from '../../config.js';
import type { HttpSurface } from '../../fhir/capability.js';
import { searchLimitsOf } from '../../fhir/search/limits.js';
import { MAX_INCLUDED } from '../../fhir/search/includes.js';

const surfaces = new WeakMap<Config, HttpSurface>();

/** What the CapabilityStatement says of the HTTP surface a configuration sets up (built once per configuration). */
export function capabilitySurface(config: Config): HttpSurface {
  let surface = surfaces.get(config);
  if (!surface) {
    surface = {
      cors: corsOrigins(config.HMS_CORS_ORIGINS).length > 0,
      limits: {
        search: searchLimitsOf(config), maxCount: config.HMS_MAX_COUNT, maxIncluded: MAX_INCLUDED,
        statementTimeout: config.HMS_STATEMENT_TIMEOUT, rateLimit: config.HMS_RATE_LIMIT, rateLimitWindow: config.HMS_RATE_LIMIT_WINDOW,
      },
    };
    surfaces.set(config, surface);
  }
  return surface;
}

export default fp(async (app) => {
  const cfg = app.config;
  await app.register(requestSignalPlugin);
  await app.register(securityHeaders);
  await app.register(corsPlugin, { origins: corsOrigins(cfg.HMS_CORS_ORIGINS) });
  await app.register(rateLimitPlugin, { max: cfg.HMS_RATE_LIMIT, windowSeconds: cfg.HMS_RATE_LIMIT_WINDOW });
}, { name: 'hms-http-surface', dependencies: ['hms-database', 'hms-authenticate'] });
