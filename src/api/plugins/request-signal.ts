/**
 * An AbortSignal per request that aborts when the client goes away before its answer is sent,
 * for the database statements the request runs (src/db/cancellable.ts).
 *
 * Fastify's own request.signal listens to the request's 'close', which Node emits as soon as a
 * request body has been read: a POST _search would look abandoned from its first statement. The
 * response's 'close' before it finished is what a departed client looks like.
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';

const replies = new WeakMap<FastifyRequest, FastifyReply>();
const signals = new WeakMap<FastifyRequest, AbortSignal>();

/** The request's abandonment signal (created on first use); undefined outside the plugin's scope. */
export function requestSignal(request: FastifyRequest): AbortSignal | undefined {
  let signal = signals.get(request);
  if (signal) return signal;
  const reply = replies.get(request);
  if (!reply) return undefined;
  const controller = new AbortController();
  const res = reply.raw;
  if (res.destroyed && !res.writableFinished) controller.abort();
  else res.once('close', () => { if (!res.writableFinished) controller.abort(); });
  signal = controller.signal;
  signals.set(request, signal);
  return signal;
}

/** Remembers each request's reply, so that requestSignal can watch its response. */
export default fp(async (app) => {
  app.addHook('onRequest', (request, reply, done) => {
    replies.set(request, reply);
    done();
  });
}, { name: 'hms-request-signal' });
