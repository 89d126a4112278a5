/**
 * The admin API for people and their accounts: /admin/users. JSON in and out (errors are
 * OperationOutcomes like everywhere else), admins only, every call audited. A thin adapter over
 * src/auth/accounts.ts. docs/admin-api.md.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  ACCOUNT_STATUSES, MAX_PAGE, createUser, deleteUser, getUser, listSessions, listUsers, revokeSessions, setPassword, updateUser,
  type AccountActor, type AccountsDeps, type NewUser, type UserChanges,
} from '../../auth/accounts.js';
import { ROLES, type UserPrincipal } from '../../auth/principal.js';
import { auditRequest } from '../plugins/authenticate.js';
import { baseUrl } from './fhir-context.js';

const nullableText = (maxLength: number) => ({ type: ['string', 'null'], minLength: 1, maxLength }) as const;

const user = {
  type: 'object',
  description: 'A user account (never its password hash)',
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: [...ROLES] },
    status: { type: 'string', enum: [...ACCOUNT_STATUSES] },
    department: { type: ['string', 'null'] },
    specialization: { type: ['string', 'null'] },
    phone: { type: ['string', 'null'] },
    patient: { type: ['string', 'null'], description: 'Patient/{id} of the record linked to a patient account' },
    practitioner: { type: ['string', 'null'], description: 'Practitioner/{id} for doctors and nurses (the same users row)' },
    has_password: { type: 'boolean', description: 'false until a password is set (a Practitioner created through FHIR cannot log in before)' },
    last_login: { type: ['string', 'null'], format: 'date-time' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const session = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    ip_address: { type: ['string', 'null'] },
    user_agent: { type: ['string', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
    expires_at: { type: 'string', format: 'date-time' },
    last_activity: { type: 'string', format: 'date-time' },
    active: { type: 'boolean', description: 'not revoked (logout, revocation)' },
    live: { type: 'boolean', description: 'usable now: active, not expired, not idle' },
  },
} as const;

/** Errors are OperationOutcomes (application/fhir+json), as on every HMS route. */
const outcome = {
  type: 'object',
  description: 'OperationOutcome (application/fhir+json)',
  additionalProperties: true,
  properties: { resourceType: { type: 'string', enum: ['OperationOutcome'] }, issue: { type: 'array', items: { type: 'object', additionalProperties: true } } },
} as const;

const refusals = (...codes: number[]) => Object.fromEntries([401, 403, ...codes].map((c) => [c, outcome]));
const noContent = { 204: { type: 'null', description: 'Done' } } as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
const patientRef = { type: 'string', pattern: '^Patient/[A-Za-z0-9\\-.]{1,36}$', description: 'Patient/{id}: links a patient account to its record (patients.user_id)' } as const;

const createBody = {
  type: 'object',
  required: ['email', 'password', 'name', 'role'],
  additionalProperties: false,
  properties: {
    email: { type: 'string', minLength: 3, maxLength: 255 },
    // length rules (8 characters, 72 bytes) are the service's: its 400 says which one failed
    password: { type: 'string', minLength: 1, maxLength: 1024 },
    name: { type: 'string', minLength: 1, maxLength: 255 },
    role: { type: 'string', enum: [...ROLES] },
    department: nullableText(100),
    specialization: nullableText(100),
    phone: nullableText(20),
    patient: patientRef,
  },
} as const;

const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 255 },
    department: nullableText(100),
    specialization: nullableText(100),
    phone: nullableText(20),
    status: { type: 'string', enum: [...ACCOUNT_STATUSES] },
    role: { type: 'string', enum: [...ROLES] },
    patient: { anyOf: [patientRef, { type: 'null' }] },
  },
} as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    role: { type: 'string', enum: [...ROLES] },
    status: { type: 'string', enum: [...ACCOUNT_STATUSES] },
    email: { type: 'string', minLength: 1, maxLength: 255, description: 'the whole email, any case' },
    limit: { type: 'string', pattern: '^[0-9]{1,3}$', description: `page size, 1 to ${MAX_PAGE} (default 50)` },
    cursor: { type: 'string', maxLength: 64, description: 'next_cursor of the previous page' },
  },
} as const;

const passwordBody = {
  type: 'object', required: ['password'], additionalProperties: false,
  properties: { password: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

type IdParams = { id: string };

export default async function adminUserRoutes(app: FastifyInstance): Promise<void> {
  const deps: AccountsDeps = { db: app.db, bcryptCost: app.config.HMS_BCRYPT_COST, revocations: app.revocations, sessionIdleSeconds: app.config.HMS_SESSION_IDLE };
  const actor = (request: FastifyRequest): AccountActor => ({
    principal: request.principal as UserPrincipal,
    audit: (events, trx) => auditRequest(request, events, trx),
    baseUrl: baseUrl(request),
  });
  // admin before anything else: a caller who is not one learns nothing, not even what a valid body is
  const guard = { onRequest: [app.requireAuth, app.requireAdmin] };
  const tags = ['admin'];

  app.post('/admin/users', {
    ...guard,
    schema: { tags, summary: 'Create a user account (a doctor or nurse is also Practitioner/{id})', body: createBody, response: { 201: user, ...refusals(400, 409, 422) } },
  }, async (request, reply) => {
    const created = await createUser(deps, actor(request), request.body as NewUser);
    return reply.code(201).header('Location', `/admin/users/${created.id}`).send(created);
  });

  app.get('/admin/users', {
    ...guard,
    schema: {
      tags, summary: 'List user accounts (not deleted), filtered and paged by id', querystring: listQuery,
      response: {
        200: { type: 'object', properties: { users: { type: 'array', items: user }, next_cursor: { type: ['string', 'null'] }, next: { type: ['string', 'null'] } } },
        ...refusals(400),
      },
    },
  }, async (request) => {
    const q = request.query as { role?: string; status?: string; email?: string; limit?: string; cursor?: string };
    const page = await listUsers(deps, actor(request), { ...q, limit: q.limit === undefined ? undefined : Number(q.limit) });
    let next: string | null = null;
    if (page.next_cursor) {
      const params = new URLSearchParams(Object.entries(q).filter(([k, v]) => k !== 'cursor' && v !== undefined) as [string, string][]);
      params.set('cursor', page.next_cursor);
      next = `/admin/users?${params.toString()}`;
    }
    return { ...page, next };
  });

  app.get('/admin/users/:id', {
    ...guard,
    schema: { tags, summary: 'Read a user account', params: idParams, response: { 200: user, ...refusals(404, 410) } },
  }, async (request) => getUser(deps, actor(request), (request.params as IdParams).id));

  app.patch('/admin/users/:id', {
    ...guard,
    schema: {
      tags, summary: 'Change a user account: name, department, specialization, phone, status, role, patient link',
      description: 'Nobody changes their own role or status (403). A role change, suspension or deactivation or a new patient link ends the user\'s sessions at once.',
      params: idParams, body: patchBody, response: { 200: user, ...refusals(400, 404, 410, 422) },
    },
  }, async (request) => updateUser(deps, actor(request), (request.params as IdParams).id, request.body as UserChanges));

  app.delete('/admin/users/:id', {
    ...guard,
    schema: { tags, summary: 'Delete a user account (soft: users.deleted_at); its sessions end', params: idParams, response: { ...noContent, ...refusals(404) } },
  }, async (request, reply) => {
    await deleteUser(deps, actor(request), (request.params as IdParams).id);
    return reply.code(204).send();
  });

  app.post('/admin/users/:id/password', {
    ...guard,
    schema: {
      tags, summary: 'Set a new password (at least 8 characters, at most 72 bytes); every session of the user ends',
      description: 'Also gives a Practitioner created through FHIR its login.',
      params: idParams, body: passwordBody, response: { ...noContent, ...refusals(400, 404, 410) },
    },
  }, async (request, reply) => {
    await setPassword(deps, actor(request), (request.params as IdParams).id, (request.body as { password: string }).password);
    return reply.code(204).send();
  });

  app.get('/admin/users/:id/sessions', {
    ...guard,
    schema: { tags, summary: 'The user\'s login sessions, newest first (at most 100)', params: idParams, response: { 200: { type: 'array', items: session }, ...refusals(404, 410) } },
  }, async (request) => listSessions(deps, actor(request), (request.params as IdParams).id));

  app.delete('/admin/users/:id/sessions', {
    ...guard,
    schema: { tags, summary: 'End every session of the user at once, on every API process', params: idParams, response: { ...noContent, ...refusals(404, 410) } },
  }, async (request, reply) => {
    await revokeSessions(deps, actor(request), (request.params as IdParams).id);
    return reply.code(204).send();
  });
}
