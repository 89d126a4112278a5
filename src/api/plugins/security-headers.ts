/**
 * Security headers (@fastify/helmet) for a JSON API, with the looser policy Swagger UI needs on
 * /docs, and Cache-Control: no-store on answers that may carry patient data. See docs/limits.md.
 */
import fp from 'fastify-plugin';
import Fastify, { type FastifyRequest } from 'fastify';
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';

/**
 * Answers are JSON, never rendered: a browser that opens one anyway may load nothing, run
 * nothing, be framed by no one and submit nowhere.
 */
const API_CSP = {
  useDefaults: false,
  directives: {
    'default-src': ["'none'"],
    'base-uri': ["'none'"],
    'form-action': ["'none'"],
    'frame-ancestors': ["'none'"],
  },
};

/**
 * Swagger UI at /docs (set by @fastify/swagger-ui's staticCSP on its own routes): its scripts and
 * styles are files served from /docs/static (no inline script), it fetches /docs/json, and it
 * asks no outside validator (uiConfig.validatorUrl is null: the spec would leave the hospital).
 * No upgrade-insecure-requests: the embedded default serves plain http on 127.0.0.1.
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self'",
].join('; ');

/** Public answers that hold no patient data and may be cached. */
const CACHEABLE = new Set(['/fhir/metadata', '/fhir/SearchParameter', '/fhir/SearchParameter/:id', '/fhir/.well-known/smart-configuration', '/health']);

/** Whether an answer may carry patient data or credentials (FHIR, login, admin), so must not be stored by any cache. */
function mayHoldPatientData(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  if (route !== undefined && CACHEABLE.has(route)) return false;
  return /^\/(fhir|auth|admin)(\/|\?|$)/.test(request.url);
}

const HELMET_OPTIONS: FastifyHelmetOptions = {
  global: true,
  contentSecurityPolicy: API_CSP,
  // HSTS is always sent: browsers ignore it over plain http (RFC 6797 section 8.1) and honour it
  // once HMS is reached over https (directly or through a TLS-terminating proxy); no preload
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true, preload: false },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  // cross-origin browser clients read answers through CORS (src/api/plugins/cors.ts), which this does not block
  crossOriginResourcePolicy: { policy: 'same-origin' },
};

/** Headers of an answer that are Fastify's and Node's own, not helmet's. */
const NOT_HELMET = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive']);

/**
 * The headers @fastify/helmet sets with HMS's options. The plugin rebuilds helmet's middleware
 * on every request (11 to 12 us of CPU each, measured: 4 % of a Patient read); with no nonces
 * the headers never change, so they are asked of it once, on a private instance, at start-up.
 */
export async function helmetHeaders(options: FastifyHelmetOptions = HELMET_OPTIONS): Promise<Record<string, string>> {
  const probe = Fastify({ logger: false });
  try {
    await probe.register(helmet, options);
    probe.get('/', async () => ({}));
    const res = await probe.inject({ method: 'GET', url: '/' });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) if (!NOT_HELMET.has(name) && typeof value === 'string') headers[name] = value;
    return headers;
  } finally {
    await probe.close();
  }
}

export default fp(async (app) => {
  const headers = await helmetHeaders();
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers);
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    if (!reply.hasHeader('cache-control') && mayHoldPatientData(request)) reply.header('cache-control', 'no-store');
    done(null, payload);
  });
}, { name: 'hms-security-headers' });
