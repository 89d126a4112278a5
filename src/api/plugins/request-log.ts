/**
 * One JSON log line per request, when its response is sent: request id (pino's reqId), method,
 * route template, FHIR interaction and type, status, milliseconds, and who asked (user id and
 * role, or client id). Never the URL's query, a body, a header value or a resource id: the
 * template names /fhir/Patient/:id, not the patient. Fastify's own two lines per request are off
 * (app.ts) so this is the one to search.
 */
import fp from 'fastify-plugin';
import { requestLabels } from '../../metrics/request-labels.js';

export default fp(async (app) => {
  app.addHook('onResponse', async (request, reply) => {
    const { interaction, type } = requestLabels(request.method, request.routeOptions.url);
    const p = request.principal;
    const who = p?.kind === 'user' ? { userId: p.userId, role: p.role } : p?.kind === 'client' ? { clientId: p.clientId, role: 'system' } : {};
    request.log.info({
      method: request.method, route: request.routeOptions.url ?? null, interaction, ...(type ? { type } : {}),
      status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...who,
    }, 'request');
  });
}, { name: 'hms-request-log', dependencies: ['hms-authenticate'] });
