/**
 * FHIR RESTful interactions over the registry, independent of HTTP: each returns the resource
 * or Bundle to answer with, or throws a FhirError. Every one is authorized by the caller's access
 * (src/fhir/access.ts) and audited per patient. https://hl7.org/fhir/R4/http.html
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { FhirError, badRequest, conflict, gone, notFound, preconditionFailed, unprocessable } from './outcome.js';
import { allResourceDefinitions, resourceDefinition, type ReferenceCheck, type ResourceDefinition } from './registry.js';
import type { Resource } from './types.js';
import { validateResource } from './validate.js';
import { normalizeReferences, referenceShape, type FoundReference } from './references.js';
import { indexEntries } from './search/index-entries.js';
import {
  deleteResource as deleteRow, existingIds, insertResource, latestVersion, listVersions, nowSeconds,
  readVersion, updateResource as updateRow, whereOfType, type Row, type StoredResource,
} from '../db/resource-repository.js';
import { dateToSqlTimestamp, sqlToInstant } from '../mappers/datatypes.js';
import { conditionalMatches, criteriaOf } from './conditional-match.js';
import { inTransaction } from '../db/transactions.js';
import { definitionOf, present, withMeta } from './resource-view.js';
import type { FhirContext } from './context.js';
import type { Rule } from '../auth/policy.js';
import { locate, missing, patientOfResource, patientOfRow, removedVisible, versionVisible, visibleIds } from './reach.js';
import { joinCareTeam } from './care-team-membership.js';
import { canonicalJson } from '../db/audit-hash.js';
import { isClinicianUser } from '../db/user-repository.js';

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
  if (/^[_$]/.test(id)) throw new FhirError(404, `'${id}' is not an operation or interaction of this server on this type (see /fhir/metadata)`, 'not-supported');
  if (!ID_RE.test(id)) throw badRequest(`Invalid resource id '${id.slice(0, 64)}': 1-36 characters of A-Z a-z 0-9 - .`);
  // '.' and '..' are dot segments (RFC 3986): a URL naming them reaches another path
  if (/^\.+$/.test(id)) throw badRequest(`Invalid resource id '${id}': an id of dots only cannot be addressed in a URL`);
}

/** The 422 for a reference to a resource that does not exist (or that the caller may not see: the same answer). */
function missingReference(ref: ReferenceCheck, target: string): FhirError {
  return unprocessable(`${ref.expression} refers to ${ref.targetType}/${target}, which does not exist or is not a ${ref.targetType}`, ref.expression, 'not-found');
}

/** The reference check naming a type's patient (its subject, beneficiary ...). */
const patientReference = (def: ResourceDefinition): ReferenceCheck | undefined =>
  def.references.find((r) => r.column === def.patientColumn && r.targetType === 'Patient');

/**
 * Checks a written row's references: each target must exist and, when it is a patient's data, be
 * one the caller may read; else 422, the same answer for both. Staff (Practitioner) are no
 * patient's data: any writer may name them. Returns the `Type/id` of the references it checked.
 */
async function checkReferences(ctx: FhirContext, trx: Knex.Transaction, def: ResourceDefinition, columns: Row, current?: StoredResource): Promise<Set<string>> {
  const checked = new Set<string>();
  const verified = ctx.verified?.for(ctx.access);
  for (const ref of def.references) {
    if (ref.requiredUser && ref.column in columns && (columns[ref.column] === null || columns[ref.column] === undefined)) {
      // no user wrote it (a system client): an update keeps who was recorded, a create must name one
      const kept = current?.row[ref.column];
      if (kept !== null && kept !== undefined) { columns[ref.column] = kept; continue; }
      throw unprocessable(`${ref.expression} is required: name the ${ref.targetType} (there is no user writing to record instead)`, ref.expression, 'required');
    }
    const target = columns[ref.column];
    if (target === null || target === undefined) continue;
    const targetDef = resourceDefinition(ref.targetType);
    const guarded = targetDef?.patientColumn !== undefined;
    const rule = targetDef && guarded ? ctx.access.rule(targetDef, 'read') : undefined;
    if (guarded && !rule) throw missingReference(ref, String(target));
    const narrowed = targetDef && rule && targetDef.table === ref.table;
    const reference = `${ref.targetType}/${String(target)}`;
    const shape = `${ref.table} ${ref.softDelete} ${narrowed ? 'narrowed' : ''} ${JSON.stringify(ref.where ?? {})}`;
    // what the transaction created exists; with no row filter there is nothing else to check
    if (!(verified?.createdHere(reference) && !ref.where) && !verified?.has(reference, shape)) {
      const found = await existingIds(trx, ref.table, [String(target)], {
        ...ref, narrow: narrowed ? (q) => ctx.access.narrow(trx, q, targetDef, rule) : undefined,
      });
      if (!found.has(String(target))) throw missingReference(ref, String(target));
      verified?.add(reference, shape);
    }
    checked.add(reference);
  }
  return checked;
}

/** The relative references among a resource's references (normalizeReferences) to a type HMS stores. */
function storedReferences(found: FoundReference[]): { path: string; type: string; id: string }[] {
  const out: { path: string; type: string; id: string }[] = [];
  for (const { path, holder } of found) {
    const shape = referenceShape(holder.reference);
    if (typeof shape !== 'string' && shape.kind === 'relative' && resourceDefinition(shape.type)) out.push({ path, type: shape.type, id: shape.id });
  }
  return out;
}

/** The shape of check isClinician makes (VerifiedReferences). */
const CLINICIAN = 'clinician';

/** Whether a user is a doctor or nurse: looked up once per transaction (forgotten when the transaction writes the Practitioner). */
async function isClinician(ctx: FhirContext, trx: Knex.Transaction, userId: string): Promise<boolean> {
  const verified = ctx.verified?.for(ctx.access);
  if (verified?.has(`Practitioner/${userId}`, CLINICIAN)) return true;
  const yes = await isClinicianUser(trx, userId);
  if (yes) verified?.add(`Practitioner/${userId}`, CLINICIAN);
  return yes;
}

/** The shape of check visibleIds makes (VerifiedReferences). */
const VISIBLE = 'visible';

/**
 * 422 for a reference to a stored resource that does not exist or is out of the writer's reach,
 * wherever in the resource it stands (a performer, a link, a care team participant, a contained
 * resource) and whatever its form (versioned, or absolute to this server): the same answer for both.
 */
async function checkStoredReferences(ctx: FhirContext, trx: Knex.Transaction, found: FoundReference[], checked: Set<string>): Promise<void> {
  // the column references (the subject ...) were checked already, under the same rule
  const refs = storedReferences(found).filter((r) => !checked.has(`${r.type}/${r.id}`));
  for (const type of new Set(refs.map((r) => r.type))) {
    const ofType = refs.filter((r) => r.type === type);
    const visible = await knownVisible(ctx, trx, type, ofType.map((r) => r.id));
    const bad = ofType.find((r) => !visible.has(r.id));
    if (bad) throw unprocessable(`${bad.path} refers to ${type}/${bad.id}, which does not exist or is not a ${type}`, bad.path, 'not-found');
  }
}

/** visibleIds, each id looked up once per transaction (none for what an unrestricted caller's transaction created). */
async function knownVisible(ctx: FhirContext, trx: Knex.Transaction, type: string, ids: string[]): Promise<Set<string>> {
  const verified = ctx.verified?.for(ctx.access);
  if (!verified) return visibleIds(ctx, trx, type, ids);
  const known = (id: string): boolean => verified.createdHere(`${type}/${id}`) || verified.has(`${type}/${id}`, VISIBLE);
  const found = await visibleIds(ctx, trx, type, [...new Set(ids)].filter((id) => !known(id)));
  for (const id of found) verified.add(`${type}/${id}`, VISIBLE);
  return new Set(ids.filter(known));
}

/**
 * Validates a client resource and derives what the write path stores. A writer limited to a
 * subset of the type is refused (403) before anything is looked up.
 */
async function prepare(ctx: FhirContext, trx: Knex.Transaction, def: ResourceDefinition, rule: Rule, interaction: 'create' | 'update', body: unknown, id: string, now: string, current?: StoredResource) {
  validateResource(def.type, body);
  const incoming = structuredClone(body) as Resource;
  const references = normalizeReferences(incoming as unknown as Record<string, unknown>, ctx.baseUrl);
  def.check?.(incoming);
  checkSubset(ctx, def, rule, interaction, incoming);
  incoming.id = id;
  const columns = def.toRow(incoming, { id, userId: ctx.userId, now });
  await checkStoredReferences(ctx, trx, references, await checkReferences(ctx, trx, def, columns, current));
  await def.checkStored?.(incoming, {
    trx, id, userId: ctx.userId, columns, current, visible: (type, ids) => knownVisible(ctx, trx, type, ids),
    isClinician: (userId) => isClinician(ctx, trx, userId),
  });
  return { incoming, columns, index: indexEntries(def, incoming) };
}

/** 403 unless a restricted writer's resource (and the stored one it replaces) is of the subset its rule allows. */
function checkSubset(ctx: FhirContext, def: ResourceDefinition, rule: Rule, interaction: 'create' | 'update' | 'delete', incoming?: Resource, current?: StoredResource): void {
  if (!rule.only) return;
  const subset = def.subsets?.[rule.only];
  if (!subset) throw new Error(`${def.type} has no subset '${rule.only}'`);
  const ok = (!incoming || subset.resource(incoming)) && (!current || subset.row(current.row));
  if (!ok) throw ctx.access.forbidden(def.type, interaction, subset.description);
}

/** 403 unless an update by a writer limited to a group of elements changes nothing else. */
function checkChanges(def: ResourceDefinition, rule: Rule, incoming: Resource, current: StoredResource): void {
  if (!rule.changes) return;
  const group = def.elementGroups?.[rule.changes];
  if (!group) throw new Error(`${def.type} has no element group '${rule.changes}'`);
  const before = group.without(structuredClone(present(def, current)));
  const after = group.without(structuredClone(incoming));
  const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => k !== 'meta' && k !== 'id' && canonicalJson(before[k]) !== canonicalJson(after[k]));
  if (changed.length) {
    throw new FhirError(403, [{
      severity: 'error', code: 'forbidden', expression: changed.map((k) => `${def.type}.${k}`),
      diagnostics: `Your role may change only ${group.description} of a ${def.type}; this update also changes ${changed.join(', ')}`,
    }]);
  }
}

/**
 * 422 unless the patient a write puts the resource under is within the rule's reach, answered as
 * a reference to a missing patient: a caller cannot place data into a record it may not write.
 */
async function checkPatientReach(ctx: FhirContext, trx: Knex.Transaction, def: ResourceDefinition, rule: Rule, columns: Row, id: string): Promise<void> {
  if (rule.reach === 'all' || def.patientColumn === 'id') return;
  const patient = patientOfRow(def, { ...columns, id });
  const ref = patientReference(def);
  if (!patient || !ref) return;
  if ((await ctx.access.reachable(trx, rule, [patient], def)).size === 0) throw missingReference(ref, patient);
}

/** After a restricted write, inside its transaction: 403 when the change took the resource out of the writer's reach. */
async function checkStillReached(ctx: FhirContext, trx: Knex.Transaction, def: ResourceDefinition, rule: Rule, id: string): Promise<void> {
  if (rule.reach === 'all') return;
  if (!(await locate(ctx, def, rule, id, trx, false, 'write'))) {
    throw new FhirError(403, `This change would take ${def.type}/${id} out of your reach (e.g. off the patients assigned to you)`, 'forbidden');
  }
}

/**
 * Runs a definition's write effects inside the transaction; what they defer runs after commit
 * through the returned function.
 */
async function writeEffects(ctx: FhirContext, trx: Knex.Transaction, def: ResourceDefinition, id: string, before: Row | undefined, after: Row | undefined, pending: (() => Promise<void>)[]): Promise<void> {
  if (!def.afterWrite || ctx.accountEffectsHandled) return;
  await def.afterWrite({
    trx, id, before, after,
    audit: (action, data) => ctx.audit({ action, resourceType: def.type, resourceId: id, success: true, data }, trx),
    afterCommit: (fn) => { pending.push(fn); },
    revokeUser: (userId) => ctx.revokeUser?.(userId) ?? Promise.resolve(),
    fhir: { ...ctx, db: trx, deferred: pending },
  });
}

/** Runs what a write deferred to its commit, or hands it to the caller's transaction (ctx.deferred) to run after that commits. */
async function afterCommit(ctx: FhirContext, pending: (() => Promise<void>)[]): Promise<void> {
  if (ctx.deferred) { ctx.deferred.push(...pending); return; }
  for (const fn of pending) await fn();
}

/** create, with If-None-Exist (matched among the resources the caller may read). https://hl7.org/fhir/R4/http.html#ccreate */
export async function createResource(ctx: FhirContext, type: string, body: unknown, ifNoneExist?: string): Promise<WriteResult> {
  const def = definitionOf(type);
  const rule = ctx.access.require(def, 'create');
  const pending: (() => Promise<void>)[] = [];
  const result = await inTransaction(ctx.db, async (trx) => {
    pending.length = 0;
    const now = nowSeconds();
    if (ifNoneExist !== undefined) {
      const criteria = criteriaOf(ifNoneExist);
      const readRule = ctx.access.require(def, 'read');
      const matches = await conditionalMatches(ctx, trx, def, criteria, 'If-None-Exist');
      if (matches.length > 1) throw preconditionFailed(`If-None-Exist criteria '${criteria}' match more than one ${type}`);
      if (matches.length === 1) {
        const existing = (await locate(ctx, def, readRule, matches[0]!, trx))!;
        await ctx.audit({ action: 'create-conditional-match', resourceType: type, resourceId: String(existing.row.id), patientId: patientOfRow(def, existing.row), success: true }, trx);
        return { status: 200 as const, resource: ctx.access.view(def, readRule, present(def, existing)), created: false };
      }
    }
    const id = uuidv7();
    const { incoming, columns, index } = await prepare(ctx, trx, def, rule, 'create', body, id, now.sql);
    await checkPatientReach(ctx, trx, def, rule, columns, id);
    const resource = withMeta(incoming, 1, sqlToInstant(now.sql)!);
    await insertResource(trx, def, { id, columns, resource, index, method: 'POST', userId: ctx.userId }, now.sql);
    const patientId = patientOfRow(def, { ...columns, id });
    if (rule.joinCareTeam && ctx.userId && patientId) await joinCareTeam(ctx, trx, patientId, ctx.userId, now.sql);
    await ctx.audit({ action: 'create', resourceType: type, resourceId: id, patientId, success: true }, trx);
    // the definition's write effects run on a create too (their `before` is undefined)
    await writeEffects(ctx, trx, def, id, undefined, { ...columns, id }, pending);
    return { status: 201 as const, resource, created: true };
  });
  await afterCommit(ctx, pending);
  return result;
}

/** read. https://hl7.org/fhir/R4/http.html#read */
export async function readResource(ctx: FhirContext, type: string, id: string): Promise<Resource> {
  const def = definitionOf(type);
  checkId(id);
  const rule = ctx.access.require(def, 'read');
  const stored = await locate(ctx, def, rule, id);
  if (!stored) throw await missing(ctx, def, rule, id);
  if (stored.deleted) throw gone(`${type}/${id} has been deleted`);
  await ctx.audit({ action: 'read', resourceType: type, resourceId: id, patientId: patientOfRow(def, stored.row), success: true });
  return ctx.access.view(def, rule, present(def, stored));
}

/** vread: a version the caller may know of (its patient within reach). https://hl7.org/fhir/R4/http.html#vread */
export async function vreadResource(ctx: FhirContext, type: string, id: string, vid: string): Promise<Resource> {
  const def = definitionOf(type);
  checkId(id);
  const rule = ctx.access.require(def, 'vread');
  if (!/^\d+$/.test(vid)) throw notFound(`${type}/${id} has no version '${vid}'`);
  const version = Number(vid);
  const stored = await locate(ctx, def, rule, id);
  let newest = stored?.versionId ?? 0;
  if (!stored) {
    const latest = def.kept === false ? undefined : await latestVersion(ctx.db, def, id);
    if (latest && (await removedVisible(ctx, def, rule, id, latest))) newest = latest.versionId;
  }
  if (version < 1 || version > newest) throw notFound(`${type}/${id} has no version ${vid}`);
  let resource: Resource;
  let patientId: string | undefined;
  if (stored && version === stored.versionId && !stored.deleted) {
    resource = present(def, stored);
    patientId = patientOfRow(def, stored.row);
  } else {
    const entry = await readVersion(ctx.db, def, id, version);
    if (!entry || (entry.resource && !(await versionVisible(ctx, def, rule, id, entry.resource)))) throw notFound(`${type}/${id} has no version ${vid}`);
    if (!entry.resource) throw gone(`${type}/${id} version ${vid} is a deletion`);
    resource = withMeta(entry.resource as Resource, version, sqlToInstant(entry.recordedAt)!);
    // the version's own patient: a resource that moved was another patient's data then
    patientId = patientOfResource(def, resource, id);
  }
  await ctx.audit({ action: 'vread', resourceType: type, resourceId: id, patientId, success: true, data: { version } });
  return ctx.access.view(def, rule, resource);
}

/**
 * update (PUT), with If-Match. A caller whose rule reaches every patient may create the resource
 * with this id when it is new (update as create); for the others an unknown id, like one out of
 * their reach, is 404. https://hl7.org/fhir/R4/http.html#update
 */
export async function updateResource(ctx: FhirContext, type: string, id: string, body: unknown, ifMatch?: string): Promise<WriteResult> {
  const def = definitionOf(type);
  checkId(id);
  const rule = ctx.access.require(def, 'update');
  const bodyId = (body as { id?: unknown } | null)?.id;
  if (body && typeof body === 'object' && bodyId !== id) {
    throw badRequest(bodyId === undefined ? `The resource must carry id '${id}' to be written to ${type}/${id}` : `Resource id '${String(bodyId)}' does not match the URL id '${id}'`, `${type}.id`);
  }
  const pending: (() => Promise<void>)[] = [];
  const result = await inTransaction(ctx.db, async (trx) => {
    pending.length = 0;
    const now = nowSeconds();
    const current = await locate(ctx, def, rule, id, trx, true, 'write');
    if (rule.reach !== 'all' && (!current || current.deleted)) throw current ? gone(`${type}/${id} has been deleted`) : await missing(ctx, def, rule, id, trx);
    if (!current || current.deleted) ctx.access.require(def, 'create');
    if (ifMatch !== undefined) {
      const m = /^(?:W\/)?"?(\d+)"?$/.exec(ifMatch.trim());
      if (!m) throw badRequest(`If-Match must be a version ETag like W/"3", not '${ifMatch}'`);
      if (!current || current.deleted || Number(m[1]) !== current.versionId) {
        throw preconditionFailed(`Version conflict: If-Match ${ifMatch} but ${type}/${id} is ${current ? (current.deleted ? 'deleted' : `at version ${current.versionId}`) : 'not known'}`);
      }
    }
    if (current && !current.deleted) checkSubset(ctx, def, rule, 'update', undefined, current);
    const { incoming, columns, index } = await prepare(ctx, trx, def, rule, 'update', body, id, now.sql, current);
    if (current && !current.deleted) checkChanges(def, rule, incoming, current);
    await checkPatientReach(ctx, trx, def, rule, columns, id);
    // a removed row's id continues its history
    const previous = current?.versionId ?? (await latestVersion(trx, def, id))?.versionId ?? 0;
    const version = previous + 1;
    const resource = withMeta(incoming, version, sqlToInstant(now.sql)!);
    const input = { id, columns, resource, index, method: 'PUT' as const, userId: ctx.userId };
    if (current) await updateRow(trx, def, input, version, now.sql);
    else await insertResource(trx, def, input, now.sql, version);
    await checkStillReached(ctx, trx, def, rule, id);
    if (current) await writeEffects(ctx, trx, def, id, current.row, columns, pending);
    const created = !current || current.deleted;
    const patientId = patientOfRow(def, { ...columns, id });
    const before = current ? patientOfRow(def, current.row) : undefined;
    const action = created ? 'create' : 'update';
    await ctx.audit([
      { action, resourceType: type, resourceId: id, patientId, success: true, data: { version } },
      // a resource moved from one patient to another is an access to both records
      ...(before && before !== patientId ? [{ action, resourceType: type, resourceId: id, patientId: before, success: true, data: { version, movedAway: true } }] : []),
    ], trx);
    return { status: (created ? 201 : 200) as 200 | 201, resource, created };
  }, { retryOnDuplicate: true });
  await afterCommit(ctx, pending);
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
    // references held by the search index (every reference of a generic resource): the index
    // keeps the rows of current resources only, one lookup (type, parameter, "Type/id") each
    for (const p of other.searchParams.filter((x) => x.source === 'index' && x.type === 'reference' && x.targets?.includes(type))) {
      if (found.length >= 3) break;
      const rows = (await trx('search_token').where({ resource_type: other.type, param: p.name, code: `${type}/${id}` }).select('resource_id').limit(3)) as { resource_id: string }[];
      for (const r of rows) found.push(`${other.type}/${r.resource_id}`);
    }
  }
  return [...new Set(found)];
}

/** delete: soft for patients and users, else the row is removed. Deleting a deleted resource succeeds again. https://hl7.org/fhir/R4/http.html#delete */
export async function deleteResource(ctx: FhirContext, type: string, id: string): Promise<void> {
  const def = definitionOf(type);
  checkId(id);
  if (!def.interactions.includes('delete')) throw new FhirError(405, `${type} cannot be deleted`, 'not-supported');
  const rule = ctx.access.require(def, 'delete');
  const pending: (() => Promise<void>)[] = [];
  await inTransaction(ctx.db, async (trx) => {
    pending.length = 0;
    const current = await locate(ctx, def, rule, id, trx, true, 'write');
    if (!current) {
      const latest = await latestVersion(trx, def, id);
      if (!(await removedVisible(ctx, def, rule, id, latest, trx))) throw notFound(`${type}/${id} is not known`);
    } else if (!current.deleted) {
      checkSubset(ctx, def, rule, 'delete', undefined, current);
      if (!def.softDelete) {
        const by = await referrers(trx, type, id);
        // the referrers are named only to callers who may see every one of them
        if (by.length) throw conflict(`${type}/${id} is referenced by ${ctx.access.unrestricted ? `${by.join(', ')}${by.length >= 3 ? ' and maybe more' : ''}` : 'other resources'}: delete or change those first`);
      }
      await deleteRow(trx, def, id, current.versionId + 1, nowSeconds().sql, ctx.userId);
      await writeEffects(ctx, trx, def, id, current.row, undefined, pending);
    }
    const again = !current || current.deleted;
    await ctx.audit({ action: 'delete', resourceType: type, resourceId: id, patientId: current ? patientOfRow(def, current.row) : undefined, success: true, data: again ? { alreadyDeleted: true } : undefined }, trx);
  });
  await afterCommit(ctx, pending);
}

/** Instance history, newest first, paged by version: the versions the caller may know of. https://hl7.org/fhir/R4/http.html#history */
export async function instanceHistory(ctx: FhirContext, type: string, id: string, query: Query, selfUrl: string): Promise<Bundle> {
  const def = definitionOf(type);
  checkId(id);
  const rule = ctx.access.require(def, 'history');
  const current = await locate(ctx, def, rule, id);
  const latest = await latestVersion(ctx.db, def, id);
  if (!current && !(await removedVisible(ctx, def, rule, id, latest))) throw notFound(`${type}/${id} is not known`);
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
  if (entries.length === 0 && current && !current.deleted && below === undefined && (!sinceSql || current.lastUpdated >= sinceSql) && !latest) {
    // a row written natively has no history: its current state is its one version
    entries = [{ versionId: current.versionId, method: 'POST', recordedAt: current.lastUpdated }];
  }
  const more = entries.length > count;
  let page = entries.slice(0, count);
  // the newest version reads through the overlay, like a read (its columns may have changed natively)
  if (current && page[0]?.versionId === current.versionId && !current.deleted) {
    page[0] = { ...page[0]!, resource: present(def, current) as unknown as Record<string, unknown> };
  }
  const last = page[page.length - 1];
  const patientOf = (e: { resource?: Record<string, unknown> }): string | undefined => (e.resource ? patientOfResource(def, e.resource, id) : undefined);
  if (rule.reach !== 'all' && def.patientColumn) {
    // a version that belonged to a patient out of reach (before the resource moved) is left out
    const patients = page.map(patientOf);
    const ok = await ctx.access.reachable(ctx.db, rule, patients);
    page = page.filter((e, i) => !e.resource || ok.has(patients[i]!));
  }
  let next: string | undefined;
  if (more && last) {
    const u = new URL(selfUrl);
    u.searchParams.set('_below', String(last.versionId));
    next = u.toString();
  }
  // one row per patient whose versions were returned (a resource that moved was two patients' data)
  const byPatient = new Map<string | undefined, number[]>();
  for (const e of page) {
    const p = patientOf(e) ?? (current ? patientOfRow(def, current.row) : undefined);
    byPatient.set(p, [...(byPatient.get(p) ?? []), e.versionId]);
  }
  if (byPatient.size === 0) byPatient.set(current ? patientOfRow(def, current.row) : undefined, []);
  await ctx.audit([...byPatient].map(([patientId, versions]) => ({ action: 'history', resourceType: type, resourceId: id, patientId, success: true, data: { versions } })));
  return historyBundle(ctx.baseUrl, def.type, id, page, selfUrl, next, (r, v, at) => ctx.access.view(def, rule, withMeta(r as Resource, v, sqlToInstant(at)!)));
}

/** search (GET or POST _search). https://hl7.org/fhir/R4/search.html */
export { searchBundle as searchResources } from './search/execute.js';
