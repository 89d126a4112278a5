/**
 * Finding a resource within the caller's reach: the read under a rule's narrowing, the patient a
 * row or a kept version belongs to, and the answer for an id the caller finds nothing for (404,
 * the same for an id that never existed and one out of reach; 410 only for a deletion the caller
 * may know of). docs/security.md
 */
import type { Knex } from 'knex';
import type { Rule } from '../auth/policy.js';
import type { FhirContext } from './context.js';
import type { Purpose } from './access.js';
import { FhirError, gone, notFound } from './outcome.js';
import type { ResourceDefinition } from './registry.js';
import type { Resource } from './types.js';
import { existingIds, latestVersion, readCurrent, readVersion, type Row, type StoredResource } from '../db/resource-repository.js';
import { resourceDefinition } from './registry.js';

/** The patient a stored row belongs to (undefined: the type is not a patient's data). */
export function patientOfRow(def: ResourceDefinition, row: Row): string | undefined {
  const col = def.patientColumn;
  const v = col ? row[col] : undefined;
  return v === null || v === undefined ? undefined : String(v);
}

/** The patient a resource (a kept version, a write's columns) belongs to. */
export function patientOfResource(def: ResourceDefinition, resource: Record<string, unknown>, id: string): string | undefined {
  if (!def.patientColumn) return undefined;
  if (def.patientColumn === 'id') return id;
  try {
    return patientOfRow(def, def.toRow(resource as Resource, { id, now: '1970-01-01 00:00:00' }));
  } catch {
    return undefined;
  }
}

/** The current row of an id within the rule's reach (deleted ones flagged), or undefined. */
export function locate(ctx: FhirContext, def: ResourceDefinition, rule: Rule, id: string, db: Knex = ctx.db, forUpdate = false, purpose: Purpose = 'read'): Promise<StoredResource | undefined> {
  return readCurrent(db, def, id, forUpdate, ctx.access.narrowing(def, rule, purpose));
}

/**
 * Whether the caller may know of a version: its patient is within the rule's reach (a type that is
 * no patient's data is reached as a whole: its versions follow the resource).
 */
export async function versionVisible(ctx: FhirContext, def: ResourceDefinition, rule: Rule, id: string, resource: Record<string, unknown> | undefined, db: Knex = ctx.db): Promise<boolean> {
  if (rule.reach === 'all' || !def.patientColumn) return true;
  const patient = resource ? patientOfResource(def, resource, id) : undefined;
  return (await ctx.access.reachable(db, rule, [patient])).size > 0;
}

/**
 * Whether the caller may see the history of an id that has no row within its reach: only a
 * resource removed by a delete (its last version a DELETE) whose last content was within reach.
 */
export async function removedVisible(ctx: FhirContext, def: ResourceDefinition, rule: Rule, id: string, latest: { versionId: number; method: string } | undefined, db: Knex = ctx.db): Promise<boolean> {
  if (latest?.method !== 'DELETE') return false;
  if (rule.reach === 'all') return true;
  // a soft-deleted row is still located within reach (or not); a removed one of no patient's data is not known
  if (!def.patientColumn) return false;
  const before = latest.versionId > 1 ? await readVersion(db, def, id, latest.versionId - 1) : undefined;
  return versionVisible(ctx, def, rule, id, before?.resource, db);
}

/** The error for an id without a row within reach: 410 for a deletion the caller may know of, else 404. */
export async function missing(ctx: FhirContext, def: ResourceDefinition, rule: Rule, id: string, db: Knex = ctx.db): Promise<FhirError> {
  const latest = def.kept === false ? undefined : await latestVersion(db, def, id);
  return (await removedVisible(ctx, def, rule, id, latest, db)) ? gone(`${def.type}/${id} has been deleted`) : notFound(`${def.type}/${id} is not known`);
}

/** Ids of stored resources of a type that the caller may read (for write checks that name other resources). */
export async function visibleIds(ctx: FhirContext, db: Knex, type: string, ids: string[]): Promise<Set<string>> {
  const def = resourceDefinition(type);
  if (!def || ids.length === 0) return new Set();
  // a patient's data is named only by who may read it; anything else (staff, the directory, a
  // Device) by any writer, as a reference to an existing resource
  const rule = def.patientColumn ? ctx.access.rule(def, 'read') : { reach: 'all' as const };
  if (!rule) return new Set();
  return existingIds(db, def.table, ids, { softDelete: def.softDelete, where: def.rowFilter, narrow: (q) => ctx.access.narrow(db, q, def, rule) });
}
