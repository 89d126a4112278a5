/** patch: JSON Patch and FHIRPath Patch, applied to the current version and written as an update. https://hl7.org/fhir/R4/http.html#patch */
import type { FhirContext } from './context.js';
import { FhirError } from './outcome.js';
import type { WriteResult } from './interactions.js';

/** The media types a patch body may have. */
export type PatchFormat = 'json-patch' | 'fhirpath-patch';

/**
 * Applies a patch to `type/id` (a JSON Patch array, or a FHIRPath Patch Parameters resource) and
 * writes the result as an update: validated, authorized and audited as one, If-Match honoured.
 */
export async function patchResource(_ctx: FhirContext, _type: string, _id: string, _body: unknown, _format: PatchFormat, _ifMatch?: string): Promise<WriteResult> {
  throw new FhirError(501, 'PATCH is not implemented yet', 'not-supported');
}
