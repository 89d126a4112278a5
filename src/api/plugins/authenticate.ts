/** Bearer-token authentication of API requests, and the security-log writer bound to a request. */
import fp from 'fastify-plugin';
import type { Knex } from 'knex';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';
import { authenticateToken, SessionCache } from '../../auth/sessions.js';
import type { SessionUser } from '../../db/session-repository.js';

declare module 'fastify' {
  interface FastifyRequest {
    user?: SessionUser;
  }
  interface FastifyInstance {
    /** Sessions checked recently by this process (HMS_SESSION_CACHE seconds). */
    sessionCache: SessionCache;
    /** preHandler that answers 401 unless the request carries a live session token. */
    requireUser: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
}

/** The bearer token of a request, if any. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const m = header ? /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header) : null;
  return m?.[1];
}

/** Writes a security_logs row for this request (who, from where, which resource). */
export async function auditRequest(
  request: FastifyRequest,
  event: { action: string; resourceType?: string; resourceId?: string; success: boolean; reason?: string; data?: Record<string, unknown>; userId?: string },
  trx?: Knex.Transaction,
): Promise<void> {
  const params = (request.params ?? {}) as { type?: string; id?: string };
  await request.server.auditLog.record({
    userId: event.userId ?? request.user?.userId ?? null,
    action: event.action,
    resourceType: event.resourceType ?? params.type ?? null,
    resourceId: event.resourceId ?? params.id ?? null,
    ipAddress: request.ip,
    userAgent: request.headers['user-agent'] ?? null,
    success: event.success,
    failureReason: event.reason ?? null,
    additionalData: { method: request.method, route: request.routeOptions.url ?? null, ...(event.data ?? {}) },
  }, trx);
}

const UNAUTHORIZED_HEADERS = { 'WWW-Authenticate': 'Bearer realm="hms"' };

export default fp(async (app) => {
  app.decorateRequest('user', undefined);
  app.decorate('sessionCache', new SessionCache(app.config.HMS_SESSION_CACHE * 1000));
  app.decorate('requireUser', async (request: FastifyRequest) => {
    const token = bearerToken(request);
    const user = token ? await authenticateToken(app.db, token, app.config.HMS_SESSION_IDLE, app.sessionCache) : undefined;
    if (!user) {
      await auditRequest(request, { action: 'unauthenticated', success: false, reason: token ? 'invalid, expired or revoked token' : 'no bearer token' });
      throw new FhirError(401, token ? 'The bearer token is invalid, expired or revoked: log in again' : 'Authentication required: send Authorization: Bearer <token> (POST /auth/login)', 'login', UNAUTHORIZED_HEADERS);
    }
    request.user = user;
  });
}, { name: 'hms-authenticate', dependencies: ['hms-database'] });
