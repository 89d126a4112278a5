/** patch: JSON Patch and FHIRPath Patch, applied to the current version and written as an update. https://hl7.org/fhir/R4/http.html#patch */
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { FhirContext } from './context.js';
import { FhirError, badRequest, gone, unprocessable } from './outcome.js';
import { updateResource, type WriteResult } from './interactions.js';
import { inTransaction } from '../db/transactions.js';
import { definitionOf, present } from './resource-view.js';
import { locate, missing } from './reach.js';
import { validateResource } from './validate.js';
import { applyFhirPathPatch, parseFhirPathPatch } from './fhirpath-patch.js';
import type { Resource } from './types.js';

/** The media types a patch body may have. */
export type PatchFormat = 'json-patch' | 'fhirpath-patch';

/** fast-json-patch's errors for a patch document that is not a valid JSON Patch (400); the others are patches that do not apply (422). */
const MALFORMED = new Set([
  'SEQUENCE_NOT_AN_ARRAY', 'OPERATION_NOT_AN_OBJECT', 'OPERATION_OP_INVALID', 'OPERATION_PATH_INVALID', 'OPERATION_FROM_REQUIRED',
  'OPERATION_VALUE_REQUIRED', 'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED',
]);
/** RFC 6902's operations (fast-json-patch also knows an internal `_get`, which is no client's to send). */
const JSON_PATCH_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** The FhirError for a fast-json-patch error: the operation's index as the expression (`/3`). */
function jsonPatchError(err: unknown): FhirError {
  if (err instanceof jsonpatch.JsonPatchError) {
    const at = err.index === undefined ? undefined : `/${err.index}`;
    const op = err.index === undefined ? '' : ` (operation ${err.index}${typeof err.operation?.op === 'string' ? `, ${String(err.operation.op).slice(0, 20)} ${String(err.operation.path ?? '').slice(0, 200)}` : ''})`;
    // the message's first line only: the lines after it print the operation and the whole document (patient data)
    const message = err.message.split('\n')[0];
    return MALFORMED.has(err.name) ? badRequest(`Invalid JSON Patch${op}: ${message}`, at) : unprocessable(`The JSON Patch does not apply${op}: ${message}`, at);
  }
  // fast-json-patch refuses __proto__ and constructor/prototype in a path with a TypeError
  if (err instanceof TypeError && /banned/.test(err.message)) return badRequest('Invalid JSON Patch: a path may not name __proto__ or constructor/prototype');
  throw err;
}

/** Checks a JSON Patch document's shape before anything is read (400 when malformed). */
function checkJsonPatch(body: unknown): Operation[] {
  const err = jsonpatch.validate(body as Operation[]);
  if (err) throw jsonPatchError(err);
  const ops = body as Operation[];
  const bad = ops.findIndex((o) => !JSON_PATCH_OPS.has(o.op));
  if (bad >= 0) throw badRequest(`Invalid JSON Patch (operation ${bad}): op must be one of ${[...JSON_PATCH_OPS].join(', ')}`, `/${bad}`);
  return ops;
}

/** A JSON Patch document, checked, as the function applying it to a resource. */
function jsonPatchOf(body: unknown): (r: Resource) => unknown {
  const ops = checkJsonPatch(body);
  return (resource) => {
    try {
      // validate each operation against the document; work on a copy; prototype changes stay banned
      return jsonpatch.applyPatch(resource, ops, true, false, true).newDocument;
    } catch (err) {
      throw jsonPatchError(err);
    }
  };
}

/** A FHIRPath Patch Parameters, parsed, as the function applying it to a resource. */
function fhirPathPatchOf(body: unknown): (r: Resource) => unknown {
  const ops = parseFhirPathPatch(body);
  return (resource) => applyFhirPathPatch(resource, ops);
}

/** 422 unless the patched document is still this resource, and valid (a schema refusal of the result is the patch's fault). */
function checkResult(type: string, id: string, patched: unknown): Resource {
  if (typeof patched !== 'object' || patched === null || Array.isArray(patched)) throw unprocessable('The patch must leave a resource, not remove or replace it with something else');
  const r = patched as Resource;
  if (r.resourceType !== type) throw unprocessable(`A patch cannot change the resourceType (${type} to ${JSON.stringify(r.resourceType ?? null)})`, `${type}.resourceType`);
  if (r.id !== id) throw unprocessable(`A patch cannot change or remove the id (${id} to ${JSON.stringify(r.id ?? null)})`, `${type}.id`);
  try {
    validateResource(type, r);
  } catch (err) {
    if (err instanceof FhirError && err.status === 400) throw new FhirError(422, err.issues);
    throw err;
  }
  return r;
}

/**
 * Applies a patch to `type/id` (a JSON Patch array, or a FHIRPath Patch Parameters resource) and
 * writes the result as an update: validated, authorized and audited as one, If-Match honoured.
 * The current row is read locked, so concurrent patches of one resource apply one after the other.
 */
export async function patchResource(ctx: FhirContext, type: string, id: string, body: unknown, format: PatchFormat, ifMatch?: string): Promise<WriteResult> {
  const def = definitionOf(type);
  if (!def.interactions.includes('patch')) throw new FhirError(405, `${type} cannot be patched`, 'not-supported');
  const rule = ctx.access.require(def, 'update');
  // a malformed patch is refused before anything is read
  const apply = format === 'json-patch' ? jsonPatchOf(body) : fhirPathPatchOf(body);
  // the update's after-commit work waits for this transaction (or the caller's) to commit
  const deferred = ctx.deferred ?? [];
  const result = await inTransaction(ctx.db, async (trx) => {
    if (!ctx.deferred) deferred.length = 0;
    const current = await locate(ctx, def, rule, id, trx, true, 'write');
    if (!current) throw await missing(ctx, def, rule, id, trx);
    if (current.deleted) throw gone(`${type}/${id} has been deleted`);
    const patched = checkResult(type, id, apply(present(def, current)));
    return updateResource({ ...ctx, db: trx, deferred }, type, id, patched, ifMatch);
  });
  if (!ctx.deferred) for (const fn of deferred) await fn();
  return result;
}
