/**
 * _include and _revinclude (with :iterate, one level): the resources the matches refer to, and
 * those that refer to the matches, through the registry's reference search parameters.
 * https://hl7.org/fhir/R4/search.html#include
 */
import type { FhirContext } from '../context.js';
import { resourceDefinition, searchParam, type ResourceDefinition, type SearchParamDef } from '../registry.js';
import { applyFilters } from './compile.js';
import type { IncludeSpec, ParsedParam } from './params.js';
import { indexedReferences, readMany, type Row, type StoredResource } from '../../db/resource-repository.js';
import type { RowScope } from '../access.js';
import { cancellable } from '../../db/cancellable.js';

/** A resource found by a search, as stored. */
export interface Found { def: ResourceDefinition; stored: StoredResource }

/** Included resources per search, at most (a warning says when more were left out). */
export const MAX_INCLUDED = 1000;

const keyOf = (f: Found): string => `${f.def.type}/${String(f.stored.row.id)}`;

/** The stored types a reference parameter may point at (narrowed by a :Type given in the include). */
export function storedTargets(p: SearchParamDef, targetType?: string): string[] {
  return (p.targets ?? []).filter((t) => resourceDefinition(t) && (!targetType || t === targetType));
}

/** "Type/id" references that resources of one type make through a parameter. */
async function referencesOf(ctx: FhirContext, def: ResourceDefinition, p: SearchParamDef, from: Found[], targetType?: string): Promise<string[]> {
  const targets = storedTargets(p, targetType);
  if (targets.length === 0) return [];
  if (p.source === 'column') {
    if (p.typeColumn) {
      const col = p.typeColumn;
      return from.filter((f) => f.stored.row[p.column] !== null && f.stored.row[p.column] !== undefined && targets.includes(String(f.stored.row[col])))
        .map((f) => `${String(f.stored.row[col])}/${String(f.stored.row[p.column])}`);
    }
    const type = targets[0]!; // a column points at one table, hence one stored type
    if (targetType && type !== targetType) return [];
    return from.map((f) => f.stored.row[p.column]).filter((v) => v !== null && v !== undefined).map((v) => `${type}/${String(v)}`);
  }
  const refs = await indexedReferences(ctx.db, def.type, p.name, from.map((f) => String(f.stored.row.id)));
  return refs.map((r) => r.code).filter((code) => targets.includes(code.split('/')[0]!));
}

/** The resources referred to, of the types the caller may search and within its reach. */
async function readRefs(ctx: FhirContext, refs: string[], limit: number): Promise<Found[]> {
  const byType = new Map<string, Set<string>>();
  for (const ref of refs.slice(0, limit)) {
    const [type, id] = ref.split('/') as [string, string];
    if (!byType.has(type)) byType.set(type, new Set());
    byType.get(type)!.add(id);
  }
  const out: Found[] = [];
  for (const [type, ids] of byType) {
    const def = resourceDefinition(type);
    const rule = def ? ctx.access.rule(def, 'search') : undefined;
    if (!def || !rule) continue;
    for (const stored of await readMany(ctx.db, def, [...ids], (q) => ctx.access.narrow(ctx.db, q, def, rule))) if (!stored.deleted) out.push({ def, stored });
  }
  return out;
}

/** Resources of `spec.source` (within the scope) whose parameter refers to any of `to`. */
async function referring(ctx: FhirContext, spec: IncludeSpec, to: Found[], limit: number, scope: RowScope): Promise<Found[]> {
  const source = resourceDefinition(spec.source)!;
  const p = searchParam(source, spec.param)!;
  const targets = storedTargets(p, spec.targetType);
  const refs = to.filter((f) => targets.includes(f.def.type)).map(keyOf);
  if (refs.length === 0) return [];
  const parsed: ParsedParam = { def: p, strings: refs, dates: [], tokens: [], numbers: [] };
  const q = ctx.db(`${source.table} as t`).select('t.id').orderBy('t.id').limit(limit);
  applyFilters(ctx.db, q, source, { params: [parsed] }, scope);
  const ids = ((await cancellable(ctx.db, q, ctx.signal)) as Row[]).map((r) => String(r.id));
  return (await readMany(ctx.db, source, ids, (rq) => scope.narrow(ctx.db, rq, source, 't'))).filter((s) => !s.deleted).map((stored) => ({ def: source, stored }));
}

/**
 * Resolves the includes of a page of matches: the resources to add with search mode "include"
 * (without the matches themselves), and whether the cap cut the list short.
 */
export async function resolveIncludes(ctx: FhirContext, matches: Found[], includes: IncludeSpec[], revincludes: IncludeSpec[], scope: RowScope): Promise<{ included: Found[]; truncated: boolean }> {
  const seen = new Set(matches.map(keyOf));
  const included: Found[] = [];
  let truncated = false;
  const add = (found: Found[]): Found[] => {
    const fresh: Found[] = [];
    for (const f of found) {
      const k = keyOf(f);
      if (seen.has(k)) continue;
      if (included.length >= MAX_INCLUDED) { truncated = true; break; }
      seen.add(k);
      included.push(f);
      fresh.push(f);
    }
    return fresh;
  };
  const round = async (pool: Found[], iterateOnly: boolean): Promise<Found[]> => {
    const added: Found[] = [];
    // every include's references first, then one read per target type
    const refs = new Set<string>();
    for (const spec of includes) {
      if (iterateOnly && !spec.iterate) continue;
      const from = pool.filter((f) => f.def.type === spec.source);
      if (from.length === 0) continue;
      const def = from[0]!.def;
      for (const r of await referencesOf(ctx, def, searchParam(def, spec.param)!, from, spec.targetType)) if (!seen.has(r)) refs.add(r);
    }
    if (refs.size) added.push(...add(await readRefs(ctx, [...refs], MAX_INCLUDED + 1 - included.length)));
    for (const spec of revincludes) {
      if (iterateOnly && !spec.iterate) continue;
      added.push(...add(await referring(ctx, spec, pool, MAX_INCLUDED + 1, scope)));
    }
    return added;
  };
  const first = await round(matches, false);
  // :iterate, one level: the iterating specs run once more over what the first round added
  if (first.length && [...includes, ...revincludes].some((s) => s.iterate)) await round(first, true);
  return { included, truncated };
}
