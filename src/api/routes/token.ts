/**
 * POST /auth/token: SMART Backend Services. A registered system trades a signed assertion
 * (client_credentials + private_key_jwt) for a short-lived access token with system scopes. Every
 * failure answers as RFC 6749 section 5.2 JSON ({error, error_description}) and is audited.
 * https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';
import {
  AssertionError, CLIENT_ASSERTION_TYPE, ClientKeySets, verifyClientAssertion, warmDecoyKeys,
} from '../../auth/client-assertion.js';
import { jwksUrlAllowlist } from '../../auth/client-registration.js';
import { issueClientToken } from '../../auth/client-tokens.js';
import { formatScope, grantScopes, parseScopes } from '../../auth/scopes.js';
import { namedScopeOnly } from '../../fhir/access.js';
import { purgeExpiredClientRows } from '../../db/client-token-repository.js';
import { auditRequest } from '../plugins/authenticate.js';
import { requestTokenUrl } from './smart-configuration.js';

/** An RFC 6749 token error: `reason` goes to the security log, the rest to the client. */
export class TokenError extends Error {
  constructor(
    readonly status: number,
    readonly error: 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'invalid_scope',
    readonly description: string,
    readonly reason: string,
    readonly clientId?: string,
  ) {
    super(reason);
  }
}

/** A token request is a few parameters and one JWT; anything much larger is not one. */
const TOKEN_BODY_LIMIT = 64 * 1024;
/** Expired assertions and tokens are deleted at most this often per process. */
const PURGE_INTERVAL_MS = 60_000;

const formBody = {
  type: 'object',
  properties: {
    grant_type: { type: 'string', description: 'client_credentials' },
    scope: { type: 'string', description: 'space-separated system scopes; absent = every scope the client is allowed' },
    client_assertion_type: { type: 'string', description: CLIENT_ASSERTION_TYPE },
    client_assertion: { type: 'string', description: 'a JWT signed RS384 or ES384 with a key of the client\'s JWKS (kid), iss = sub = client_id, aud = the token endpoint, exp at most 5 minutes ahead, a fresh jti' },
    client_id: { type: 'string', description: 'optional; must equal the assertion\'s iss' },
  },
} as const;

const oauthError = {
  type: 'object',
  description: 'RFC 6749 section 5.2 error',
  properties: { error: { type: 'string' }, error_description: { type: 'string' } },
} as const;

const tokenSchema = {
  tags: ['auth'],
  summary: 'SMART Backend Services: an access token for a registered system (client_credentials, private_key_jwt)',
  security: [],
  consumes: ['application/x-www-form-urlencoded'],
  body: formBody,
  response: {
    200: {
      type: 'object',
      properties: { access_token: { type: 'string' }, token_type: { type: 'string' }, expires_in: { type: 'integer' }, scope: { type: 'string' } },
    },
    400: oauthError,
    401: oauthError,
  },
} as const;

type Form = Record<string, string | string[] | undefined>;

/** One form parameter: undefined when absent, 400 when repeated (RFC 6749 section 3.2). */
function param(form: Form, name: string): string | undefined {
  const v = form[name];
  if (Array.isArray(v)) throw new TokenError(400, 'invalid_request', `Parameter ${name} is repeated`, `repeated ${name}`);
  return v === undefined || v === '' ? undefined : v;
}

function sendError(reply: FastifyReply, status: number, error: string, description: string, headers: Record<string, string> = {}): FastifyReply {
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.code(status).header('Cache-Control', 'no-store').header('Pragma', 'no-cache')
    .type('application/json; charset=utf-8').send({ error, error_description: description });
}

export default async function tokenRoutes(app: FastifyInstance): Promise<void> {
  const keySets = new ClientKeySets();
  const allowlist = jwksUrlAllowlist(app.config.HMS_JWKS_URL_ALLOWLIST);
  let lastPurge = 0;
  // generated at start, so that the first request of an unknown client is not the slow one
  await warmDecoyKeys();

  // this plugin's own error handler: the token endpoint answers OAuth JSON, never an OperationOutcome
  app.setErrorHandler(async (err: FastifyError | TokenError | FhirError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof FhirError && err.status === 503) {
      return sendError(reply, 503, 'temporarily_unavailable', 'The security log could not be written; retry later', err.headers);
    }
    let refusal: TokenError;
    if (err instanceof TokenError) refusal = err;
    else {
      const status = typeof (err as FastifyError).statusCode === 'number' ? (err as FastifyError).statusCode! : 500;
      if (status >= 500) {
        request.log.error({ err }, 'token request failed');
        return sendError(reply, 500, 'server_error', 'Internal server error; the details are in the server log');
      }
      // content-type, body size, parsing and parameter-shape errors raised before the handler
      const fe = err as FastifyError;
      const code = fe.code ?? String(status);
      const description = status === 413 ? 'The request body is too large'
        : fe.validation ? 'Each parameter must be given once, as text (RFC 6749 section 3.2)'
          : status === 415 ? 'The request must be an application/x-www-form-urlencoded form'
            : 'The request is malformed';
      refusal = new TokenError(status === 413 ? 413 : 400, 'invalid_request', description, fe.validation ? 'invalid parameters' : code);
    }
    try {
      await auditRequest(request, {
        action: 'token-refused', success: false, failureReason: refusal.reason,
        ...(refusal.clientId ? { clientId: refusal.clientId } : {}), additionalData: { error: refusal.error },
      });
    } catch (auditErr) {
      return sendError(reply, 503, 'temporarily_unavailable', 'The security log could not be written; retry later', (auditErr as FhirError).headers ?? {});
    }
    request.log.info({ error: refusal.error, reason: refusal.reason }, 'token request refused');
    return sendError(reply, refusal.status, refusal.error, refusal.description);
  });

  app.post('/auth/token', { schema: tokenSchema, bodyLimit: TOKEN_BODY_LIMIT }, async (request, reply) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded' || typeof request.body !== 'object' || request.body === null) {
      throw new TokenError(400, 'invalid_request', 'The request must be an application/x-www-form-urlencoded form', `content type ${type || '(none)'}`.slice(0, 100));
    }
    const form = request.body as Form;
    const grantType = param(form, 'grant_type');
    if (!grantType) throw new TokenError(400, 'invalid_request', 'grant_type is required (client_credentials)', 'no grant_type');
    if (grantType !== 'client_credentials') throw new TokenError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported', 'unsupported grant_type');
    const assertionType = param(form, 'client_assertion_type');
    if (assertionType !== CLIENT_ASSERTION_TYPE) throw new TokenError(400, 'invalid_request', `client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`, 'wrong client_assertion_type');
    const assertion = param(form, 'client_assertion');
    if (!assertion) throw new TokenError(400, 'invalid_request', 'client_assertion is required', 'no client_assertion');
    const requestedScope = param(form, 'scope');
    const clientIdParam = param(form, 'client_id');

    let client;
    try {
      ({ client } = await verifyClientAssertion(app.db, assertion, { tokenUrl: requestTokenUrl(request), keySets, jwksAllowlist: allowlist, clientIdParam }));
    } catch (err) {
      if (err instanceof AssertionError) throw new TokenError(401, 'invalid_client', err.description, err.reason, err.clientId);
      throw err;
    }

    const allowed = parseScopes(client.scope).scopes;
    const requested = requestedScope === undefined ? allowed : parseScopes(requestedScope).scopes;
    const granted = grantScopes(requested, allowed, namedScopeOnly);
    if (!granted.length) {
      throw new TokenError(400, 'invalid_scope', 'None of the requested scopes is allowed for this client', 'no allowed scope requested', client.id);
    }
    const scope = granted.map(formatScope).join(' ');
    const { token, tokenId, expiresIn } = await issueClientToken(app.db, { clientId: client.id, scope, ttlSeconds: app.config.HMS_CLIENT_TOKEN_TTL });
    await auditRequest(request, { action: 'token-granted', success: true, clientId: client.id, additionalData: { token_id: tokenId, scope, expires_in: expiresIn } });

    if (Date.now() - lastPurge > PURGE_INTERVAL_MS) {
      lastPurge = Date.now();
      void purgeExpiredClientRows(app.db, new Date()).catch((err: Error) => request.log.warn({ err: { message: err.message } }, 'purging expired client assertions failed'));
    }
    // RFC 6749 section 5.1: a response carrying a token must not be cached
    reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache').type('application/json; charset=utf-8');
    return { access_token: token, token_type: 'bearer', expires_in: expiresIn, scope };
  });
}
