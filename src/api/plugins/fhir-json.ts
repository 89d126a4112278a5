/**
 * FHIR JSON on the wire: application/fhir+json and application/json bodies in (and JSON Patch
 * documents, application/json-patch+json), application/fhir+json out, 406 for an Accept or
 * _format that asks for anything else. https://hl7.org/fhir/R4/http.html#mime-type
 * Every JSON body is refused (400) when it nests deeper than HMS_JSON_MAX_DEPTH, before it is
 * parsed; no text/plain parser (415). See docs/limits.md.
 */
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const JSON_TYPES = ['application/fhir+json', 'application/json', 'application/json+fhir'];
/** RFC 6902's media type, the body of a JSON Patch. https://hl7.org/fhir/R4/http.html#patch */
export const JSON_PATCH = 'application/json-patch+json';
const FORMAT_ALIASES = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir']);

/** Whether an Accept header admits FHIR JSON. */
export function acceptsFhirJson(accept: string | undefined): boolean {
  if (!accept) return true;
  return accept.split(',').some((part) => {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    if (params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p))) return false;
    return range === '*/*' || range === 'application/*' || JSON_TYPES.includes(range!.trim());
  });
}

/**
 * Throws 406 unless the request accepts FHIR JSON (by _format first, then Accept). `format` is a
 * _format given elsewhere than the query (a POST _search form body), which counts first.
 */
export function negotiate(request: FastifyRequest, format: unknown = (request.query as Record<string, unknown> | undefined)?._format): void {
  if (Array.isArray(format)) format = format[format.length - 1];
  if (typeof format === 'string' && format !== '') {
    if (!FORMAT_ALIASES.has(format.toLowerCase())) throw new FhirError(406, `_format '${format}' is not supported: this server speaks application/fhir+json`, 'not-supported');
    return;
  }
  if (!acceptsFhirJson(request.headers.accept)) {
    throw new FhirError(406, `Accept '${request.headers.accept}' is not supported: this server answers application/fhir+json`, 'not-supported');
  }
}

/** A request's media type: its Content-Type without parameters, lower case ('' when absent). */
export function mediaTypeOf(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Whether a media type is one of FHIR JSON's. */
export const isFhirJsonType = (type: string): boolean => JSON_TYPES.includes(type);

/** Throws 415 unless the body is FHIR JSON. */
export function requireJsonBody(request: FastifyRequest): void {
  const type = mediaTypeOf(request);
  if (!isFhirJsonType(type)) {
    throw new FhirError(415, `Unsupported Content-Type '${type || '(none)'}': send application/fhir+json`, 'not-supported');
  }
}

/** Throws 415 unless a POST _search body is form-encoded (or absent). https://hl7.org/fhir/R4/http.html#search */
export function requireFormBody(request: FastifyRequest): void {
  const type = mediaTypeOf(request);
  if (request.body === undefined || request.body === null) return;
  if (type !== 'application/x-www-form-urlencoded') {
    throw new FhirError(415, `POST _search takes application/x-www-form-urlencoded parameters, not '${type || '(none)'}'`, 'not-supported');
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether a JSON text nests objects and arrays more than `maxDepth` levels deep (the outermost
 * object is level 1). One pass over its char codes that skips string contents (a backslash skips
 * the character after it, so an escaped quote does not end a string) and stops at the first level
 * beyond the limit. It does not validate: a malformed text is JSON.parse's to refuse.
 *
 * A plain loop on purpose: a variant that jumped over strings with indexOf and remembered where
 * the next backslash was (much faster on one long string) hung now and then on Node 20.20, in
 * TurboFan's on-stack-replaced code, on a 14 MB body it had scanned in 50 ms in other runs.
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  const n = text.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/**
 * A JSON body nested deeper than HMS_JSON_MAX_DEPTH: 400 `structure`. It carries a Fastify-style
 * statusCode and code too, for the routes with error handlers of their own (/auth/token).
 */
export class JsonTooDeepError extends FhirError {
  readonly statusCode = 400;
  readonly code = 'HMS_JSON_TOO_DEEP';

  constructor(maxDepth: number) {
    super(400, `The request body nests objects and arrays more than ${maxDepth} levels deep: at most ${maxDepth} are allowed (HMS_JSON_MAX_DEPTH)`, 'structure');
  }
}

/** How a body parser hands back its result (Fastify does not export its name for it). */
type ParserDone = (err: Error | null, body?: unknown) => void;

/** A body parser of the callback kind, on the body as a string (Fastify's default JSON parser is one). */
type StringBodyParser = (request: FastifyRequest, body: string, done: ParserDone) => void;

/** A string body parser that refuses bodies nested deeper than `maxDepth` before `parse` sees them. */
export function depthLimited(parse: StringBodyParser, maxDepth: number): StringBodyParser {
  return (request, body, done) => {
    if (nestsDeeperThan(body, maxDepth)) {
      done(new JsonTooDeepError(maxDepth), undefined);
      return;
    }
    parse(request, body, done);
  };
}

/** Parses an application/x-www-form-urlencoded body into a record (a repeated name gives an array). */
function parseForm(_request: FastifyRequest, body: string, done: ParserDone): void {
  const params = new URLSearchParams(String(body));
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    out[key] = all.length === 1 ? all[0]! : all;
  }
  done(null, out);
}

export default fp(async (app) => {
  // Fastify's own defaults replaced: its application/json parser would bypass the depth check,
  // and its text/plain parser would hand JSON routes a string (a 400) instead of a 415
  app.removeContentTypeParser(['application/json', 'text/plain']);
  const parseJson = depthLimited(app.getDefaultJsonParser('error', 'error') as StringBodyParser, app.config.HMS_JSON_MAX_DEPTH);
  app.addContentTypeParser(['application/fhir+json', 'application/json+fhir', 'application/json'], { parseAs: 'string' }, parseJson);
  // JSON Patch documents: the same JSON rules (depth, prototype keys, body limit); the PATCH route tells the formats apart
  app.addContentTypeParser(JSON_PATCH, { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, parseForm);
}, { name: 'hms-fhir-json', dependencies: ['hms-database'] });
