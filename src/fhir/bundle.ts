/** Bundle construction and result shaping (_summary, _elements). https://hl7.org/fhir/R4/bundle.html */
import type { OperationOutcome } from './outcome.js';
import type { ResourceDefinition } from './registry.js';
import type { Resource } from './types.js';
import type { SummaryMode } from './search/params.js';

export interface BundleEntry {
  fullUrl?: string;
  resource?: Resource | OperationOutcome | Bundle;
  search?: { mode: 'match' | 'include' | 'outcome' };
  request?: { method: string; url: string };
  response?: { status: string; location?: string; etag?: string; lastModified?: string; outcome?: OperationOutcome };
}

export interface Bundle {
  resourceType: 'Bundle';
  id?: string;
  meta?: { lastUpdated: string };
  type: 'searchset' | 'history' | 'batch-response' | 'transaction-response';
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: BundleEntry[];
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'Resource encoded in summary mode' };
const ALWAYS = ['resourceType', 'id', 'meta', 'implicitRules'];

function markSubsetted(r: Resource): Resource {
  const meta = { ...(r.meta ?? {}) } as Record<string, unknown>;
  meta.tag = [...((meta.tag as unknown[]) ?? []), SUBSETTED];
  return { ...r, meta: meta as Resource['meta'] };
}

function pick(r: Resource, keep: string[]): Resource {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (ALWAYS.includes(k) || keep.includes(k) || keep.includes(k.replace(/^_/, ''))) out[k] = v;
  }
  return out as Resource;
}

/** Applies _summary and _elements to one resource. https://hl7.org/fhir/R4/search.html#summary */
export function shapeResource(def: ResourceDefinition, r: Resource, summary?: SummaryMode, elements?: string[]): Resource {
  if (elements?.length) return markSubsetted(pick(r, elements));
  switch (summary) {
    case 'true': return markSubsetted(pick(r, def.summaryElements));
    case 'text': return markSubsetted(pick(r, ['text']));
    case 'data': { const { text: _t, ...rest } = r; return markSubsetted(rest as Resource); }
    default: return r;
  }
}

/** A kept version as history lists it: its number, how it was written, when, and its content (none for a delete). */
export interface VersionOf {
  versionId: number;
  method: string;
  recordedAt: string;
  resource?: Record<string, unknown>;
}

/** The history Bundle entry of one version of `type/id`. https://hl7.org/fhir/R4/http.html#history */
export function historyEntry(
  baseUrl: string, type: string, id: string, v: VersionOf,
  withMeta: (r: Record<string, unknown>, version: number, at: string) => Resource,
): BundleEntry {
  const entry: BundleEntry = {
    fullUrl: `${baseUrl}/${type}/${id}`,
    request: { method: v.method, url: v.method === 'POST' ? type : `${type}/${id}` },
    response: {
      status: v.method === 'DELETE' ? '204' : v.versionId === 1 ? '201' : '200',
      etag: `W/"${v.versionId}"`,
      lastModified: new Date(v.recordedAt.replace(' ', 'T') + 'Z').toISOString(),
    },
  };
  if (v.resource) entry.resource = withMeta(v.resource, v.versionId, v.recordedAt);
  return entry;
}

/** A history Bundle of entries already made (historyEntry), with its self and next links. */
export function historyBundleOf(entries: BundleEntry[], selfUrl: string, nextUrl: string | undefined): Bundle {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    link: [{ relation: 'self', url: selfUrl }, ...(nextUrl ? [{ relation: 'next', url: nextUrl }] : [])],
  };
  if (entries.length) bundle.entry = entries; // FHIR JSON has no empty arrays
  return bundle;
}

/** A history Bundle for one resource's versions (newest first). https://hl7.org/fhir/R4/http.html#history */
export function historyBundle(
  baseUrl: string, type: string, id: string,
  versions: VersionOf[],
  selfUrl: string, nextUrl: string | undefined,
  withMeta: (r: Record<string, unknown>, version: number, at: string) => Resource,
): Bundle {
  return historyBundleOf(versions.map((v) => historyEntry(baseUrl, type, id, v, withMeta)), selfUrl, nextUrl);
}
