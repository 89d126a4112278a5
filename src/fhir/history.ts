/**
 * Type-level and system-level history (GET /fhir/{Type}/_history, GET /fhir/_history): the kept
 * versions of every resource of a type, or of every type, newest first, keyset paged, narrowed by
 * the caller's access as instance history is, and audited per patient. docs/history.md,
 * https://hl7.org/fhir/R4/http.html#history
 */
import type { Knex } from 'knex';
import type { FhirContext } from './context.js';
import type { Rule } from '../auth/policy.js';
import { allResourceDefinitions, type ResourceDefinition } from './registry.js';
import type { Resource } from './types.js';
import { badRequest } from './outcome.js';
import type { Query } from './search/params.js';
import { historyBundleOf, historyEntry, type Bundle } from './bundle.js';
import { definitionOf, present, withMeta } from './resource-view.js';
import { patientOfResource, patientOfRow } from './reach.js';
import {
  listTypedVersions, readMany, readVersion, type HistoryCursor, type StoredResource, type TypedHistoryEntry,
} from '../db/resource-repository.js';
import { dateToSqlTimestamp, sqlToInstant } from '../mappers/datatypes.js';

/** Batches read to fill one page when narrowing leaves rows out (then the page is short, with a next link). */
const MAX_BATCHES = 5;

/** The parameters of a history request. */
export interface HistoryParams {
  count: number;
  since?: string;
  at?: { from: string; to: string };
  before?: HistoryCursor;
}

const one = (query: Query, k: string): string | undefined => { const v = query[k]; return Array.isArray(v) ? v[0] : v; };

/** The instant a FHIR instant or dateTime names, as SQL text (400 otherwise). */
function sqlInstant(name: string, v: string): string {
  const t = Date.parse(v);
  if (Number.isNaN(t) || !/^\d{4}/.test(v)) throw badRequest(`${name} must be an instant, not '${v.slice(0, 64)}'`);
  return dateToSqlTimestamp(new Date(t));
}

/**
 * The period a `_at` value names, by its precision: a year, a month, a day (UTC), or (a dateTime
 * to the second) that second. https://hl7.org/fhir/R4/http.html#history
 */
export function atPeriod(v: string): { from: string; to: string } {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(v);
  if (m) {
    const [, y, mo, d] = m;
    const from = new Date(Date.UTC(Number(y), mo ? Number(mo) - 1 : 0, d ? Number(d) : 1));
    const to = new Date(Date.UTC(Number(y) + (mo ? 0 : 1), mo ? Number(mo) - (d ? 1 : 0) : 0, d ? Number(d) + 1 : 1));
    if (Number.isNaN(from.getTime())) throw badRequest(`_at must be a date or an instant, not '${v}'`);
    return { from: dateToSqlTimestamp(from), to: dateToSqlTimestamp(to) };
  }
  const from = sqlInstant('_at', v);
  const t = new Date(from.replace(' ', 'T') + 'Z').getTime();
  return { from, to: dateToSqlTimestamp(new Date(t + 1000)) };
}

/** Encodes where a page ended as the opaque `_cursor` of the next page's link. */
export const encodeCursor = (c: HistoryCursor): string =>
  Buffer.from(JSON.stringify([c.recordedAt, c.resourceType, c.resourceId, c.versionId])).toString('base64url');

function decodeCursor(v: string): HistoryCursor {
  try {
    const [recordedAt, resourceType, resourceId, versionId] = JSON.parse(Buffer.from(v, 'base64url').toString('utf8')) as unknown[];
    if (typeof recordedAt === 'string' && typeof resourceType === 'string' && typeof resourceId === 'string' && Number.isInteger(versionId)) {
      return { recordedAt, resourceType, resourceId, versionId: versionId as number };
    }
  } catch { /* answered below */ }
  throw badRequest(`_cursor '${v.slice(0, 64)}' is not a cursor this server made (take the next link as it is)`);
}

/** Parses _count (default 20, at most the server's maximum), _since, _at and _cursor. */
export function historyParams(ctx: FhirContext, query: Query): HistoryParams {
  const c = one(query, '_count');
  if (c !== undefined && !/^\d{1,9}$/.test(c)) throw badRequest(`_count must be a non-negative integer, not '${c.slice(0, 64)}'`);
  const since = one(query, '_since');
  const at = one(query, '_at');
  const cursor = one(query, '_cursor');
  return {
    count: Math.min(c === undefined ? 20 : Number(c), ctx.maxCount),
    since: since ? sqlInstant('_since', since) : undefined,
    at: at ? atPeriod(at) : undefined,
    before: cursor ? decodeCursor(cursor) : undefined,
  };
}

/** A type whose history the caller may read, with its rule. */
interface Readable { def: ResourceDefinition; rule: Rule }

/** A version kept for the page, with the patient it was the data of. */
interface Shown { entry: TypedHistoryEntry; patientId?: string; resource?: Resource }

/** The patient a version was the data of: its own content's, or for a delete the version before's. */
async function patientOfVersion(db: Knex, def: ResourceDefinition, e: TypedHistoryEntry): Promise<string | undefined> {
  if (!def.patientColumn) return undefined;
  if (e.resource) return patientOfResource(def, e.resource, e.resourceId);
  if (def.patientColumn === 'id') return e.resourceId;
  const before = e.versionId > 1 ? await readVersion(db, def, e.resourceId, e.versionId - 1) : undefined;
  return before?.resource ? patientOfResource(def, before.resource, e.resourceId) : undefined;
}

/**
 * The versions of a batch the caller may know of, as they are shown: a version of a patient out
 * of the rule's reach is left out (as instance history does); a type that is no patient's data is
 * reached through its current rows (a removed one's versions are left out for a restricted rule).
 * The current version reads through the overlay, like a read.
 */
async function narrowBatch(ctx: FhirContext, readable: Map<string, Readable>, batch: TypedHistoryEntry[]): Promise<Shown[]> {
  const shown = new Map<TypedHistoryEntry, Shown>();
  for (const [type, { def, rule }] of readable) {
    const ofType = batch.filter((e) => e.resourceType === type);
    if (ofType.length === 0) continue;
    const ids = [...new Set(ofType.map((e) => e.resourceId))];
    const current = new Map((await readMany(ctx.db, def, ids)).map((s) => [String(s.row.id), s] as [string, StoredResource]));
    let reached: Set<string> | undefined;
    if (rule.reach !== 'all' && !def.patientColumn) {
      reached = new Set((await readMany(ctx.db, def, ids, (q) => ctx.access.narrow(ctx.db, q, def, rule))).map((s) => String(s.row.id)));
    }
    const patients: (string | undefined)[] = [];
    for (const e of ofType) patients.push(await patientOfVersion(ctx.db, def, e));
    const ok = rule.reach !== 'all' && def.patientColumn ? await ctx.access.reachable(ctx.db, rule, patients) : undefined;
    ofType.forEach((e, i) => {
      const patientId = patients[i];
      if (reached && !reached.has(e.resourceId)) return;
      if (ok && !ok.has(patientId ?? '')) return;
      const now = current.get(e.resourceId);
      const content = now && !now.deleted && now.versionId === e.versionId ? present(def, now) : e.resource;
      const resource = content ? ctx.access.view(def, rule, withMeta(content as Resource, e.versionId, sqlToInstant(e.recordedAt)!)) : undefined;
      shown.set(e, { entry: e, patientId: patientId ?? (now ? patientOfRow(def, now.row) : undefined), resource });
    });
  }
  return batch.flatMap((e) => { const s = shown.get(e); return s ? [s] : []; });
}

/** One page of the history of some types: the versions shown, and where the next page starts (if any). */
async function historyPage(ctx: FhirContext, readable: Map<string, Readable>, params: HistoryParams): Promise<{ page: Shown[]; next?: HistoryCursor }> {
  const page: Shown[] = [];
  let before = params.before;
  const types = [...readable.keys()];
  for (let i = 0; i < MAX_BATCHES && page.length < params.count; i++) {
    const want = params.count - page.length;
    const batch = await listTypedVersions(ctx.db, { types, limit: want + 1, since: params.since, at: params.at, before });
    const more = batch.length > want;
    const examined = batch.slice(0, want);
    const shown = await narrowBatch(ctx, readable, examined);
    page.push(...shown);
    const last = examined[examined.length - 1];
    if (!more || !last) return { page };
    before = { recordedAt: last.recordedAt, resourceType: last.resourceType, resourceId: last.resourceId, versionId: last.versionId };
  }
  return { page, next: before !== params.before ? before : undefined };
}

/**
 * One audit call for a page: an event per patient whose versions were returned, and one for the
 * versions of no patient (or, when nothing was returned, one event of count 0).
 */
export async function auditHistory(ctx: FhirContext, resourceType: string, shown: { resourceType: string; patientId?: string }[]): Promise<void> {
  const byPatient = new Map<string | undefined, { count: number; types: Set<string> }>();
  for (const s of shown) {
    const g = byPatient.get(s.patientId) ?? { count: 0, types: new Set<string>() };
    g.count++;
    g.types.add(s.resourceType);
    byPatient.set(s.patientId, g);
  }
  if (byPatient.size === 0) byPatient.set(undefined, { count: 0, types: new Set() });
  await ctx.audit([...byPatient].map(([patientId, g]) => ({
    action: 'history', resourceType, patientId, success: true,
    data: resourceType === 'Resource' ? { count: g.count, types: [...g.types].sort() } : { count: g.count },
  })));
}

async function historyOf(ctx: FhirContext, readable: Map<string, Readable>, auditType: string, query: Query, selfUrl: string): Promise<Bundle> {
  const params = historyParams(ctx, query);
  const { page, next } = params.count === 0 ? { page: [], next: undefined } : await historyPage(ctx, readable, params);
  let nextUrl: string | undefined;
  if (next) {
    const u = new URL(selfUrl);
    u.searchParams.set('_cursor', encodeCursor(next));
    nextUrl = u.toString();
  }
  await auditHistory(ctx, auditType, page.map((s) => ({ resourceType: s.entry.resourceType, patientId: s.patientId })));
  const entries = page.map((s) => historyEntry(ctx.baseUrl, s.entry.resourceType, s.entry.resourceId, { ...s.entry, resource: s.resource as Record<string, unknown> | undefined }, (r) => r as Resource));
  return historyBundleOf(entries, selfUrl, nextUrl);
}

/** Type history: GET /fhir/{Type}/_history (403 for a caller without history rights on the type). */
export async function typeHistory(ctx: FhirContext, type: string, query: Query, selfUrl: string): Promise<Bundle> {
  const def = definitionOf(type);
  const rule = ctx.access.require(def, 'history');
  const readable = new Map<string, Readable>(def.kept === false ? [] : [[def.type, { def, rule }]]);
  return historyOf(ctx, readable, def.type, query, selfUrl);
}

/** System history: GET /fhir/_history, over the types whose history the caller may read. */
export async function systemHistory(ctx: FhirContext, query: Query, selfUrl: string): Promise<Bundle> {
  const readable = new Map<string, Readable>();
  for (const def of allResourceDefinitions()) {
    if (def.kept === false || !def.interactions.includes('history-type')) continue;
    const rule = ctx.access.rule(def, 'history');
    if (rule) readable.set(def.type, { def, rule });
  }
  return historyOf(ctx, readable, 'Resource', query, selfUrl);
}
