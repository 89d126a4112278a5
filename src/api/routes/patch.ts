/**
 * FHIR routes: PATCH with JSON Patch (application/json-patch+json) and FHIRPath Patch (a
 * Parameters resource as application/fhir+json). https://hl7.org/fhir/R4/http.html#patch
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allResourceDefinitions } from '../../fhir/registry.js';
import { patchResource, type PatchFormat } from '../../fhir/patch.js';
import { FhirError } from '../../fhir/outcome.js';
import { JSON_PATCH, isFhirJsonType, mediaTypeOf } from '../plugins/fhir-json.js';
import { fhirContext, sendResource } from './fhir-context.js';

const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const patchBody = {
  description: 'A JSON Patch document (application/json-patch+json) or a FHIRPath Patch Parameters resource (application/fhir+json)',
  oneOf: [{ type: 'array', items: { type: 'object', additionalProperties: true } }, { type: 'object', additionalProperties: true }],
} as const;

/** The patch format a request's Content-Type and body say; 415 for any other. */
function formatOf(request: FastifyRequest): PatchFormat {
  const type = mediaTypeOf(request);
  if (type === JSON_PATCH) return 'json-patch';
  if (isFhirJsonType(type)) {
    if (Array.isArray(request.body)) throw new FhirError(415, `A JSON Patch document is sent as ${JSON_PATCH}, not '${type}'`, 'not-supported');
    return 'fhirpath-patch';
  }
  throw new FhirError(415, `Unsupported Content-Type '${type || '(none)'}' for PATCH: send a JSON Patch as ${JSON_PATCH} or a FHIRPath Patch (Parameters) as application/fhir+json`, 'not-supported');
}

export function patchRoutes(app: FastifyInstance): void {
  for (const def of allResourceDefinitions()) {
    if (!def.interactions.includes('patch')) continue;
    const type = def.type;
    app.patch(`/fhir/${type}/:id`, {
      schema: { tags: [type], summary: `Patch a ${type} (JSON Patch or FHIRPath Patch); If-Match for optimistic locking`, params: idParams, body: patchBody },
    }, async (request, reply) => {
      const format = formatOf(request);
      const ifMatch = request.headers['if-match'];
      const result = await patchResource(fhirContext(request), type, (request.params as { id: string }).id, request.body, format, typeof ifMatch === 'string' ? ifMatch : undefined);
      return sendResource(request, reply, result.status, result.resource, true);
    });
  }
}
