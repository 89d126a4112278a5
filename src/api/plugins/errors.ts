/** One error handler: every error leaves as an OperationOutcome with its status; 5xx details stay in the log. */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, operationOutcome, type IssueCode } from '../../fhir/outcome.js';
import { FHIR_JSON } from './fhir-json.js';
import { auditRequest } from './authenticate.js';
import { unaudited } from './rate-limit.js';
import { OverloadedError } from './overload.js';

const CODE_BY_STATUS: Record<number, IssueCode> = {
  400: 'invalid', 401: 'login', 403: 'forbidden', 404: 'not-found', 405: 'not-supported', 406: 'not-supported', 408: 'timeout',
  409: 'conflict', 410: 'deleted', 412: 'conflict', 413: 'too-costly', 414: 'too-long', 415: 'not-supported', 417: 'not-supported',
  422: 'processing', 429: 'throttled', 431: 'too-long',
};

const MESSAGE_BY_CODE: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Unsupported Content-Type: send application/fhir+json or application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'Request body is larger than this server accepts',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The request body is empty; a JSON resource was expected',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
};

/**
 * Statements stopped by their time limit: HMS's SQLite deadline, MariaDB ER_STATEMENT_TIMEOUT
 * (1969, which mysql2 has no name for), MySQL ER_QUERY_TIMEOUT (3024), and ER_QUERY_INTERRUPTED
 * (1317, a KILL QUERY); HMS_STATEMENT_CANCELLED is the KILL of a request whose client went away.
 */
const TIMEOUT_CODES = new Set(['HMS_STATEMENT_TIMEOUT', 'HMS_STATEMENT_CANCELLED', 'ER_QUERY_TIMEOUT', 'ER_QUERY_INTERRUPTED']);
const TIMEOUT_ERRNOS = new Set([1969, 3024, 1317]);

/**
 * The database is away, not wrong: a connection refused, reset or lost (a failover behind HAProxy,
 * a restart), the server shutting down or out of connections, a Galera node not yet synced (1047),
 * or no pooled connection in time (KnexTimeoutError). 503 with Retry-After: nothing was
 * acknowledged, and a client retries (a conditional create keeps that idempotent).
 */
const DATABASE_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_UNKNOWN_COM_ERROR']);
const DATABASE_UNAVAILABLE_ERRNOS = new Set([1047, 1053, 1040, 2002, 2003, 2006, 2013]);
/** mysql2's error (no code) for a statement on a connection the server closed meanwhile. */
const CLOSED_CONNECTION = /Can't add new command when connection is in closed state/;

type DatabaseError = { code?: string; errno?: number; nativeError?: { code?: string; errno?: number } };

/** Whether an error is a statement cancelled because its client went away (nobody to answer). */
export const clientGone = (err: unknown): boolean => (err as DatabaseError | undefined)?.code === 'HMS_STATEMENT_CANCELLED';

/** Maps a database error to a client error where it is the client's fault; undefined otherwise. */
function databaseClientError(err: DatabaseError): FhirError | undefined {
  // Objection wraps driver errors (DataError, UniqueViolationError ...) and keeps the code on nativeError
  const code = err.nativeError?.code ?? err.code ?? '';
  const errno = err.nativeError?.errno ?? err.errno;
  if (TIMEOUT_CODES.has(code) || (errno !== undefined && TIMEOUT_ERRNOS.has(errno))) {
    return new FhirError(503, 'The request needed a database statement that ran longer than this server allows, and was stopped: make the search more selective (fewer repeated or negated parameters, a narrower date range) and retry', 'timeout', { 'Retry-After': '5' });
  }
  if (code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new FhirError(409, 'The resource conflicts with an existing one (a unique value is already taken)', 'duplicate');
  }
  if (code === 'ER_NO_REFERENCED_ROW_2' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return new FhirError(422, 'The resource refers to a resource that does not exist', 'not-found');
  }
  if (code === 'ER_CHECK_CONSTRAINT_VIOLATED' || code === 'SQLITE_CONSTRAINT_CHECK' || code === 'ER_CONSTRAINT_FAILED') {
    return new FhirError(422, 'A value is outside the range this server accepts', 'business-rule');
  }
  if (DATABASE_UNAVAILABLE.has(code) || (errno !== undefined && DATABASE_UNAVAILABLE_ERRNOS.has(errno)) || (err as Error).name === 'KnexTimeoutError'
    || CLOSED_CONNECTION.test((err as Error).message ?? '')) {
    return new FhirError(503, 'The database is unavailable (a connection was lost or refused, or a cluster node is not ready); retry the request', 'transient', { 'Retry-After': '2' });
  }
  if (code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'SQLITE_BUSY') {
    return new FhirError(503, 'The database is busy with a conflicting change; retry the request', 'transient', { 'Retry-After': '1' });
  }
  if (code === 'ER_DATA_TOO_LONG' || code === 'ER_TRUNCATED_WRONG_VALUE' || code === 'ER_WARN_DATA_OUT_OF_RANGE') {
    return new FhirError(422, 'A value does not fit the column that stores it', 'too-long');
  }
  return undefined;
}

/** The FhirError an arbitrary error answers as. */
export function toFhirError(err: FastifyError | Error): FhirError {
  if (err instanceof FhirError) return err;
  const fe = err as FastifyError & { code?: string };
  const db = databaseClientError(fe as DatabaseError);
  if (db) return db;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 500) return new FhirError(500, 'Internal server error; the details are in the server log', 'exception');
  const message = MESSAGE_BY_CODE[fe.code ?? ''] ?? (fe.validation ? `Invalid request: ${fe.message}` : fe.message);
  return new FhirError(status, message, CODE_BY_STATUS[status] ?? 'processing');
}

/** Sends a FhirError as an OperationOutcome. */
export function sendOutcome(reply: FastifyReply, error: FhirError): FastifyReply {
  for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
  return reply.code(error.status).type(FHIR_JSON).send(operationOutcome(error.issues));
}

/** The resource type a refused FHIR request named (its route's, or its path's first segment). */
function refusedType(request: FastifyRequest): string | undefined {
  const m = /^\/fhir\/([A-Z][A-Za-z]+)/.exec(request.routeOptions.url ?? request.url);
  return m?.[1];
}

export default fp(async (app) => {
  app.setErrorHandler(async (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const error = toFhirError(err);
    if (clientGone(err)) request.log.info('client went away: its statement was cancelled');
    else if (error.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ status: error.status, code: (err as FastifyError).code }, 'request refused');
    if (/^\/(fhir|admin)(\/|$)/.test(request.url) && error.status !== 401 && request.routeOptions.url !== '/fhir/metadata' && !unaudited(err) && !(err instanceof OverloadedError)) {
      // status and issue code only: diagnostics quote client input (search values, identifiers)
      const refused = auditRequest(request, { action: 'refused', resourceType: refusedType(request), success: false, failureReason: `${error.status} ${error.issues[0]?.code ?? ''}` });
      // every refusal is on record, or the answer is a 503 (the audit failure itself is in the log)
      const unrecorded = await refused.then(() => undefined, (e: unknown) => (e instanceof FhirError ? e : undefined));
      if (unrecorded && error.status < 500) return sendOutcome(reply, unrecorded);
    }
    return sendOutcome(reply, error);
  });
}, { name: 'hms-errors' });
