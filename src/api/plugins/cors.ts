/**
 * CORS (@fastify/cors) for browser applications on the origins HMS_CORS_ORIGINS lists, and for
 * no one else: without the variable the plugin is not registered at all. See docs/limits.md.
 */
import fp from 'fastify-plugin';
import cors from '@fastify/cors';

/** Response headers a browser application may read (FHIR versioning, paging, throttling). */
export const EXPOSED_HEADERS = [
  'ETag', 'Location', 'Last-Modified', 'Content-Location', 'Retry-After', 'X-Progress', 'Expires',
  'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset',
];

/** Request headers a browser application may send: credentials, content negotiation, FHIR conditionals and Prefer. */
export const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Accept', 'If-Match', 'If-None-Exist', 'If-None-Match', 'If-Modified-Since', 'Prefer'];

/**
 * The origins of HMS_CORS_ORIGINS, serialised as browsers send them (lower-case, default port
 * dropped): the plugin compares them with the Origin header exactly.
 */
export function corsOrigins(value: string | undefined): string[] {
  if (!value) return [];
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((o) => new URL(o).origin);
}

export default fp<{ origins: string[] }>(async (app, opts) => {
  if (opts.origins.length === 0) return;
  await app.register(cors, {
    origin: opts.origins,
    // bearer tokens, not cookies: the browser never needs to attach credentials on its own
    credentials: false,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    // an OPTIONS without the preflight headers gets the same empty 204, not a text/plain 400
    strictPreflight: false,
  });
}, { name: 'hms-cors' });
