/** POST /auth/login and /auth/logout: email + password sessions for people. */
import type { FastifyInstance } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';
import { findLoginUser, touchLastLogin } from '../../db/user-repository.js';
import { verifyPassword } from '../../auth/passwords.js';
import { endSession, hashToken, startSession } from '../../auth/sessions.js';
import { sessionSubject } from '../../auth/revocation.js';
import { loginGate, loginSucceeded } from '../../auth/throttle.js';
import { auditRequest, bearerToken } from '../plugins/authenticate.js';

const loginBody = {
  type: 'object',
  required: ['email', 'password'],
  additionalProperties: false,
  properties: {
    email: { type: 'string', minLength: 3, maxLength: 255 },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
  },
} as const;

const tokenResponse = {
  200: {
    type: 'object',
    properties: { access_token: { type: 'string' }, token_type: { type: 'string' }, expires_in: { type: 'integer' } },
  },
} as const;

const INVALID = 'Invalid email or password';

export default async function authRoutes(app: FastifyInstance): Promise<void> {
  app.post('/auth/login', { schema: { tags: ['auth'], summary: 'Log in with email and password; returns a bearer token', body: loginBody, response: tokenResponse } }, async (request, reply) => {
    const { email, password } = request.body as { email: string; password: string };
    const cfg = app.config;
    // Counted before the password is checked, for the IP and for the account (known or not): see auth/throttle.ts.
    const user = await findLoginUser(app.db, email);
    const client = { ip: request.ip, email, userId: user?.id };
    const gate = await loginGate(app.db, client, cfg);
    if (!gate.allowed) {
      await auditRequest(request, { action: 'login-throttled', success: false, failureReason: 'too many failed logins', userId: user?.id });
      throw new FhirError(429, 'Too many failed logins: try again later', 'throttled', { 'Retry-After': String(gate.retryAfter) });
    }
    const ok = await verifyPassword(password, user?.status === 'active' ? user.password_hash : undefined, cfg.HMS_BCRYPT_COST);
    if (!ok || !user) {
      await auditRequest(request, { action: 'login', success: false, failureReason: user ? 'wrong password or inactive account' : 'unknown email', userId: user?.id });
      throw new FhirError(401, INVALID, 'login');
    }
    await loginSucceeded(app.db, client);
    const token = await startSession(app.db, user.id, { ip: request.ip, userAgent: request.headers['user-agent'], ttlSeconds: cfg.HMS_SESSION_TTL });
    await touchLastLogin(app.db, user.id);
    await auditRequest(request, { action: 'login', success: true, userId: user.id });
    // RFC 6749 section 5.1: a response carrying a token must not be cached.
    reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
    return { access_token: token, token_type: 'Bearer', expires_in: cfg.HMS_SESSION_TTL };
  });

  app.post('/auth/logout', { schema: { tags: ['auth'], summary: 'Revoke the bearer token of this request' } }, async (request, reply) => {
    const token = bearerToken(request);
    const userId = token ? await endSession(app.db, token, app.sessionCache) : undefined;
    if (!userId) {
      throw new FhirError(401, 'No live session to log out of', 'login', { 'WWW-Authenticate': 'Bearer realm="hms"' });
    }
    // the other processes drop the session from their caches at once
    await app.revocations.publish(sessionSubject(hashToken(token!)));
    await auditRequest(request, { action: 'logout', success: true, userId });
    return reply.code(204).send();
  });
}
