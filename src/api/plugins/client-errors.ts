/**
 * The answers Node's HTTP server gives before any route: a request it cannot parse (its
 * 'clientError': a bad method, a request line or header block over the size limit, invalid
 * characters, both Content-Length and Transfer-Encoding, a request that did not arrive in time),
 * a CONNECT, an Expect it does not know, and an HTTP/1.1 request without Host. Each is an
 * OperationOutcome in application/fhir+json with the security headers of every other answer and
 * Connection: close, written while the socket is still writable and no other answer is being
 * written on it (after it, when a pipelined request follows a good one). See docs/limits.md.
 */
import fp from 'fastify-plugin';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { FhirError, operationOutcome } from '../../fhir/outcome.js';
import { FHIR_JSON } from './fhir-json.js';
import { helmetHeaders } from './security-headers.js';
import { sendOutcome } from './errors.js';

/** An error of Node's HTTP parser as 'clientError' passes it (llhttp's HPE_* codes, or ERR_HTTP_REQUEST_TIMEOUT). */
type ParserError = Error & { code?: string; bytesParsed?: number; rawPacket?: unknown };

/**
 * How long a refused connection is kept open for reading (and discarding) what the client is
 * still sending, so that its unread upload does not make the kernel reset the connection and
 * throw the answer away before the client reads it (RFC 9112 section 9.6).
 */
const LINGER_MS = 2000;

/** An RFC 9110 method token followed by a space: a well-formed method this server does not know. */
const METHOD_TOKEN = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}) /;

/** A request line with a well-formed HTTP version other than 1.x. */
const OTHER_VERSION = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/(?!1\.)\d\.\d\r?$/;

/**
 * Per server: the security headers every answer carries, the connections refused (the parser
 * repeats its error on every later chunk: each is answered once) and those of them still open.
 */
interface ServerState { headers: Record<string, string>; refused: WeakSet<Duplex>; lingering: Set<Duplex> }

const states = new WeakMap<http.Server, ServerState>();

/** The state of a server (made on first use, before the plugin has added the security headers). */
function stateOf(server: http.Server): ServerState {
  let state = states.get(server);
  if (!state) {
    state = { headers: {}, refused: new WeakSet(), lingering: new Set() };
    states.set(server, state);
  }
  return state;
}

/** The security headers every answer carries, for answers given before the hooks that add them run (Fastify's frameworkErrors). */
export function securityHeadersOf(server: http.Server): Record<string, string> {
  return stateOf(server).headers;
}

/** The line of the raw request where the parser stopped (Latin-1, at most 8 KB), for telling an unknown method from garbage. */
function failedLine(err: ParserError): string {
  const raw = err.rawPacket;
  if (!Buffer.isBuffer(raw)) return '';
  const at = Math.min(Math.max(err.bytesParsed ?? 0, 0), raw.length);
  const start = at === 0 ? 0 : raw.lastIndexOf(0x0a, at - 1) + 1;
  const end = raw.indexOf(0x0a, start);
  return raw.subarray(start, Math.min(end === -1 ? raw.length : end, start + 8192)).toString('latin1');
}

/** The refusal a parse error answers as. Diagnostics name no client input but a method token. */
export function clientErrorOutcome(err: ParserError): FhirError {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new FhirError(408, 'The request was not received in time', 'timeout');
    case 'HPE_HEADER_OVERFLOW':
      return new FhirError(431, `The request line and headers are larger than this server accepts (${http.maxHeaderSize} bytes)`, 'too-long');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new FhirError(413, 'The chunk extensions of the request body are larger than this server accepts', 'too-long');
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return new FhirError(400, 'The request has an invalid Transfer-Encoding, or both Transfer-Encoding and Content-Length', 'structure');
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
      return new FhirError(400, 'The request has an invalid or repeated Content-Length', 'structure');
    case 'HPE_INVALID_CHUNK_SIZE':
      return new FhirError(400, 'The chunked request body is malformed', 'structure');
    case 'HPE_INVALID_HEADER_TOKEN':
      return new FhirError(400, 'A request header has an invalid name or value (control characters, spaces, line folding)', 'structure');
    case 'HPE_PAUSED_H2_UPGRADE':
      return new FhirError(505, 'HTTP/2 is not supported: send HTTP/1.1', 'not-supported');
    case 'HPE_INVALID_METHOD': {
      const method = METHOD_TOKEN.exec(failedLine(err))?.[1];
      if (method) return new FhirError(501, `Method '${method}' is not implemented by this server`, 'not-supported');
      break;
    }
    case 'HPE_INVALID_VERSION':
      if (OTHER_VERSION.test(failedLine(err))) return new FhirError(505, 'This HTTP version is not supported: send HTTP/1.1', 'not-supported');
      break;
  }
  return new FhirError(400, 'The request is not well-formed HTTP/1.1', 'structure');
}

/** A complete HTTP/1.1 answer (status line, headers, OperationOutcome body) that closes the connection. */
export function rawOutcomeResponse(error: FhirError, headers: Record<string, string>): string {
  const body = JSON.stringify(operationOutcome(error.issues));
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n`
    + `Content-Type: ${FHIR_JSON}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n`
    + `Date: ${new Date().toUTCString()}\r\nConnection: close\r\n${lines}\r\n${body}`;
}

/** The answer in progress on a socket, if any (Node's own field: the response of the request being served). */
function answerInProgress(socket: Duplex): ServerResponse | undefined {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/**
 * Writes an answer and half-closes the connection, then reads and discards what the client still
 * sends until it closes its side or LINGER_MS pass (or the app closes), and destroys the socket.
 */
function answerAndClose(state: ServerState, socket: Duplex, response: string): void {
  state.lingering.add(socket);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => {
    clearTimeout(timer);
    state.lingering.delete(socket);
  });
  socket.on('error', () => socket.destroy());
  socket.end(response);
  socket.resume();
}

/**
 * Fastify's clientErrorHandler: answers a request Node could not parse, or that timed out, with an
 * OperationOutcome, and closes the connection. The answer is written at once when nothing is being
 * answered on the socket, or when the request being answered is the one that failed (its body was
 * malformed or did not arrive in time) and its answer has not begun; after the answer in progress
 * when that request was complete (the failure is in a pipelined request after it). A connection
 * reset, a socket no longer writable, or a request whose answer has already begun, is closed
 * without a word.
 */
export function clientErrorHandler(this: FastifyInstance, err: ParserError, socket: Socket): void {
  const state = stateOf(this.server);
  if (state.refused.has(socket)) return;
  state.refused.add(socket);
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const error = clientErrorOutcome(err);
  // the parser's code only: the raw packet holds the request line and headers (search values, tokens)
  this.log.debug({ status: error.status, code: err.code }, 'client error answered before routing');
  const answer = () => {
    if (socket.writable) answerAndClose(state, socket, rawOutcomeResponse(error, state.headers));
    else socket.destroy();
  };
  const inProgress = answerInProgress(socket);
  if (!inProgress) answer();
  else if (inProgress.req?.complete) afterAnswer(inProgress, socket, answer);
  else if (!inProgress.headersSent) answer();
  else socket.destroy();
}

/** Runs `then` once an answer in progress has been written; destroys the socket if it is abandoned instead. */
function afterAnswer(response: ServerResponse, socket: Duplex, then: () => void): void {
  response.once('finish', then);
  response.once('close', () => {
    if (!response.writableFinished) socket.destroy();
  });
}

/** Answers a CONNECT (which Node hands to no route): 501, this server is no proxy. */
function answerConnect(state: ServerState, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  answerAndClose(state, socket, rawOutcomeResponse(new FhirError(501, 'CONNECT is not implemented: this server is not a proxy', 'not-supported'), state.headers));
}

/** Answers an Expect header other than 100-continue (which Node would refuse with an empty 417). */
function answerExpectation(state: ServerState, response: ServerResponse): void {
  const error = new FhirError(417, "Expect is not supported but for '100-continue'", 'not-supported');
  const body = JSON.stringify(operationOutcome(error.issues));
  response.writeHead(error.status, { ...state.headers, 'content-type': FHIR_JSON, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', connection: 'close' });
  response.end(body);
}

/**
 * Registered after the HTTP surface (its onRequest hook, the Host check, runs after the one that
 * adds the security headers). Node's own 400 for a missing Host is turned off in app.ts
 * (requireHostHeader: false) so that this check answers it as an OperationOutcome.
 */
export default fp(async (app) => {
  const state = stateOf(app.server);
  state.headers = await helmetHeaders();
  app.server.on('connect', (_request: IncomingMessage, socket: Duplex) => answerConnect(state, socket));
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => answerExpectation(state, response));
  // RFC 9112 section 3.2: an HTTP/1.1 request without Host is a 400 (an empty Host is allowed)
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.host === undefined && request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor >= 1) {
      return sendOutcome(reply, new FhirError(400, 'An HTTP/1.1 request must have a Host header', 'structure'));
    }
  });
  app.addHook('preClose', async () => {
    for (const socket of state.lingering) socket.destroy();
  });
}, { name: 'hms-client-errors', dependencies: ['hms-http-surface'] });
