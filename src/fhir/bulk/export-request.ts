/**
 * A Bulk Data $export kick-off, checked: the level (system, Patient, Group), the types it covers
 * (_type, else every type the caller may search, or those of the patient compartment), _since,
 * _typeFilter and _outputFormat. Everything is refused here, before a job is recorded, so a job
 * that starts can only fail for the server's reasons.
 * https://hl7.org/fhir/uv/bulkdata/STU2/export.html docs/bulk-data.md
 */
import type { FhirContext } from '../context.js';
import { allResourceDefinitions, resourceDefinition, type ResourceDefinition } from '../registry.js';
import { FhirError, badRequest } from '../outcome.js';
import { parseSearch, type Query } from '../search/params.js';

export type ExportLevel = 'system' | 'patient' | 'group';

/** The NDJSON media types a client may ask for; every one is answered as application/fhir+ndjson. */
export const OUTPUT_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
export const NDJSON = 'application/fhir+ndjson';

/** What the job does, as stored with it (no patient data: types, an instant, search strings). */
export interface ExportParams {
  types: string[];
  since?: string;
  /** Per type, the _typeFilter queries (a resource is exported when it matches any of them). */
  typeFilter: Record<string, string[]>;
}

export interface ExportRequest {
  level: ExportLevel;
  groupId?: string;
  params: ExportParams;
  outputFormat: string;
}

const KNOWN = new Set(['_outputFormat', '_since', '_type', '_typeFilter', '_format', '_pretty']);
/** Bulk Data parameters HMS does not implement: refused, not ignored (the client would get less than it asked). */
const UNSUPPORTED = new Set(['includeAssociatedData', '_elements', 'patient', '_until', 'organizeOutputBy', 'allowPartialManifests']);
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The comma-separated values of a parameter, over all its occurrences. */
function listOf(query: Query, name: string): string[] | undefined {
  const raw = query[name];
  if (raw === undefined) return undefined;
  return (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
}

function single(query: Query, name: string): string | undefined {
  const raw = query[name];
  if (Array.isArray(raw)) {
    if (raw.length > 1) throw badRequest(`${name} may appear only once`);
    return raw[0];
  }
  return raw;
}

/** Whether a type can be exported at a level: searchable, and in the patient compartment below system level. */
function exportable(def: ResourceDefinition, level: ExportLevel): boolean {
  if (!def.interactions.includes('search-type')) return false;
  return level === 'system' || def.type === 'Patient' || !!def.patientColumn;
}

/** The types of an export: those asked for (each checked) or every one the caller may search. */
function exportTypes(ctx: FhirContext, level: ExportLevel, asked: string[] | undefined): string[] {
  if (!asked) {
    return allResourceDefinitions().filter((d) => exportable(d, level) && ctx.access.rule(d, 'search')).map((d) => d.type);
  }
  const out: string[] = [];
  for (const type of asked) {
    const def = resourceDefinition(type);
    if (!def) throw badRequest(`_type '${type.slice(0, 64)}' is not a resource type HMS serves`, '_type');
    if (!exportable(def, level)) throw badRequest(`_type '${type}' cannot be exported at ${level} level${level === 'system' ? '' : ' (it is not in the patient compartment)'}`, '_type');
    // 403 naming what is missing, as a search of the type would
    ctx.access.require(def, 'search');
    if (!out.includes(type)) out.push(type);
  }
  return out;
}

/** Checks one _typeFilter (`Type?param=value&...`): its type exported, its parameters that type's, filters only. */
function checkTypeFilter(ctx: FhirContext, raw: string, types: string[]): { type: string; query: string } {
  const q = raw.indexOf('?');
  const type = q < 0 ? raw : raw.slice(0, q);
  const search = q < 0 ? '' : raw.slice(q + 1);
  if (!types.includes(type)) throw badRequest(`_typeFilter '${raw.slice(0, 100)}' names ${type ? `type ${type.slice(0, 64)}, which this export does not include` : 'no type'} (Type?param=value)`, '_typeFilter');
  const query = parseQueryString(search);
  for (const k of Object.keys(query)) {
    if (/^_(count|sort|include|revinclude|summary|elements|total|cursor|contained|containedType)(:|$)/.test(k)) throw badRequest(`_typeFilter '${raw.slice(0, 100)}': ${k} is not a filter`, '_typeFilter');
  }
  const def = resourceDefinition(type)!;
  const req = parseSearch(def, query, { strict: true, defaultCount: 1, maxCount: 1, limits: ctx.searchLimits });
  if (req.params.length === 0) throw badRequest(`_typeFilter '${raw.slice(0, 100)}' has no search parameter`, '_typeFilter');
  ctx.access.checkSearchable(def, req.params.map((p) => p.def.name));
  return { type, query: search };
}

/** A query string as the search parser takes it (repeated names become lists). */
export function parseQueryString(search: string): Query {
  const query: Query = {};
  for (const [k, v] of new URLSearchParams(search)) {
    const prev = query[k];
    query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  return query;
}

/** Reads and checks a kick-off request's parameters. */
export function exportRequest(ctx: FhirContext, level: ExportLevel, query: Query, groupId?: string): ExportRequest {
  for (const k of Object.keys(query)) {
    if (UNSUPPORTED.has(k)) throw new FhirError(400, `$export parameter ${k} is not supported by HMS (supported: _outputFormat, _since, _type, _typeFilter)`, 'not-supported');
    if (!KNOWN.has(k)) throw badRequest(`$export does not know the parameter '${k.slice(0, 64)}' (supported: _outputFormat, _since, _type, _typeFilter)`);
  }
  const outputFormat = single(query, '_outputFormat') ?? NDJSON;
  if (!OUTPUT_FORMATS.includes(outputFormat)) throw badRequest(`_outputFormat '${outputFormat.slice(0, 64)}' is not supported (${OUTPUT_FORMATS.join(', ')})`, '_outputFormat');
  const since = single(query, '_since');
  if (since !== undefined && (!INSTANT.test(since) || Number.isNaN(Date.parse(since)))) {
    throw badRequest(`_since must be an instant with a time zone (e.g. 2026-01-01T00:00:00Z), not '${since.slice(0, 64)}'`, '_since');
  }
  const types = exportTypes(ctx, level, listOf(query, '_type'));
  if (types.length === 0) throw new FhirError(403, 'You may not search any type this export would cover', 'forbidden');
  const typeFilter: Record<string, string[]> = {};
  // comma-delimited queries (a comma inside a query's values stays: a new query starts with `Type?`)
  const filters = (query._typeFilter === undefined ? [] : Array.isArray(query._typeFilter) ? query._typeFilter : [query._typeFilter])
    .flatMap((v) => v.split(/,(?=[A-Z][A-Za-z]*\?)/)).filter(Boolean);
  for (const raw of filters) {
    const { type, query: q } = checkTypeFilter(ctx, raw, types);
    (typeFilter[type] ??= []).push(q);
  }
  return { level, groupId, params: { types, since: since === undefined ? undefined : new Date(since).toISOString(), typeFilter }, outputFormat };
}
