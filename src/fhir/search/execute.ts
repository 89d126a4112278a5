/** Runs searches: filters, keyset paging, totals, and the searchset Bundle. https://hl7.org/fhir/R4/search.html */
import type { Knex } from 'knex';
import type { FhirContext } from '../context.js';
import { definitionOf, present } from '../resource-view.js';
import { resourceDefinition, searchParam, type ResourceDefinition } from '../registry.js';
import { applyFilters, applyKeyset, decodeCursor, encodeCursor, orderKeys, type Cursor, type OrderKey } from './compile.js';
import { parseSearch, type Query, type SearchRequest } from './params.js';
import { currentQuery, storedFromRow, type Row } from '../../db/resource-repository.js';
import { shapeResource, type Bundle, type BundleEntry } from '../bundle.js';
import { badRequest, operationOutcome } from '../outcome.js';
import { dialectOf } from '../../db/dialect.js';
import { cancellable } from '../../db/cancellable.js';
import { resolveIncludes, storedTargets, MAX_INCLUDED, type Found } from './includes.js';
import type { RowScope } from '../access.js';
import type { AuditEvent } from '../context.js';
import { patientOfRow } from '../reach.js';

export const DEFAULT_COUNT = 20;

function parse(ctx: FhirContext, def: ResourceDefinition, query: Query): SearchRequest {
  return parseSearch(def, query, { strict: ctx.strict, defaultCount: DEFAULT_COUNT, maxCount: ctx.maxCount, limits: ctx.searchLimits });
}

/** The stored types an _include may reach. */
function includeTargets(spec: { source: string; param: string; targetType?: string }): string[] {
  const source = resourceDefinition(spec.source);
  const p = source ? searchParam(source, spec.param) : undefined;
  return p ? storedTargets(p, spec.targetType) : [];
}

/** Ids of (at most `limit`) resources matching a query within a scope: the conditional interactions' search. */
export async function matchingIds(ctx: FhirContext, def: ResourceDefinition, query: Query, limit: number, scope: RowScope): Promise<string[]> {
  const req = parse(ctx, def, query);
  if (req.params.length === 0) throw badRequest('Conditional criteria need at least one search parameter (e.g. identifier=system|value)');
  const q = ctx.db(`${def.table} as t`).select('t.id').limit(limit);
  applyFilters(ctx.db, q, def, req, scope);
  return ((await cancellable(ctx.db, q, ctx.signal)) as Row[]).map((r: Row) => String(r.id));
}

async function countMatches(db: Knex, def: ResourceDefinition, req: SearchRequest, scope: RowScope, signal?: AbortSignal): Promise<number> {
  const q = db(`${def.table} as t`).count({ n: '*' });
  applyFilters(db, q, def, req, scope);
  const row = ((await cancellable(db, q, signal)) as Row[])[0] as { n: number | string };
  return Number(row.n);
}

/**
 * The audit events of a search-like answer: one per patient whose data it returned (with the ids
 * returned of that patient), plus one for what belongs to no patient (or for an empty answer).
 * With an `owner` (the patient of $everything), what belongs to no patient goes with the owner's
 * row, and the owner has a row even when nothing was returned.
 */
export function perPatientEvents(action: string, resourceType: string, found: Found[], data: Record<string, unknown>, resourceId?: string, owner?: string): AuditEvent[] {
  const byPatient = new Map<string | undefined, string[]>();
  if (owner) byPatient.set(owner, []);
  for (const f of found) {
    const patient = patientOfRow(f.def, f.stored.row) ?? owner;
    const list = byPatient.get(patient) ?? [];
    list.push(`${f.def.type}/${String(f.stored.row.id)}`);
    byPatient.set(patient, list);
  }
  if (byPatient.size === 0) byPatient.set(undefined, []);
  return [...byPatient].map(([patientId, resources]) => ({
    action, resourceType, resourceId, patientId, success: true, data: { ...data, returned: resources.length, resources },
  }));
}

function pageUrl(selfUrl: string, cursor?: Cursor): string {
  const u = new URL(selfUrl);
  u.searchParams.delete('_cursor');
  if (cursor) u.searchParams.set('_cursor', encodeCursor(cursor));
  return u.toString();
}

const cursorOf = (row: Row, keys: OrderKey[], direction: Cursor['direction']): Cursor => ({
  direction,
  values: keys.map((_, i) => row[`_k${i}`]),
});

/** Executes a search on a type and returns its searchset Bundle. */
export async function searchBundle(ctx: FhirContext, type: string, query: Query, selfUrl: string): Promise<Bundle> {
  const def = definitionOf(type);
  const rule = ctx.access.require(def, 'search');
  const scope = ctx.access.scope('search');
  const req = parse(ctx, def, query);
  ctx.access.checkSearchable(def, [...req.params.map((p) => p.def.name), ...req.sort.map((s) => s.name)]);
  for (const p of req.params) for (const c of p.chain ?? []) ctx.access.checkSearchable(c.target, [c.param.def.name]);
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'self', url: selfUrl }] };
  const entries: BundleEntry[] = [];
  const matches: Found[] = [];
  const included: Found[] = [];
  const warnings: string[] = req.ignored.map((i) => `${i.reason}: ignored`);
  // includes of types the caller may not search are left out (said in the outcome), never an error
  const permitted = (spec: { source: string; param: string; targetType?: string }, rev: boolean): boolean => {
    const types = rev ? [spec.source] : includeTargets(spec);
    const denied = types.filter((t) => { const d = resourceDefinition(t); return d && !ctx.access.rule(d, 'search'); });
    if (denied.length) warnings.push(`${rev ? '_revinclude' : '_include'}=${spec.source}:${spec.param}${spec.targetType ? ':' + spec.targetType : ''}: ${denied.join(', ')} not permitted for this caller, left out`);
    return denied.length === 0 || (!rev && denied.length < types.length);
  };
  req.includes = req.includes.filter((s) => permitted(s, false));
  req.revincludes = req.revincludes.filter((s) => permitted(s, true));

  if (req.summary === 'count') {
    bundle.total = await countMatches(ctx.db, def, req, scope, ctx.signal);
  } else {
    const dialect = dialectOf(ctx.db);
    const keys = orderKeys(req, dialect);
    const cursor = req.cursor ? decodeCursor(req.cursor, keys.length) : undefined;
    let rows: Row[] = [];
    let pageKeys: Row[] = [];
    let more = false;
    if (req.count > 0) {
      // Two steps: the page's ids from the table and its index alone, then the page's rows with
      // their kept versions. Joining the (large) kept versions before the sort would read them for
      // every match instead of for the page.
      const q = ctx.db(`${def.table} as t`).select('t.id');
      keys.forEach((k, i) => q.select(ctx.db.raw(`${k.expr} as ??`, [`_k${i}`])));
      applyFilters(ctx.db, q, def, req, scope);
      applyKeyset(q, keys, cursor, dialect);
      q.limit(req.count + 1);
      const page = (await cancellable(ctx.db, q, ctx.signal)) as Row[];
      more = page.length > req.count;
      pageKeys = page.slice(0, req.count);
      if (cursor?.direction === 'prev') pageKeys.reverse();
      // narrowed again: a row moved out of reach between the two steps is not returned
      const rowsQuery = currentQuery(ctx.db, def).whereIn('t.id', pageKeys.map((r) => r.id as string));
      scope.narrow(ctx.db, rowsQuery, def, 't');
      const full = pageKeys.length ? ((await rowsQuery) as Row[]) : [];
      const byId = new Map(full.map((r) => [String(r.id), r]));
      rows = pageKeys.map((k) => byId.get(String(k.id))).filter((r): r is Row => r !== undefined);
    }
    const backwards = cursor?.direction === 'prev';
    const hasNext = backwards ? pageKeys.length > 0 : more;
    const hasPrev = backwards ? more : cursor !== undefined;
    if (hasNext && pageKeys.length) bundle.link!.push({ relation: 'next', url: pageUrl(selfUrl, cursorOf(pageKeys[pageKeys.length - 1]!, keys, 'next')) });
    if (hasPrev && pageKeys.length) bundle.link!.push({ relation: 'previous', url: pageUrl(selfUrl, cursorOf(pageKeys[0]!, keys, 'prev')) });

    for (const raw of rows) {
      const stored = storedFromRow(def, raw);
      if (stored.deleted) continue; // deleted between the two steps
      // the view first, so _summary and _elements cannot reach what the view hides
      const resource = shapeResource(def, ctx.access.view(def, rule, present(def, stored)), req.summary, req.elements);
      matches.push({ def, stored });
      entries.push({ fullUrl: `${ctx.baseUrl}/${def.type}/${stored.row.id}`, resource, search: { mode: 'match' } });
    }
    if (matches.length && (req.includes.length || req.revincludes.length)) {
      const resolved = await resolveIncludes(ctx, matches, req.includes, req.revincludes, scope);
      for (const f of resolved.included) {
        included.push(f);
        const resource = shapeResource(f.def, ctx.access.view(f.def, ctx.access.require(f.def, 'search'), present(f.def, f.stored)), req.summary, req.elements);
        entries.push({ fullUrl: `${ctx.baseUrl}/${f.def.type}/${f.stored.row.id}`, resource, search: { mode: 'include' } });
      }
      if (resolved.truncated) warnings.push(`More than ${MAX_INCLUDED} resources matched _include/_revinclude: the first ${MAX_INCLUDED} are included`);
    }
    if (req.total === 'accurate' || req.total === 'estimate') bundle.total = await countMatches(ctx.db, def, req, scope, ctx.signal);
    else if (req.total === undefined && req.count > 0 && !cursor && !more) bundle.total = pageKeys.length;
  }

  if (warnings.length) {
    entries.push({
      resource: operationOutcome(warnings.map((diagnostics) => ({ severity: 'warning', code: 'not-supported', diagnostics }))),
      search: { mode: 'outcome' },
    });
  }
  if (entries.length) bundle.entry = entries;
  const params = req.params.map((p) => p.def.name + (p.chain ? '.' + p.chain[0]!.param.def.name : '') + (p.modifier ? ':' + p.modifier : ''));
  await ctx.audit(perPatientEvents('search', def.type, [...matches, ...included], { params, ...(req.summary === 'count' ? { total: bundle.total } : {}) }));
  return bundle;
}
