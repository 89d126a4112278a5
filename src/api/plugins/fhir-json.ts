/**
 * FHIR JSON on the wire: application/fhir+json and application/json bodies in, application/fhir+json
 * out, 406 for an Accept or _format that asks for anything else. https://hl7.org/fhir/R4/http.html#mime-type
 */
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { FhirError } from '../../fhir/outcome.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const JSON_TYPES = ['application/fhir+json', 'application/json', 'application/json+fhir'];
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

/** Throws 406 unless the request accepts FHIR JSON (by _format first, then Accept). */
export function negotiate(request: FastifyRequest): void {
  const format = (request.query as Record<string, unknown> | undefined)?._format;
  if (typeof format === 'string' && format !== '') {
    if (!FORMAT_ALIASES.has(format.toLowerCase())) throw new FhirError(406, `_format '${format}' is not supported: this server speaks application/fhir+json`, 'not-supported');
    return;
  }
  if (!acceptsFhirJson(request.headers.accept)) {
    throw new FhirError(406, `Accept '${request.headers.accept}' is not supported: this server answers application/fhir+json`, 'not-supported');
  }
}

/** Throws 415 unless the body is FHIR JSON. */
export function requireJsonBody(request: FastifyRequest): void {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (!JSON_TYPES.includes(type)) {
    throw new FhirError(415, `Unsupported Content-Type '${type || '(none)'}': send application/fhir+json`, 'not-supported');
  }
}

/** Throws 415 unless a POST _search body is form-encoded (or absent). https://hl7.org/fhir/R4/http.html#search */
export function requireFormBody(request: FastifyRequest): void {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (request.body === undefined || request.body === null) return;
  if (type !== 'application/x-www-form-urlencoded') {
    throw new FhirError(415, `POST _search takes application/x-www-form-urlencoded parameters, not '${type || '(none)'}'`, 'not-supported');
  }
}

export default fp(async (app) => {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(['application/fhir+json', 'application/json+fhir'], { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const params = new URLSearchParams(String(body));
    const out: Record<string, string | string[]> = {};
    for (const key of new Set(params.keys())) {
      const all = params.getAll(key);
      out[key] = all.length === 1 ? all[0]! : all;
    }
    done(null, out);
  });
}, { name: 'hms-fhir-json' });
