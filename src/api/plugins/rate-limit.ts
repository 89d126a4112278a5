/**
 * Per-client rate limits (@fastify/rate-limit): HMS_RATE_LIMIT requests per HMS_RATE_LIMIT_WINDOW
 * seconds per user or system client once authenticated, else per IP address; above that a 429
 * OperationOutcome (code throttled) with Retry-After. See docs/limits.md.
 *
 * The counters live in this process (the plugin's LRU store), even with REDIS_URL: the Redis
 * store cost 8 to 10 us of CPU per request more (measured; 3 % of a Patient read) plus a round trip,
 * and would put Redis on every request's path. N API processes behind a balancer that spreads a
 * client evenly therefore allow it about N times the limit.
 */
import fp from 'fastify-plugin';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';

/** Routes the limiter leaves alone: probes, and the login, which has its own throttle (src/auth/throttle.ts). */
const EXEMPT_ROUTES = new Set(['/health', '/health/live', '/health/ready', '/auth/login']);

/** The counter a request is charged to: its user or client once authenticated, else its IP address (IPv6 by /64). */
export function rateLimitKey(request: FastifyRequest): string {
  const p = request.principal;
  if (p?.kind === 'user') return `user:${p.userId}`;
  if (p?.kind === 'client') return `client:${p.clientId}`;
  return `ip:${normalizeIP(request.ip)}`;
}

/** A 429 the error handler answers as is; `audited` is false for the repeats of one window (see below). */
export class ThrottledError extends FhirError {
  constructor(message: string, retryAfterSeconds: number, readonly audited: boolean) {
    super(429, message, 'throttled', { 'Retry-After': String(retryAfterSeconds) });
  }
}

/** Whether an error is a refusal that should not write a security log row of its own. */
export const unaudited = (err: unknown): boolean => err instanceof ThrottledError && !err.audited;

/**
 * The first refusal of each key in each window is audited; the others of that window are not,
 * so a client hammering the API cannot turn its 429s into a flood of writes to the hash-chained
 * security log (they are still in the application log).
 */
class RefusalLog {
  private readonly until = new Map<string, number>();
  constructor(private readonly windowMs: number) {}

  /** True when this key's refusal is the first of its window. */
  first(key: string, now = Date.now()): boolean {
    const until = this.until.get(key);
    if (until !== undefined && until > now) return false;
    if (this.until.size >= 10_000) {
      for (const [k, u] of this.until) if (u <= now) this.until.delete(k);
      if (this.until.size >= 10_000) this.until.clear(); // worst case: a few more audit rows
    }
    this.until.set(key, now + this.windowMs);
    return true;
  }
}

export interface RateLimitOptions {
  /** Requests per window and key; 0 turns the limiter off. */
  max: number;
  windowSeconds: number;
}

export default fp<RateLimitOptions>(async (app, opts) => {
  if (opts.max <= 0) return;
  const windowMs = opts.windowSeconds * 1000;
  const refusals = new RefusalLog(windowMs);
  const firstRefusal = new WeakSet<FastifyRequest>();
  await app.register(rateLimit, {
    global: true,
    // after authentication (onRequest), so the key can be the principal, and before the body is
    // read, so a throttled client's upload costs nothing to parse
    hook: 'preParsing',
    max: opts.max,
    timeWindow: windowMs,
    cache: 10_000,
    keyGenerator: rateLimitKey,
    allowList: (request) => request.method === 'OPTIONS' || EXEMPT_ROUTES.has(request.routeOptions.url ?? ''),
    onExceeded: (request, key) => { if (refusals.first(key)) firstRefusal.add(request); },
    errorResponseBuilder: (request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      const who = request.principal ? 'this account' : 'this address';
      return new ThrottledError(`Too many requests: ${context.max} per ${opts.windowSeconds} s are allowed for ${who}; retry in ${seconds} s`, seconds, firstRefusal.has(request));
    },
  });
}, { name: 'hms-rate-limit', dependencies: ['hms-authenticate'] });
