/**
 * Authentication of API requests (a person's session token or a system's access token), the
 * admin-only guard, and the security-log writer bound to a request.
 */
import fp from 'fastify-plugin';
import type { Knex } from 'knex';
import type { FastifyRequest } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';
import { authenticateToken, hashToken, sessionCache, type SessionCache } from '../../auth/sessions.js';
import { deadSessionReason } from '../../db/session-repository.js';
import { AuthCache } from '../../auth/auth-cache.js';
import { authenticateClientToken, CLIENT_TOKEN_PREFIX, type ClientTokenCache } from '../../auth/client-tokens.js';
import { localBus, redisBus, SESSION_SUBJECT, type RevocationBus } from '../../auth/revocation.js';
import { isAdmin, roleOf, type ClientPrincipal, type Principal } from '../../auth/principal.js';
import type { SecurityLogEntry } from '../../db/audit-log.js';
import { dialectOf } from '../../db/dialect.js';
import { isRetryable } from '../../db/transactions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking (set by requireAuth). */
    principal?: Principal;
  }
  interface FastifyInstance {
    /** Revocations every process hears (user and client subjects). */
    revocations: RevocationBus;
    /** Session checks recently made by this process (HMS_SESSION_CACHE seconds). */
    sessionCache: SessionCache;
    /** Client token checks recently made by this process. */
    clientTokenCache: ClientTokenCache;
    /** onRequest hook: 401 unless the request carries a live session or client access token. */
    requireAuth: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** preHandler (after requireAuth): 403 unless the caller is a logged-in admin. */
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
}

/** The bearer token of a request, if any. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const m = header ? /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header) : null;
  return m?.[1];
}

/** What an audit row of a request records beyond who and from where. */
export type RequestAuditEvent = Omit<SecurityLogEntry, 'userId' | 'clientId' | 'role' | 'ipAddress' | 'userAgent' | 'requestId'> & {
  /** The user the event is about when no one is authenticated (a login). */
  userId?: string;
  /** The registered client the event is about when no one is authenticated (a token request). */
  clientId?: string;
};

/** The security_logs entry of an event of this request (who, from where, which resource). */
export function requestAuditEntry(request: FastifyRequest, event: RequestAuditEvent): SecurityLogEntry {
  const params = (request.params ?? {}) as { type?: string; id?: string };
  const p = request.principal;
  return {
    userId: event.userId ?? (p?.kind === 'user' ? p.userId : null),
    clientId: event.clientId ?? (p?.kind === 'client' ? p.clientId : null),
    role: p ? roleOf(p) : null,
    action: event.action,
    resourceType: event.resourceType ?? params.type ?? null,
    resourceId: event.resourceId ?? params.id ?? null,
    patientId: event.patientId ?? null,
    ipAddress: request.ip,
    userAgent: request.headers['user-agent'] ?? null,
    success: event.success,
    failureReason: event.failureReason ?? null,
    requestId: request.id,
    breakGlass: event.breakGlass ?? false,
    additionalData: { method: request.method, route: request.routeOptions.url ?? null, ...(event.additionalData ?? {}) },
  };
}

/**
 * Writes security_logs rows for this request; inside `trx` when given (a data change and its audit
 * rows commit together). A failed audit write fails the request with 503: no access goes unaudited.
 */
export async function auditRequest(request: FastifyRequest, events: RequestAuditEvent | RequestAuditEvent[], trx?: Knex.Transaction): Promise<void> {
  const entries = (Array.isArray(events) ? events : [events]).map((e) => requestAuditEntry(request, e));
  try {
    await request.server.auditLog.record(entries, trx);
  } catch (err) {
    // inside a data change, a deadlock or lock timeout rolls the whole change back: its own retry runs it again
    if (trx && isRetryable(err)) throw err;
    request.log.error({ err }, 'security log write failed');
    throw new FhirError(503, 'The security log could not be written, so the request was not carried out; retry later', 'transient', { 'Retry-After': '5' });
  }
}

const UNAUTHORIZED_HEADERS = { 'WWW-Authenticate': 'Bearer realm="hms"' };

export default fp(async (app) => {
  const cfg = app.config;
  // the embedded default is one process; MySQL may have many, which hear revocations over Redis only
  const bus = cfg.REDIS_URL ? redisBus(cfg.REDIS_URL, app.log) : localBus(dialectOf(app.db) === 'sqlite');
  app.decorate('revocations', bus);
  const ttl = cfg.HMS_SESSION_CACHE * 1000;
  app.decorate('sessionCache', sessionCache(ttl, () => bus.live));
  app.decorate('clientTokenCache', new AuthCache<ClientPrincipal>(ttl, () => bus.live));
  bus.subscribe((subject) => {
    // a logout elsewhere names its session token's hash; the rest name a user or client (or '*')
    if (subject.startsWith(SESSION_SUBJECT)) { app.sessionCache.forget(subject.slice(SESSION_SUBJECT.length)); return; }
    app.sessionCache.revoke(subject);
    app.clientTokenCache.revoke(subject);
  });
  app.addHook('onClose', async () => bus.close());

  app.decorateRequest('principal', undefined);
  app.decorate('requireAuth', async (request: FastifyRequest) => {
    const token = bearerToken(request);
    let principal: Principal | undefined;
    if (token?.startsWith(CLIENT_TOKEN_PREFIX)) principal = await authenticateClientToken(app.db, token, app.clientTokenCache);
    else if (token) principal = await authenticateToken(app.db, token, cfg.HMS_SESSION_IDLE, app.sessionCache);
    if (!principal) {
      // the refusal's cause is looked up only now: the live path pays nothing for it
      const dead = token && !token.startsWith(CLIENT_TOKEN_PREFIX) ? await deadSessionReason(app.db, hashToken(token), new Date(), cfg.HMS_SESSION_IDLE) : undefined;
      await auditRequest(request, dead
        ? { action: dead.action, userId: dead.userId, success: false, failureReason: dead.reason }
        : { action: 'unauthenticated', success: false, failureReason: token ? 'invalid, expired or revoked token' : 'no bearer token' });
      throw new FhirError(401, token ? 'The bearer token is invalid, expired or revoked: log in again' : 'Authentication required: send Authorization: Bearer <token> (POST /auth/login)', 'login', UNAUTHORIZED_HEADERS);
    }
    request.principal = principal;
  });
  app.decorate('requireAdmin', async (request: FastifyRequest) => {
    if (!isAdmin(request.principal)) throw new FhirError(403, 'Only administrators may do this', 'forbidden');
  });
}, { name: 'hms-authenticate', dependencies: ['hms-database'] });
