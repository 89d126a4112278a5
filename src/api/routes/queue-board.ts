/**
 * The queue dashboard (@bull-board/fastify) at /admin/queues, for admins only: every request
 * carries an admin's session, as a bearer token or as the HttpOnly cookie that
 * POST /admin/queues/session sets for a browser (path /admin/queues, SameSite=Strict). Served
 * only with BullMQ (REDIS_URL); the embedded mode has `hms jobs status` instead.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { FhirError } from '../../fhir/outcome.js';
import { BullQueues } from '../../workers/bullmq.js';
import { bearerToken } from '../plugins/authenticate.js';
import { DOCS_CSP } from '../plugins/security-headers.js';

export const BOARD_PATH = '/admin/queues';
export const BOARD_COOKIE = 'hms_queue_board';

/** The board's own page loads its scripts and styles from itself; its markup has inline styles. */
const BOARD_CSP = DOCS_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

/** The value of one cookie of a request. */
export function cookieValue(request: FastifyRequest, name: string): string | undefined {
  for (const part of String(request.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

export default async function queueBoardRoutes(app: FastifyInstance): Promise<void> {
  const jobs = app.jobs;
  if (!(jobs instanceof BullQueues)) {
    app.all(`${BOARD_PATH}*`, { schema: { hide: true } }, async () => {
      throw new FhirError(404, 'The queue dashboard needs BullMQ (REDIS_URL); in the embedded mode run `hms jobs status`', 'not-found');
    });
    return;
  }
  // HMS's error handler (OperationOutcome, refusals audited): the board's plugin sets its own for
  // its routes, which would answer a refusal of the hook below as a 500
  const handleError = app.errorHandler;
  await app.register(async (board) => {
    // the cookie stands for the bearer token; then the same checks as every admin route
    board.addHook('onRequest', async (request, reply) => {
      try {
        if (!bearerToken(request)) {
          const cookie = cookieValue(request, BOARD_COOKIE);
          if (cookie && /^[A-Za-z0-9\-._~+/]+=*$/.test(cookie)) request.headers.authorization = `Bearer ${cookie}`;
        }
        await app.requireAuth(request, reply);
        await app.requireAdmin(request, reply);
      } catch (err) {
        await handleError(err as FastifyError, request, reply);
        return reply;
      }
    });
    board.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', BOARD_CSP);
      return payload;
    });
    board.post('/session', { schema: { hide: true } }, async (request, reply) => {
      const secure = request.protocol === 'https' ? '; Secure' : '';
      reply.header('set-cookie', `${BOARD_COOKIE}=${encodeURIComponent(bearerToken(request)!)}; Path=${BOARD_PATH}; HttpOnly; SameSite=Strict${secure}`);
      return reply.code(204).send();
    });
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(BOARD_PATH);
    createBullBoard({ queues: jobs.all().map((q) => new BullMQAdapter(q)), serverAdapter, options: { uiConfig: { boardTitle: 'HMS queues' } } });
    await board.register(serverAdapter.registerPlugin());
  }, { prefix: BOARD_PATH });
}
