/** Runs searches: filters, keyset paging, totals, and the searchset Bundle. https://hl7.org/fhir/R4/search.html */
import type { Knex } from 'knex';
import type { FhirContext } from '../context.js';
import { definitionOf, present } from '../resource-view.js';
import type { ResourceDefinition } from '../registry.js';
import { applyFilters, applyKeyset, decodeCursor, encodeCursor, orderKeys, type Cursor, type OrderKey } from './compile.js';
import { parseSearch, type Query, type SearchRequest } from './params.js';
import { currentQuery, storedFromRow, type Row } from '../../db/resource-repository.js';
import { shapeResource, type Bundle, type BundleEntry } from '../bundle.js';
import { badRequest, operationOutcome } from '../outcome.js';
import { dialectOf } from '../../db/dialect.js';
import { resolveIncludes, MAX_INCLUDED, type Found } from './includes.js';

export const DEFAULT_COUNT = 20;

function parse(ctx: FhirContext, def: ResourceDefinition, query: Query): SearchRequest {
  return parseSearch(def, query, { strict: ctx.strict, defaultCount: DEFAULT_COUNT, maxCount: ctx.maxCount });
}

/** Ids of (at most `limit`) resources matching a query: the conditional interactions' search. */
export async function matchingIds(ctx: FhirContext, def: ResourceDefinition, query: Query, limit: number): Promise<string[]> {
  const req = parse(ctx, def, query);
  if (req.params.length === 0) throw badRequest('Conditional criteria need at least one search parameter (e.g. identifier=system|value)');
  const q = ctx.db(`${def.table} as t`).select('t.id').limit(limit);
  applyFilters(ctx.db, q, def, req);
  return (await q).map((r: Row) => String(r.id));
}

async function countMatches(db: Knex, def: ResourceDefinition, req: SearchRequest): Promise<number> {
  const q = db(`${def.table} as t`).count({ n: '*' });
  applyFilters(db, q, def, req);
  const row = (await q)[0] as { n: number | string };
  return Number(row.n);
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
  const req = parse(ctx, def, query);
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'self', url: selfUrl }] };
  const entries: BundleEntry[] = [];
  const ids: string[] = [];
  const matches: Found[] = [];
  const includedIds: string[] = [];
  const warnings: string[] = req.ignored.map((i) => `${i.reason}: ignored`);

  if (req.summary === 'count') {
    bundle.total = await countMatches(ctx.db, def, req);
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
      applyFilters(ctx.db, q, def, req);
      applyKeyset(q, keys, cursor, dialect);
      q.limit(req.count + 1);
      const page = (await q) as Row[];
      more = page.length > req.count;
      pageKeys = page.slice(0, req.count);
      if (cursor?.direction === 'prev') pageKeys.reverse();
      const full = pageKeys.length ? ((await currentQuery(ctx.db, def).whereIn('t.id', pageKeys.map((r) => r.id as string))) as Row[]) : [];
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
      const resource = shapeResource(def, present(def, stored), req.summary, req.elements);
      ids.push(String(stored.row.id));
      matches.push({ def, stored });
      entries.push({ fullUrl: `${ctx.baseUrl}/${def.type}/${stored.row.id}`, resource, search: { mode: 'match' } });
    }
    if (matches.length && (req.includes.length || req.revincludes.length)) {
      const { included, truncated } = await resolveIncludes(ctx, matches, req.includes, req.revincludes);
      for (const f of included) {
        includedIds.push(`${f.def.type}/${String(f.stored.row.id)}`);
        const resource = shapeResource(f.def, present(f.def, f.stored), req.summary, req.elements);
        entries.push({ fullUrl: `${ctx.baseUrl}/${f.def.type}/${f.stored.row.id}`, resource, search: { mode: 'include' } });
      }
      if (truncated) warnings.push(`More than ${MAX_INCLUDED} resources matched _include/_revinclude: the first ${MAX_INCLUDED} are included`);
    }
    if (req.total === 'accurate' || req.total === 'estimate') bundle.total = await countMatches(ctx.db, def, req);
    else if (req.total === undefined && req.count > 0 && !cursor && !more) bundle.total = pageKeys.length;
  }

  if (warnings.length) {
    entries.push({
      resource: operationOutcome(warnings.map((diagnostics) => ({ severity: 'warning', code: 'not-supported', diagnostics }))),
      search: { mode: 'outcome' },
    });
  }
  if (entries.length) bundle.entry = entries;
  await ctx.audit({
    action: 'search', resourceType: def.type, success: true,
    data: {
      params: req.params.map((p) => p.def.name + (p.chain ? '.' + p.chain[0]!.param.def.name : '') + (p.modifier ? ':' + p.modifier : '')),
      returned: ids.length, ids, ...(includedIds.length ? { included: includedIds } : {}),
    },
  });
  return bundle;
}
