/** GET /admin/break-glass: the break-glass grants, for review (admin only, audited). */
import type { FastifyInstance } from 'fastify';
import { listGrants } from '../../db/break-glass-repository.js';
import { auditRequest } from '../plugins/authenticate.js';

const grant = {
  type: 'object',
  properties: {
    id: { type: 'string' }, user: { type: 'string', description: 'users.id of the clinician' }, patient: { type: 'string', description: 'Patient/{id}' },
    reason: { type: 'string' }, granted_at: { type: 'string', format: 'date-time' }, expires_at: { type: 'string', format: 'date-time' },
    active: { type: 'boolean' }, ip_address: { type: ['string', 'null'] },
  },
} as const;

const ID = '^[A-Za-z0-9\\-.]{1,36}$';
const iso = (sql: string): string => `${sql.replace(' ', 'T')}Z`;

export default async function adminBreakGlassRoutes(app: FastifyInstance): Promise<void> {
  app.get('/admin/break-glass', {
    onRequest: app.requireAuth,
    preHandler: app.requireAdmin,
    schema: {
      tags: ['admin'], summary: 'Break-glass grants, newest first (filter by user, patient, active; page with cursor)',
      querystring: {
        type: 'object', additionalProperties: false,
        // query strings are strings (the app does not coerce types)
        properties: {
          user: { type: 'string', pattern: ID }, patient: { type: 'string', pattern: ID }, active: { type: 'string', enum: ['true'], description: 'only grants in force' },
          limit: { type: 'string', pattern: '^(?:[1-9]\\d?|[1-4]\\d\\d|500)$', default: '50', description: '1-500' }, cursor: { type: 'string', pattern: ID },
        },
      },
      response: { 200: { type: 'object', properties: { grants: { type: 'array', items: grant }, next: { type: 'string' } } } },
    },
  }, async (request) => {
    const q = request.query as { user?: string; patient?: string; active?: 'true'; limit: string; cursor?: string };
    const limit = Number(q.limit);
    const now = new Date();
    const rows = await listGrants(app.db, { userId: q.user, patientId: q.patient, activeAt: q.active ? now : undefined, limit: limit + 1, before: q.cursor });
    const page = rows.slice(0, limit);
    await auditRequest(request, { action: 'break-glass-review', resourceType: 'Patient', success: true, additionalData: { returned: page.length } });
    return {
      grants: page.map((g) => ({
        id: g.id, user: g.userId, patient: `Patient/${g.patientId}`, reason: g.reason, granted_at: iso(g.grantedAt), expires_at: iso(g.expiresAt),
        active: Date.parse(iso(g.expiresAt)) > now.getTime(), ip_address: g.ipAddress,
      })),
      ...(rows.length > limit ? { next: page[page.length - 1]!.id } : {}),
    };
  });
}
