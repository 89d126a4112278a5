/**
 * One Bundle entry run through the same interactions as the REST API (so it is validated,
 * authorized and audited as that request would be), and the response entry it answers with.
 * https://hl7.org/fhir/R4/bundle.html#bundle-transaction
 */
import { STATUS_CODES } from 'node:http';
import type { FhirContext } from '../context.js';
import type { BundleEntry } from '../bundle.js';
import type { Resource } from '../types.js';
import { FhirError, badRequest, operationOutcome } from '../outcome.js';
import {
  createResource, deleteResource, instanceHistory, readResource, searchResources, updateResource, vreadResource, type WriteResult,
} from '../interactions.js';
import { conditionalDelete, conditionalUpdate } from '../conditional.js';
import { patchResource, type PatchFormat } from '../patch.js';
import { criteriaQuery } from '../conditional-match.js';
import type { BundleEntryRequest } from './bundle-entries.js';

/** What the client asked the answer to carry (Prefer: return=). */
export type ReturnPreference = 'minimal' | 'representation' | 'OperationOutcome';

/** An entry's outcome: the response entry, and the `Type/id` it wrote (what later entries' references become). */
export interface EntryResult {
  entry: BundleEntry;
  wrote?: string;
}

export const statusLine = (status: number): string => `${status} ${STATUS_CODES[status] ?? ''}`.trim();

/** The body of a PATCH entry: a Binary holding a JSON Patch document, or a FHIRPath Patch Parameters. */
function patchOf(e: BundleEntryRequest): { body: unknown; format: PatchFormat } {
  const r = e.resource as Resource & { contentType?: unknown; data?: unknown };
  if (r.resourceType === 'Parameters') return { body: r, format: 'fhirpath-patch' };
  if (r.resourceType === 'Binary' && r.contentType === 'application/json-patch+json' && typeof r.data === 'string') {
    try {
      return { body: JSON.parse(Buffer.from(r.data, 'base64').toString('utf8')), format: 'json-patch' };
    } catch {
      throw badRequest(`Bundle.entry[${e.index}]: the Binary's data is not a base64 JSON Patch document`, `Bundle.entry[${e.index}].resource.data`);
    }
  }
  throw badRequest(`Bundle.entry[${e.index}]: a PATCH entry's resource is a Parameters (FHIRPath Patch) or a Binary of contentType application/json-patch+json`, `Bundle.entry[${e.index}].resource`);
}

function written(result: WriteResult, ret: ReturnPreference, baseUrl: string): EntryResult {
  const r = result.resource;
  const version = r.meta?.versionId;
  const entry: BundleEntry = {
    fullUrl: `${baseUrl}/${r.resourceType}/${r.id}`,
    response: {
      status: statusLine(result.status),
      location: `${r.resourceType}/${r.id}/_history/${version}`,
      etag: `W/"${version}"`,
      ...(r.meta?.lastUpdated ? { lastModified: r.meta.lastUpdated } : {}),
    },
  };
  if (ret === 'representation') entry.resource = r;
  if (ret === 'OperationOutcome') {
    entry.response!.outcome = operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `${r.resourceType}/${r.id} version ${version} ${result.created ? 'created' : 'stored'}` }]);
  }
  return { entry, wrote: `${r.resourceType}/${r.id}` };
}

/** A read's answer, or 304 when the entry's ifNoneMatch / ifModifiedSince say the client has it. */
function readAnswer(e: BundleEntryRequest, r: Resource, baseUrl: string): EntryResult {
  const version = r.meta?.versionId;
  const etag = `W/"${version}"`;
  const notModified = (e.ifNoneMatch !== undefined && (e.ifNoneMatch === '*' || e.ifNoneMatch.replace(/^W\//, '') === etag.replace(/^W\//, '')))
    || (e.ifModifiedSince !== undefined && r.meta?.lastUpdated !== undefined && Date.parse(r.meta.lastUpdated) <= Date.parse(e.ifModifiedSince));
  const response = { status: statusLine(notModified ? 304 : 200), etag, ...(r.meta?.lastUpdated ? { lastModified: r.meta.lastUpdated } : {}) };
  return { entry: { fullUrl: `${baseUrl}/${r.resourceType}/${r.id}`, ...(notModified ? {} : { resource: r }), response } };
}

/** Runs one entry (its resource's references already resolved) with `ctx` (inside the caller's transaction, if any). */
export async function runEntry(ctx: FhirContext, e: BundleEntryRequest, resource: Resource | undefined, ret: ReturnPreference): Promise<EntryResult> {
  const t = e.target;
  switch (e.method) {
    case 'POST':
      return written(await createResource(ctx, e.type, resource, e.ifNoneExist), ret, ctx.baseUrl);
    case 'PUT':
      return written(t.kind === 'search'
        ? await conditionalUpdate(ctx, e.type, t.criteria, resource, e.ifMatch)
        : await updateResource(ctx, e.type, (t as { id: string }).id, resource, e.ifMatch), ret, ctx.baseUrl);
    case 'PATCH': {
      const { body, format } = patchOf(e);
      return written(await patchResource(ctx, e.type, (t as { id: string }).id, body, format, e.ifMatch), ret, ctx.baseUrl);
    }
    case 'DELETE':
      if (t.kind === 'search') await conditionalDelete(ctx, e.type, t.criteria);
      else await deleteResource(ctx, e.type, (t as { id: string }).id);
      return { entry: { response: { status: statusLine(204) } } };
    case 'GET': {
      const self = `${ctx.baseUrl}/${e.url.replace(/^\/+/, '')}`;
      if (t.kind === 'instance') return readAnswer(e, await readResource(ctx, e.type, t.id), ctx.baseUrl);
      if (t.kind === 'version') return readAnswer(e, await vreadResource(ctx, e.type, t.id, t.version), ctx.baseUrl);
      const bundle = t.kind === 'instance-history'
        ? await instanceHistory(ctx, e.type, t.id, {}, self)
        : await searchResources(ctx, e.type, t.kind === 'search' ? criteriaQuery(t.criteria) : {}, self);
      return { entry: { resource: bundle as unknown as Resource, response: { status: statusLine(200) } } };
    }
  }
}

/** The response entry of a failed batch entry: its status and OperationOutcome. */
export function failedEntry(err: FhirError): EntryResult {
  return { entry: { response: { status: statusLine(err.status), outcome: err.outcome } } };
}
