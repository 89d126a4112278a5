/**
 * The entries of a batch or transaction Bundle as HMS runs them: each entry's method, what its
 * url names (a type, a resource, a version, a search, criteria) and its conditions, checked
 * before anything runs. https://hl7.org/fhir/R4/http.html#transaction
 */
import { FhirError, badRequest } from '../outcome.js';
import { resourceDefinition } from '../registry.js';
import type { Resource } from '../types.js';
import { localForm } from '../references.js';

export type EntryMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What an entry's request.url names. */
export type EntryTarget =
  | { kind: 'type' }
  | { kind: 'instance'; id: string }
  | { kind: 'version'; id: string; version: string }
  | { kind: 'instance-history'; id: string }
  | { kind: 'search'; criteria: string };

export interface BundleEntryRequest {
  /** Position in the Bundle (what errors name). */
  index: number;
  method: EntryMethod;
  /** The url as sent. */
  url: string;
  type: string;
  target: EntryTarget;
  fullUrl?: string;
  resource?: Resource;
  ifNoneExist?: string;
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
}

const METHODS = new Set<string>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** The issue path of an entry (`Bundle.entry[3].request.url`). */
export const entryPath = (index: number, rest = ''): string => `Bundle.entry[${index}]${rest}`;

const entryError = (index: number, rest: string, msg: string): FhirError => badRequest(`Bundle.entry[${index}]: ${msg}`, entryPath(index, rest));

/** What a request url names, relative to the server's base. */
function parseTarget(index: number, method: EntryMethod, raw: string, baseUrl: string): { type: string; target: EntryTarget } {
  const url = localForm(raw, baseUrl).replace(/^\/+/, '');
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? undefined : url.slice(q + 1);
  const parts = path.split('/');
  const type = parts[0] ?? '';
  if (!resourceDefinition(type)) {
    throw new FhirError(404, [{ severity: 'error', code: 'not-supported', diagnostics: `Bundle.entry[${index}]: '${type.slice(0, 64)}' in request.url is not a resource type this server supports`, expression: [entryPath(index, '.request.url')] }]);
  }
  if (parts.length === 1) return { type, target: query !== undefined ? { kind: 'search', criteria: query } : { kind: 'type' } };
  if (query !== undefined && method !== 'GET') throw entryError(index, '.request.url', `a ${method} url is Type/id or Type?criteria, not '${raw.slice(0, 100)}'`);
  const id = parts[1]!;
  if (!ID.test(id)) throw entryError(index, '.request.url', `'${id.slice(0, 64)}' is not a resource id`);
  if (parts.length === 2) return { type, target: { kind: 'instance', id } };
  if (parts[2] === '_history' && parts.length === 3) return { type, target: { kind: 'instance-history', id } };
  if (parts[2] === '_history' && parts.length === 4 && ID.test(parts[3]!)) return { type, target: { kind: 'version', id, version: parts[3]! } };
  throw entryError(index, '.request.url', `'${raw.slice(0, 100)}' is not an interaction a Bundle entry can carry (read, vread, history, search, create, update, patch, delete)`);
}

/** The targets each method accepts. */
const ALLOWED: Record<EntryMethod, EntryTarget['kind'][]> = {
  GET: ['search', 'instance', 'version', 'instance-history', 'type'],
  POST: ['type'],
  PUT: ['instance', 'search'],
  PATCH: ['instance'],
  DELETE: ['instance', 'search'],
};

const optionalString = (index: number, name: string, v: unknown): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw entryError(index, `.request.${name}`, `request.${name} must be a non-empty string`);
  return v;
};

/** The Bundle's type and entries, each checked for what HMS can run; 400 (or 404 for an unknown type) naming the entry otherwise. */
export function bundleRequests(body: unknown, baseUrl: string, maxEntries: number): { type: 'batch' | 'transaction'; entries: BundleEntryRequest[] } {
  const bundle = body as { resourceType?: unknown; type?: unknown; entry?: unknown } | null;
  if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle) || bundle.resourceType !== 'Bundle') {
    throw badRequest('POST /fhir takes a Bundle of type batch or transaction', 'Bundle');
  }
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw badRequest(`A Bundle of type '${String(bundle.type).slice(0, 40)}' cannot be processed: POST a batch or a transaction (other Bundles are stored with POST /fhir/Bundle)`, 'Bundle.type');
  }
  const raw = bundle.entry ?? [];
  if (!Array.isArray(raw)) throw badRequest('Bundle.entry must be an array', 'Bundle.entry');
  if (raw.length > maxEntries) {
    throw new FhirError(413, [{ severity: 'error', code: 'too-costly', diagnostics: `The Bundle has ${raw.length} entries; this server takes at most ${maxEntries} per request (HMS_BUNDLE_MAX_ENTRIES): split it`, expression: ['Bundle.entry'] }]);
  }
  const entries = raw.map((e: unknown, index): BundleEntryRequest => {
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw entryError(index, '', 'an entry must be an object');
    const entry = e as { fullUrl?: unknown; resource?: unknown; request?: Record<string, unknown> };
    const request = entry.request;
    if (!request || typeof request !== 'object') throw entryError(index, '.request', 'every entry of a batch or transaction needs a request (method and url)');
    const method = request.method;
    if (typeof method !== 'string' || !METHODS.has(method)) throw entryError(index, '.request.method', `request.method must be one of ${[...METHODS].join(', ')}, not '${String(method).slice(0, 20)}'`);
    if (typeof request.url !== 'string' || !request.url) throw entryError(index, '.request.url', 'request.url is required');
    const m = method as EntryMethod;
    const { type, target } = parseTarget(index, m, request.url, baseUrl);
    if (!ALLOWED[m].includes(target.kind)) throw entryError(index, '.request.url', `${m} ${request.url.slice(0, 100)} is not an interaction (${m} takes ${ALLOWED[m].join(' or ')})`);
    const resource = entry.resource as Resource | undefined;
    const needsResource = m === 'POST' || m === 'PUT' || m === 'PATCH';
    if (needsResource && (!resource || typeof resource !== 'object' || Array.isArray(resource))) throw entryError(index, '.resource', `a ${m} entry needs a resource`);
    if ((m === 'POST' || m === 'PUT') && resource!.resourceType !== type) {
      throw entryError(index, '.resource.resourceType', `the resource is a ${String(resource!.resourceType).slice(0, 64)} but request.url names ${type}`);
    }
    if (entry.fullUrl !== undefined && (typeof entry.fullUrl !== 'string' || !entry.fullUrl)) throw entryError(index, '.fullUrl', 'fullUrl must be a non-empty string');
    return {
      index, method: m, url: request.url, type, target,
      fullUrl: entry.fullUrl as string | undefined,
      resource: needsResource ? resource : undefined,
      ifNoneExist: optionalString(index, 'ifNoneExist', request.ifNoneExist),
      ifMatch: optionalString(index, 'ifMatch', request.ifMatch),
      ifNoneMatch: optionalString(index, 'ifNoneMatch', request.ifNoneMatch),
      ifModifiedSince: optionalString(index, 'ifModifiedSince', request.ifModifiedSince),
    };
  });
  for (const e of entries) {
    if (e.ifNoneExist !== undefined && e.method !== 'POST') throw entryError(e.index, '.request.ifNoneExist', 'ifNoneExist applies to a POST (conditional create) only');
    if ((e.ifNoneMatch !== undefined || e.ifModifiedSince !== undefined) && e.method !== 'GET') throw entryError(e.index, '.request', 'ifNoneMatch and ifModifiedSince apply to a GET only');
    if (e.ifModifiedSince !== undefined && Number.isNaN(Date.parse(e.ifModifiedSince))) throw entryError(e.index, '.request.ifModifiedSince', `'${e.ifModifiedSince.slice(0, 40)}' is not an instant`);
  }
  if (bundle.type === 'transaction') checkTransaction(entries);
  return { type: bundle.type, entries };
}

/** A transaction may not name one fullUrl twice, nor write one resource in two entries (R4 http.html#trules). */
function checkTransaction(entries: BundleEntryRequest[]): void {
  const fullUrls = new Map<string, number>();
  const written = new Map<string, number>();
  for (const e of entries) {
    if (e.fullUrl !== undefined) {
      const first = fullUrls.get(e.fullUrl);
      if (first !== undefined) throw entryError(e.index, '.fullUrl', `fullUrl ${e.fullUrl.slice(0, 100)} is also the fullUrl of entry ${first}`);
      fullUrls.set(e.fullUrl, e.index);
    }
    if (e.method !== 'GET' && e.target.kind === 'instance') {
      const key = `${e.type}/${e.target.id}`;
      const first = written.get(key);
      if (first !== undefined) throw entryError(e.index, '.request.url', `${key} is also written by entry ${first}: a transaction changes a resource once`);
      written.set(key, e.index);
    }
  }
}
