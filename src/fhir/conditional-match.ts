/**
 * The search behind every conditional interaction (create with If-None-Exist, conditional update
 * and delete, conditional references in a transaction): the criteria run through the search
 * compiler among the resources the caller may read, under a lock on the criteria, so two writers
 * asking the same question at once are serialised and the second sees what the first wrote.
 * https://hl7.org/fhir/R4/http.html#cond-update
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { badRequest } from './outcome.js';
import type { ResourceDefinition } from './registry.js';
import type { FhirContext } from './context.js';
import type { Query } from './search/params.js';
import { matchingIds } from './search/execute.js';
import { lockConditional, nowSeconds } from '../db/resource-repository.js';

/** The criteria of a conditional interaction: what follows '?' in `Type?a=b` (or the whole string). */
export function criteriaOf(url: string): string {
  return url.includes('?') ? url.slice(url.indexOf('?') + 1) : url;
}

/** Criteria in one canonical order: the same parameters in any order are the same question. */
export function canonicalCriteria(criteria: string): string {
  const params = new URLSearchParams(criteria);
  params.sort();
  return params.toString();
}

/** The lock key of a type's criteria. */
const conditionalKey = (type: string, criteria: string): string => createHash('sha256').update(`${type}?${canonicalCriteria(criteria)}`).digest('hex');

/** Parsed criteria as a search query (repeated parameters kept). */
export function criteriaQuery(criteria: string): Query {
  const params = new URLSearchParams(criteria);
  return Object.fromEntries([...new Set(params.keys())].map((k) => [k, params.getAll(k)]));
}

/**
 * The ids (at most two: enough to tell 0 / 1 / many) of the resources of a type matching the
 * criteria that the caller may read, inside `trx` and under the criteria's lock (held to commit).
 */
export async function conditionalMatches(ctx: FhirContext, trx: Knex.Transaction, def: ResourceDefinition, criteria: string, what: string): Promise<string[]> {
  if (!criteria.trim()) throw badRequest(`${what} needs search criteria, e.g. identifier=http://example.org|123`);
  ctx.access.require(def, 'read');
  await lockConditional(trx, conditionalKey(def.type, criteria), nowSeconds().sql);
  return matchingIds({ ...ctx, db: trx, strict: true }, def, criteriaQuery(criteria), 2, ctx.access.scope('read'));
}
