/**
 * Patient/{id}/$everything: the patient, every resource in its compartment (each type whose
 * definition names compartment parameters), and the practitioners they refer to.
 * Paged with _count and a cursor over (type, id); _since and _type narrow it.
 * https://hl7.org/fhir/R4/patient-operation-everything.html
 */
import type { FhirContext } from '../context.js';
import { allResourceDefinitions, searchParam, type ResourceDefinition } from '../registry.js';
import { applyFilters } from '../search/compile.js';
import { parseDateParam } from '../search/dates.js';
import { one, type ParsedParam, type Query } from '../search/params.js';
import { resolveIncludes, type Found } from '../search/includes.js';
import { definitionOf, present } from '../resource-view.js';
import { badRequest, gone } from '../outcome.js';
import { currentQuery, storedFromRow, type Row, type StoredResource } from '../../db/resource-repository.js';
import { sqlToInstant } from '../../mappers/datatypes.js';
import { dialectOf } from '../../db/dialect.js';
import { cancellable } from '../../db/cancellable.js';
import { v7 as uuidv7 } from 'uuid';
import type { Bundle, BundleEntry } from '../bundle.js';
import { DEFAULT_COUNT, perPatientEvents } from '../search/execute.js';
import type { RowScope } from '../access.js';
import { locate, missing } from '../reach.js';

/** Where a page starts: the type (index), the last id seen of it, and the id bound of append-only types. */
interface Position { type: number; after?: string; until: string }

const encode = (p: Position): string => Buffer.from(JSON.stringify([p.type, p.after ?? null, p.until])).toString('base64url');
function decode(raw: string): Position {
  try {
    const [type, after, until] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [unknown, unknown, unknown];
    if (!Number.isInteger(type) || (after !== null && typeof after !== 'string') || typeof until !== 'string') throw new Error('shape');
    return { type: type as number, after: (after as string | null) ?? undefined, until };
  } catch {
    throw badRequest('Invalid _cursor for $everything: start again from the first page');
  }
}

const KNOWN = new Set(['_count', '_since', '_type', '_cursor', '_format', '_pretty']);

/** The types asked for (_type, trimmed), or undefined for all. */
function wantedTypes(query: Query): string[] | undefined {
  const wanted = one(query, '_type');
  return wanted === undefined ? undefined : wanted.split(',').map((s) => s.trim()).filter(Boolean);
}

/** The types in the patient compartment that the caller may search, in registry order, narrowed by _type. */
function compartmentTypes(ctx: FhirContext, names: string[] | undefined): ResourceDefinition[] {
  const all = allResourceDefinitions().filter((d) => d.compartment?.length && d.interactions.includes('search-type') && ctx.access.rule(d, 'search'));
  if (!names) return all;
  for (const n of names) if (n !== 'Patient' && !all.some((d) => d.type === n)) throw badRequest(`_type '${n}' is not a type in the Patient compartment HMS serves`);
  return all.filter((d) => names.includes(d.type));
}

/**
 * One compartment type's resources of the patient, after a given id, in id order. One query per
 * compartment parameter, merged here: an OR of a column and an index condition would make the
 * database scan the whole table instead of using either index.
 */
async function compartmentRows(ctx: FhirContext, def: ResourceDefinition, patientId: string, since: ParsedParam | undefined, page: { after?: string; until: string }, limit: number, scope: RowScope): Promise<StoredResource[]> {
  const byId = new Map<string, StoredResource>();
  for (const name of def.compartment ?? []) {
    const p = searchParam(def, name)!;
    const q = currentQuery(ctx.db, def).orderBy('t.id').limit(limit);
    if (p.source === 'index') {
      // the index rows of this patient first (idx_lookup), then their resources
      applyFilters(ctx.db, q, def, { params: [] }, scope);
      q.whereIn('t.id', ctx.db('search_token').select('resource_id').where({ resource_type: def.type, param: p.name, code: `Patient/${patientId}` }));
    } else {
      applyFilters(ctx.db, q, def, { params: [{ def: p, targetType: 'Patient', strings: [`Patient/${patientId}`], dates: [], tokens: [], numbers: [] }] }, scope);
    }
    if (since) applyFilters(ctx.db, q, def, { params: [since] }, scope);
    if (page.after !== undefined) q.where('t.id', '>', page.after);
    if (def.appendOnly) q.where('t.id', '<', page.until);
    for (const r of (await cancellable(ctx.db, q, ctx.signal)) as Row[]) byId.set(String(r.id), storedFromRow(def, r));
  }
  // the first `limit` of the union, in the order the database compares ids (MySQL's collation
  // ignores case; SQLite compares bytes)
  const mysql = dialectOf(ctx.db) === 'mysql';
  const order = (a: string, b: string): number => {
    const [x, y] = mysql ? [a.toLowerCase(), b.toLowerCase()] : [a, b];
    return x < y ? -1 : x > y ? 1 : 0;
  };
  return [...byId.keys()].sort(order).slice(0, limit).map((id) => byId.get(id)!);
}

export async function patientEverything(ctx: FhirContext, patientId: string, query: Query, selfUrl: string): Promise<Bundle> {
  const patientDef = definitionOf('Patient');
  const patientRule = ctx.access.require(patientDef, 'read');
  const scope = ctx.access.scope('search');
  const patient = await locate(ctx, patientDef, patientRule, patientId);
  if (!patient) throw await missing(ctx, patientDef, patientRule, patientId);
  if (patient.deleted) throw gone(`Patient/${patientId} has been deleted`);

  for (const k of Object.keys(query)) if (!KNOWN.has(k)) throw badRequest(`$everything does not support the parameter '${k}' (supported: _count, _since, _type)`);
  const countRaw = one(query, '_count');
  if (countRaw !== undefined && !/^\d+$/.test(countRaw)) throw badRequest(`_count must be a non-negative integer, not '${countRaw}'`);
  // a page holds at least one resource, else paging could not advance
  const count = Math.max(1, Math.min(countRaw === undefined ? DEFAULT_COUNT * 5 : Number(countRaw), ctx.maxCount));
  const sinceRaw = one(query, '_since');
  // _since is an instant (a date or dateTime is taken too), not a search value: no prefix of its own
  if (sinceRaw !== undefined && !/^\d{4}(-\d{2}(-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?)?)?$/.test(sinceRaw)) throw badRequest(`_since must be an instant, not '${sinceRaw.slice(0, 64)}'`);
  const sinceRange = sinceRaw === undefined ? undefined : parseDateParam(`ge${sinceRaw}`, '_since');
  const names = wantedTypes(query);
  const types = compartmentTypes(ctx, names);
  const cursorRaw = one(query, '_cursor');
  const start: Position = cursorRaw ? decode(cursorRaw) : { type: -1, until: uuidv7() };
  const patientChanged = !sinceRange || sqlToInstant(patient.lastUpdated)! >= sinceRange.start.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const wantPatient = (!names || names.includes('Patient')) && patientChanged;

  const page: Found[] = [];
  if (start.type === -1 && wantPatient) page.push({ def: patientDef, stored: patient });
  let next: Position | undefined;
  for (let i = Math.max(start.type, 0); i < types.length; i++) {
    const room = count - page.length;
    if (room <= 0) { next = { type: i, until: start.until }; break; }
    const def = types[i]!;
    const since = sinceRange ? { def: searchParam(def, '_lastUpdated')!, strings: [], dates: [sinceRange], tokens: [], numbers: [] } as ParsedParam : undefined;
    const rows = await compartmentRows(ctx, def, patientId, since, { after: i === start.type ? start.after : undefined, until: start.until }, room + 1, scope);
    const take = rows.slice(0, room);
    for (const stored of take) page.push({ def, stored });
    if (rows.length > room) { next = { type: i, after: String(take[take.length - 1]!.row.id), until: start.until }; break; }
  }

  // the practitioners the page refers to
  const refSpecs = [...new Set(page.map((f) => f.def))].flatMap((def) => def.searchParams
    .filter((p) => p.type === 'reference' && (p.targets ?? []).includes('Practitioner'))
    .map((p) => ({ source: def.type, param: p.name, targetType: 'Practitioner', iterate: false })));
  const { included } = await resolveIncludes(ctx, page, refSpecs, [], scope);

  const entry = (f: Found, mode: 'match' | 'include'): BundleEntry => ({
    fullUrl: `${ctx.baseUrl}/${f.def.type}/${String(f.stored.row.id)}`,
    resource: ctx.access.view(f.def, f.def === patientDef ? patientRule : ctx.access.require(f.def, 'search'), present(f.def, f.stored)),
    search: { mode },
  });
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'self', url: selfUrl }] };
  if (next) {
    const u = new URL(selfUrl);
    u.searchParams.set('_cursor', encode(next));
    bundle.link!.push({ relation: 'next', url: u.toString() });
  }
  if (!cursorRaw && !next) bundle.total = page.length;
  const entries = [...page.map((f) => entry(f, 'match')), ...included.map((f) => entry(f, 'include'))];
  if (entries.length) bundle.entry = entries;
  // one row for the patient (what belongs to no patient, the practitioners, goes with it), one for any other
  // patient whose data came along; the patient's row even when _type or _since left everything out
  await ctx.audit(perPatientEvents('everything', 'Patient', [...page, ...included], {}, patientId, patientId));
  return bundle;
}
