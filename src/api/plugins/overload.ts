/**
 * Overload protection (@fastify/under-pressure): while the event loop lags more than
 * HMS_MAX_EVENT_LOOP_DELAY ms, requests are answered at once with 503, an OperationOutcome and
 * Retry-After instead of queueing behind the work already there, so a burst degrades into
 * refusals a client can retry, not into timeouts for everyone. /health/live still answers (the
 * process is alive; an orchestrator must not kill it for being busy: its route's own pressureHandler
 * lets it through, routes/health.ts). 0 turns it off.
 *
 * The refusals come before authentication and touch no data: they are in the metrics and the
 * application log, not in the security log (writing there would add load to an overloaded server).
 */
import fp from 'fastify-plugin';
import underPressure from '@fastify/under-pressure';
import { FhirError } from '../../fhir/outcome.js';

export const OVERLOAD_RETRY_AFTER_SECONDS = 5;

export class OverloadedError extends FhirError {
  constructor() {
    super(503, 'The server is overloaded: retry after the time Retry-After gives', 'transient', { 'Retry-After': String(OVERLOAD_RETRY_AFTER_SECONDS) });
  }
}

export default fp(async (app) => {
  const maxEventLoopDelay = app.config.HMS_MAX_EVENT_LOOP_DELAY;
  if (maxEventLoopDelay <= 0) return;
  await app.register(underPressure, {
    maxEventLoopDelay,
    sampleInterval: 500,
    retryAfter: OVERLOAD_RETRY_AFTER_SECONDS,
    customError: OverloadedError,
  });
}, { name: 'hms-overload', dependencies: ['hms-errors'] });
