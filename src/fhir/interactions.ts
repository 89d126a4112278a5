/**
 * FHIR RESTful interactions over the registry, independent of HTTP: each returns the resource
 * or Bundle to answer with, or throws a FhirError. https://hl7.org/fhir/R4/http.html
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { FhirError, badRequest, conflict, gone, notFound, preconditionFailed, unprocessable } from './outcome.js';
import { allResourceDefinitions, type ResourceDefinition } from './registry.js';
import type { Resource } from './types.js';
import { validateResource } from './validate.js';
import { indexEntries } from './search/index-entries.js';
import {
  deleteResource as deleteRow, existingIds, insertResource, latestVersion, listVersions, lockConditional, nowSeconds, readCurrent,
  readVersion, updateResource as updateRow, whereOfType, type StoredResource,
} from '../db/resource-repository.js';
import { dateToSqlTimestamp, sqlToInstant } from '../mappers/datatypes.js';
import { matchingIds } from './search/execute.js';
import { inTransaction } from '../db/transactions.js';
import { definitionOf, present, withMeta } from './resource-view.js';
import type { FhirContext } from './context.js';

export type { AuditEvent, FhirContext } from './context.js';
import type { Bundle } from './bundle.js';
import { historyBundle } from './bundle.js';
import type { Query } from './search/params.js';

export interface WriteResult {
  status: 200 | 201;
  resource: Resource;
  created: boolean;
}

const ID_RE = /^[A-Za-z0-9\-.]{1,36}$/;

function checkId(id: string): void {
  if (/^[_$]/.test(id)) throw new FhirError(404, `'${id}' is not supported on this server (type-level operations and history are not implemented)`, 'not-supported');
  if (!ID_RE.test(id)) throw badRequest(`Invalid resource id '${id}': 1-36 characters of A-Z a-z 0-9 - .`);
}

/** Validates a client resource and derives what the write path stores. */
async function prepare(trx: Knex.Transaction, def: ResourceDefinition, body: unknown, id: string, ctx: { userId?: string; now: string; current?: StoredResource }) {
  validateResource(def.type, body);
  const incoming = structuredClone(body) as Resource;
  def.check?.(incoming);
  incoming.id = id;
  const columns = def.toRow(incoming, { id, userId: ctx.userId, now: ctx.now });
  for (const ref of def.references) {
    const target = columns[ref.column];
    if (target === null || target === undefined) continue;
    const found = await existingIds(trx, ref.table, [String(target)], ref);
    if (!found.has(String(target))) {
      throw unprocessable(`${ref.expression} refers to ${ref.targetType}/${String(target)}, which does not exist or is not a ${ref.targetType}`, ref.expression, 'not-found');
    }
  }
  await def.checkStored?.(incoming, { trx, id, userId: ctx.userId, columns, current: ctx.current });
  return { incoming, columns, index: indexEntries(def, incoming) };
}

function conditionalKey(type: string, criteria: string): string {
  const params = new URLSearchParams(criteria);
  params.sort();
  return createHash('sha256').update(`${type}?${params.toString()}`).digest('hex');
}

/** create, with If-None-Exist. https://hl7.org/fhir/R4/http.html#ccreate */
export async function createResource(ctx: FhirContext, type: string, body: unknown, ifNoneExist?: string): Promise<WriteResult> {
  const def = definitionOf(type);
  const result = await inTransaction(ctx.db, async (trx) => {
    const now = nowSeconds();
    if (ifNoneExist !== undefined) {
      const criteria = ifNoneExist.replace(/^.*\?/, '');
      if (!criteria) throw badRequest('If-None-Exist needs search criteria, e.g. identifier=http://example.org|123');
      await lockConditional(trx, conditionalKey(type, criteria), now.sql);
      const params = new URLSearchParams(criteria);
      const query: Query = Object.fromEntries([...new Set(params.keys())].map((k) => [k, params.getAll(k)]));
      const matches = await matchingIds({ ...ctx, db: trx, strict: true }, def, query, 2);
      if (matches.length > 1) throw preconditionFailed(`If-None-Exist criteria '${criteria}' match more than one ${type}`);
      if (matches.length === 1) {
        const existing = (await readCurrent(trx, def, matches[0]!))!;
        await ctx.audit({ action: 'create-conditional-match', resourceType: type, resourceId: existing.row.id as string, success: true }, trx);
        return { status: 200 as const, resource: present(def, existing), created: false };
      }
    }
    const id = uuidv7();
    const { incoming, columns, index } = await prepare(trx, def, body, id, { userId: ctx.userId, now: now.sql });
    const resource = withMeta(incoming, 1, sqlToInstant(now.sql)!);
    await insertResource(trx, def, { id, columns, resource, index, method: 'POST', userId: ctx.userId }, now.sql);
    await ctx.audit({ action: 'create', resourceType: type, resourceId: id, success: true }, trx);
    return { status: 201 as const, resource, created: true };
  });
  return result;
}

/** The error for an id without a row: 410 when its history ends in a deletion, else 404. */
async function missing(ctx: FhirContext, def: ResourceDefinition, id: string): Promise<FhirError> {
  const latest = def.kept === false ? undefined : await latestVersion(ctx.db, def, id);
  return latest?.method === 'DELETE' ? gone(`${def.type}/${id} has been deleted`) : notFound(`${def.type}/${id} is not known`);
}

/** read. https://hl7.org/fhir/R4/http.html#read */
export async function readResource(ctx: FhirContext, type: string, id: string): Promise<Resource> {
  const def = definitionOf(type);
  checkId(id);
  const stored = await readCurrent(ctx.db, def, id);
  if (!stored) throw await missing(ctx, def, id);
  if (stored.deleted) throw gone(`${type}/${id} has been deleted`);
  await ctx.audit({ action: 'read', resourceType: type, resourceId: id, success: true });
  return present(def, stored);
}

/** vread. https://hl7.org/fhir/R4/http.html#vread */
export async function vreadResource(ctx: FhirContext, type: string, id: string, vid: string): Promise<Resource> {
  const def = definitionOf(type);
  checkId(id);
  if (!/^\d+$/.test(vid)) throw notFound(`${type}/${id} has no version '${vid}'`);
  const version = Number(vid);
  const stored = await readCurrent(ctx.db, def, id);
  const newest = stored?.versionId ?? (await latestVersion(ctx.db, def, id))?.versionId ?? 0;
  if (version < 1 || version > newest) throw notFound(`${type}/${id} has no version ${vid}`);
  let resource: Resource;
  if (stored && version === stored.versionId && !stored.deleted) {
    resource = present(def, stored);
  } else {
    const entry = await readVersion(ctx.db, def, id, version);
    if (!entry) throw notFound(`${type}/${id} has no version ${vid}`);
    if (!entry.resource) throw gone(`${type}/${id} version ${vid} is a deletion`);
    resource = withMeta(entry.resource as Resource, version, sqlToInstant(entry.recordedAt)!);
  }
  await ctx.audit({ action: 'vread', resourceType: type, resourceId: id, success: true, data: { version } });
  return resource;
}

/** update (PUT), with If-Match; creates the resource when the id is new. https://hl7.org/fhir/R4/http.html#update */
export async function updateResource(ctx: FhirContext, type: string, id: string, body: unknown, ifMatch?: string): Promise<WriteResult> {
  const def = definitionOf(type);
  checkId(id);
  const bodyId = (body as { id?: unknown } | null)?.id;
  if (body && typeof body === 'object' && bodyId !== id) {
    throw badRequest(bodyId === undefined ? `The resource must carry id '${id}' to be written to ${type}/${id}` : `Resource id '${String(bodyId)}' does not match the URL id '${id}'`, `${type}.id`);
  }
  const result = await inTransaction(ctx.db, async (trx) => {
    const now = nowSeconds();
    const current = await readCurrent(trx, def, id, true);
    if (ifMatch !== undefined) {
      const m = /^(?:W\/)?"?(\d+)"?$/.exec(ifMatch.trim());
      if (!m) throw badRequest(`If-Match must be a version ETag like W/"3", not '${ifMatch}'`);
      if (!current || current.deleted || Number(m[1]) !== current.versionId) {
        throw preconditionFailed(`Version conflict: If-Match ${ifMatch} but ${type}/${id} is ${current ? (current.deleted ? 'deleted' : `at version ${current.versionId}`) : 'not known'}`);
      }
    }
    const { incoming, columns, index } = await prepare(trx, def, body, id, { userId: ctx.userId, now: now.sql, current });
    // a removed row's id continues its history
    const previous = current?.versionId ?? (await latestVersion(trx, def, id))?.versionId ?? 0;
    const version = previous + 1;
    const resource = withMeta(incoming, version, sqlToInstant(now.sql)!);
    const input = { id, columns, resource, index, method: 'PUT' as const, userId: ctx.userId };
    if (current) await updateRow(trx, def, input, version, now.sql);
    else await insertResource(trx, def, input, now.sql, version);
    const created = !current || current.deleted;
    await ctx.audit({ action: created ? 'create' : 'update', resourceType: type, resourceId: id, success: true, data: { version } }, trx);
    return { status: (created ? 201 : 200) as 200 | 201, resource, created };
  }, { retryOnDuplicate: true });
  return result;
}

/**
 * Resources whose stored references point at `type/id` (at most a few, for the message). A row
 * that is removed would leave them pointing at nothing (or the database would null their columns
 * behind their versions), so a hard delete is refused while they exist, as HAPI FHIR does.
 */
async function referrers(trx: Knex, type: string, id: string): Promise<string[]> {
  const found: string[] = [];
  for (const other of allResourceDefinitions()) {
    for (const ref of other.references.filter((r) => r.targetType === type)) {
      const q = whereOfType(trx(`${other.table} as t`).where(`t.${ref.column}`, id).select('t.id').limit(3), other);
      if (other.softDelete) q.whereNull('t.deleted_at');
      for (const r of (await q) as { id: string }[]) found.push(`${other.type}/${r.id}`);
    }
  }
  return [...new Set(found)];
}

/** delete: soft for patients and users, else the row is removed. Deleting a deleted resource succeeds again. https://hl7.org/fhir/R4/http.html#delete */
export async function deleteResource(ctx: FhirContext, type: string, id: string): Promise<void> {
  const def = definitionOf(type);
  checkId(id);
  if (!def.interactions.includes('delete')) throw new FhirError(405, `${type} cannot be deleted`, 'not-supported');
  await inTransaction(ctx.db, async (trx) => {
    const current = await readCurrent(trx, def, id, true);
    if (!current) {
      if ((await latestVersion(trx, def, id))?.method !== 'DELETE') throw notFound(`${type}/${id} is not known`);
    } else if (!current.deleted) {
      if (!def.softDelete) {
        const by = await referrers(trx, type, id);
        if (by.length) throw conflict(`${type}/${id} is referenced by ${by.join(', ')}${by.length >= 3 ? ' and maybe more' : ''}: delete or change those first`);
      }
      await deleteRow(trx, def, id, current.versionId + 1, nowSeconds().sql, ctx.userId);
    }
    const again = !current || current.deleted;
    await ctx.audit({ action: 'delete', resourceType: type, resourceId: id, success: true, data: again ? { alreadyDeleted: true } : undefined }, trx);
  });
}

/** Instance history, newest first, paged by version. https://hl7.org/fhir/R4/http.html#history */
export async function instanceHistory(ctx: FhirContext, type: string, id: string, query: Query, selfUrl: string): Promise<Bundle> {
  const def = definitionOf(type);
  checkId(id);
  const current = await readCurrent(ctx.db, def, id);
  if (!current && !(await latestVersion(ctx.db, def, id))) throw notFound(`${type}/${id} is not known`);
  const one = (k: string): string | undefined => { const v = query[k]; return Array.isArray(v) ? v[0] : v; };
  const wholeNumber = (k: string): number | undefined => {
    const v = one(k);
    if (v === undefined) return undefined;
    if (!/^\d{1,9}$/.test(v)) throw badRequest(`${k} must be a non-negative integer, not '${v}'`);
    return Number(v);
  };
  const count = Math.min(wholeNumber('_count') ?? 20, ctx.maxCount);
  const since = one('_since');
  let sinceSql: string | undefined;
  if (since) {
    const t = Date.parse(since);
    if (Number.isNaN(t)) throw badRequest(`_since must be an instant, not '${since}'`);
    sinceSql = dateToSqlTimestamp(new Date(t));
  }
  const below = wholeNumber('_below');
  let entries = await listVersions(ctx.db, def, id, { limit: count + 1, since: sinceSql, belowVersion: below });
  if (entries.length === 0 && current && !current.deleted && below === undefined && (!sinceSql || current.lastUpdated >= sinceSql)
    && !(await latestVersion(ctx.db, def, id))) {
    // a row written natively has no history: its current state is its one version
    entries = [{ versionId: current.versionId, method: 'POST', recordedAt: current.lastUpdated }];
  }
  const page = entries.slice(0, count);
  // the newest version reads through the overlay, like a read (its columns may have changed natively)
  if (current && page[0]?.versionId === current.versionId && !current.deleted) {
    page[0] = { ...page[0]!, resource: present(def, current) as unknown as Record<string, unknown> };
  }
  let next: string | undefined;
  if (entries.length > count) {
    const u = new URL(selfUrl);
    u.searchParams.set('_below', String(page[page.length - 1]!.versionId));
    next = u.toString();
  }
  await ctx.audit({ action: 'history', resourceType: type, resourceId: id, success: true });
  return historyBundle(ctx.baseUrl, def.type, id, page, selfUrl, next, (r, v, at) => withMeta(r as Resource, v, sqlToInstant(at)!));
}

/** search (GET or POST _search). https://hl7.org/fhir/R4/search.html */
export { searchBundle as searchResources } from './search/execute.js';
