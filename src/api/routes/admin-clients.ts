/**
 * /admin/clients: registration of SMART Backend Services clients (labs, EHRs, insurers). JSON,
 * admins only, every call audited. Revoking a client ends its tokens at once on every process.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JSONWebKeySet } from 'jose';
import { badRequest, notFound } from '../../fhir/outcome.js';
import { allResourceDefinitions } from '../../fhir/registry.js';
import '../../fhir/resources/index.js';
import { CLIENT_KINDS, type ClientKind } from '../../auth/principal.js';
import { checkAllowedScopes, checkJwks, checkJwksUrl, jwksUrlAllowlist, MAX_JWKS_KEYS } from '../../auth/client-registration.js';
import { clientSubject } from '../../auth/revocation.js';
import {
  CLIENT_STATUSES, findClient, insertClient, listClients, updateClient, type ClientChanges, type ClientRecord, type ClientStatus,
} from '../../db/client-repository.js';
import { revokeClientTokens } from '../../db/client-token-repository.js';
import { auditRequest } from '../plugins/authenticate.js';

const jwksSchema = {
  type: 'object',
  description: 'JSON Web Key Set of public RS384 (RSA >= 2048 bits) or ES384 (EC P-384) keys, each with a kid',
  required: ['keys'],
  additionalProperties: true,
  properties: { keys: { type: 'array', minItems: 1, maxItems: MAX_JWKS_KEYS, items: { type: 'object', additionalProperties: true } } },
} as const;

const name = { type: 'string', minLength: 1, maxLength: 255 } as const;
const scope = { type: 'string', minLength: 1, maxLength: 4000, description: 'allowed scopes, space separated: system/<Type|*>.<cruds> (v2) or .read/.write/.* (v1)' } as const;
const jwksUrl = { type: 'string', minLength: 1, maxLength: 2048, description: 'https URL of the client\'s JWKS; must start with a prefix of HMS_JWKS_URL_ALLOWLIST' } as const;

const createBody = {
  type: 'object',
  required: ['name', 'kind', 'scope'],
  additionalProperties: false,
  description: 'exactly one of jwks and jwks_url',
  properties: { name, kind: { type: 'string', enum: [...CLIENT_KINDS] }, scope, jwks: jwksSchema, jwks_url: jwksUrl },
} as const;

const patchBody = {
  type: 'object',
  minProperties: 1,
  additionalProperties: false,
  description: 'at most one of jwks and jwks_url (either replaces the other); a change of scope or keys, or status revoked, ends the client\'s live tokens',
  properties: { name, scope, jwks: jwksSchema, jwks_url: jwksUrl, status: { type: 'string', enum: [...CLIENT_STATUSES] } },
} as const;

const clientSchema = {
  type: 'object',
  properties: {
    client_id: { type: 'string' },
    name: { type: 'string' },
    kind: { type: 'string', enum: [...CLIENT_KINDS] },
    scope: { type: 'string' },
    status: { type: 'string', enum: [...CLIENT_STATUSES] },
    jwks: jwksSchema,
    jwks_url: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: ['string', 'null'], format: 'date-time' },
    created_by: { type: ['string', 'null'] },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kind: { type: 'string', enum: [...CLIENT_KINDS] },
    status: { type: 'string', enum: [...CLIENT_STATUSES] },
    limit: { type: 'string', pattern: '^[0-9]{1,3}$', description: '1 to 200 (default 50)' },
    cursor: { type: 'string', pattern: '^[0-9a-f-]{36}$', description: 'next_cursor of the previous page' },
  },
} as const;

const listResponse = {
  type: 'object',
  properties: { clients: { type: 'array', items: clientSchema }, next_cursor: { type: ['string', 'null'] } },
} as const;

const tags = ['admin'];
const MAX_LIMIT = 200;

/** 'YYYY-MM-DD HH:MM:SS' (UTC) -> ISO 8601. */
const iso = (sql: string): string => `${sql.replace(' ', 'T')}Z`;

/** The JSON representation of a client (never anything secret: the server holds public keys only). */
function clientJson(c: ClientRecord): Record<string, unknown> {
  return {
    client_id: c.id, name: c.name, kind: c.kind, scope: c.scope, status: c.status,
    ...(c.jwksUrl ? { jwks_url: c.jwksUrl } : { jwks: c.jwks }),
    created_at: iso(c.createdAt), updated_at: c.updatedAt ? iso(c.updatedAt) : null, created_by: c.createdBy,
  };
}

interface KeyInput { jwks?: unknown; jwks_url?: string }

export default async function adminClientRoutes(app: FastifyInstance): Promise<void> {
  const allowlist = jwksUrlAllowlist(app.config.HMS_JWKS_URL_ALLOWLIST);
  const knownTypes = new Set(allResourceDefinitions().map((d) => d.type));
  const guard = { onRequest: app.requireAuth, preHandler: app.requireAdmin };

  /** The key material of a body, checked: 400 for both, a bad JWKS or a URL not allow-listed. */
  async function checkedKeys(body: KeyInput): Promise<{ jwks: JSONWebKeySet | null; jwksUrl: string | null } | undefined> {
    if (body.jwks !== undefined && body.jwks_url !== undefined) throw badRequest('Give either jwks or jwks_url, not both', 'jwks');
    if (body.jwks !== undefined) return { jwks: await checkJwks(body.jwks), jwksUrl: null };
    if (body.jwks_url !== undefined) return { jwks: null, jwksUrl: checkJwksUrl(body.jwks_url, allowlist) };
    return undefined;
  }

  const userIdOf = (request: FastifyRequest): string | undefined => (request.principal?.kind === 'user' ? request.principal.userId : undefined);

  /** Ends a client's live tokens everywhere: the database first, then every process's cache. */
  async function endTokens(clientId: string): Promise<void> {
    await app.revocations.publish(clientSubject(clientId));
  }

  app.post('/admin/clients', {
    ...guard,
    schema: { tags, summary: 'Register a system (SMART Backend Services client)', body: createBody, response: { 201: clientSchema } },
  }, async (request, reply) => {
    const body = request.body as { name: string; kind: ClientKind; scope: string } & KeyInput;
    const keys = await checkedKeys(body);
    if (!keys) throw badRequest('Give the client\'s public keys: jwks (by value) or jwks_url', 'jwks');
    const allowedScope = checkAllowedScopes(body.scope, knownTypes);
    const client = await app.db.transaction(async (trx) => {
      const c = await insertClient(trx, { name: body.name, kind: body.kind, scope: allowedScope, jwks: keys.jwks ?? undefined, jwksUrl: keys.jwksUrl ?? undefined, createdBy: userIdOf(request) });
      await auditRequest(request, { action: 'client-create', success: true, resourceId: c.id, additionalData: { client_kind: c.kind, scope: c.scope } }, trx);
      return c;
    });
    return reply.code(201).type('application/json; charset=utf-8').send(clientJson(client));
  });

  app.get('/admin/clients', {
    ...guard,
    schema: { tags, summary: 'List registered systems, newest first (filter by kind and status; paged by cursor)', querystring: listQuery, response: { 200: listResponse } },
  }, async (request, reply) => {
    const q = request.query as { kind?: ClientKind; status?: ClientStatus; limit?: string; cursor?: string };
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (limit < 1 || limit > MAX_LIMIT) throw badRequest(`limit must be between 1 and ${MAX_LIMIT}`, 'limit');
    const rows = await listClients(app.db, { kind: q.kind, status: q.status, limit: limit + 1, before: q.cursor });
    const page = rows.slice(0, limit);
    await auditRequest(request, { action: 'client-list', success: true, additionalData: { kind: q.kind ?? null, status: q.status ?? null, returned: page.length } });
    return reply.type('application/json; charset=utf-8').send({ clients: page.map(clientJson), next_cursor: rows.length > limit ? page[page.length - 1]!.id : null });
  });

  app.get('/admin/clients/:id', {
    ...guard,
    schema: { tags, summary: 'Read a registered system', params: idParams, response: { 200: clientSchema } },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const client = await findClient(app.db, id);
    if (!client) throw notFound(`No client ${id}`);
    await auditRequest(request, { action: 'client-read', success: true });
    return reply.type('application/json; charset=utf-8').send(clientJson(client));
  });

  app.patch('/admin/clients/:id', {
    ...guard,
    schema: { tags, summary: 'Change a registered system (name, scope, keys, status)', params: idParams, body: patchBody, response: { 200: clientSchema } },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = request.body as { name?: string; scope?: string; status?: ClientStatus } & KeyInput;
    const keys = await checkedKeys(body);
    const changes: ClientChanges = {
      ...(body.name !== undefined ? { name: body.name } : {}),
      ...(body.scope !== undefined ? { scope: checkAllowedScopes(body.scope, knownTypes) } : {}),
      ...(keys ? { jwks: keys.jwks, jwksUrl: keys.jwksUrl } : {}),
      ...(body.status !== undefined ? { status: body.status } : {}),
    };
    // narrower scopes, new keys (a compromised one replaced) or a status change end the live tokens:
    // no token outlives the registration it was granted under (a reactivated client starts afresh)
    const endsTokens = changes.scope !== undefined || keys !== undefined || changes.status !== undefined;
    const result = await app.db.transaction(async (trx) => {
      const before = await findClient(trx, id);
      if (!before) return undefined;
      const after = (await updateClient(trx, id, changes))!;
      const revoked = endsTokens ? await revokeClientTokens(trx, id) : 0;
      await auditRequest(request, {
        action: body.status === 'revoked' && before.status !== 'revoked' ? 'client-revoke' : 'client-update', success: true,
        additionalData: { changed: Object.keys(body).sort(), tokens_revoked: revoked, ...(changes.status ? { status: changes.status } : {}) },
      }, trx);
      return after;
    });
    if (!result) throw notFound(`No client ${id}`);
    if (endsTokens) await endTokens(id);
    return reply.type('application/json; charset=utf-8').send(clientJson(result));
  });

  app.delete('/admin/clients/:id', {
    ...guard,
    schema: { tags, summary: 'Revoke a registered system: status revoked, every token ended at once (the row stays for the audit trail)', params: idParams, response: { 200: clientSchema } },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const result = await app.db.transaction(async (trx) => {
      if (!(await findClient(trx, id))) return undefined;
      const after = (await updateClient(trx, id, { status: 'revoked' }))!;
      const revoked = await revokeClientTokens(trx, id);
      await auditRequest(request, { action: 'client-revoke', success: true, additionalData: { tokens_revoked: revoked } }, trx);
      return after;
    });
    if (!result) throw notFound(`No client ${id}`);
    await endTokens(id);
    return reply.type('application/json; charset=utf-8').send(clientJson(result));
  });
}
