/**
 * Conditional update and delete: the resource named by search criteria instead of an id, with
 * R4's rules for 0, 1 and many matches, race-free (the criteria's lock is held to commit, so two
 * writers with the same criteria run one after the other). https://hl7.org/fhir/R4/http.html#cond-update
 */
import { FhirError, badRequest, preconditionFailed } from './outcome.js';
import { conditionalMatches } from './conditional-match.js';
import { createResource, deleteResource, updateResource, type WriteResult } from './interactions.js';
import { definitionOf } from './resource-view.js';
import type { FhirContext } from './context.js';
import { inTransaction } from '../db/transactions.js';

/**
 * PUT Type?criteria. No match: a create (with the body's id, if it has one, as update-as-create);
 * one match: an update of it (a body id naming another resource is 400); several: 412.
 */
export async function conditionalUpdate(ctx: FhirContext, type: string, criteria: string, body: unknown, ifMatch?: string): Promise<WriteResult> {
  const def = definitionOf(type);
  if (!def.interactions.includes('update')) throw new FhirError(405, `${type} cannot be updated`, 'not-supported');
  ctx.access.require(def, 'update');
  const bodyId = (body as { id?: unknown } | null)?.id;
  if (bodyId !== undefined && typeof bodyId !== 'string') throw badRequest('The resource id must be a string', `${type}.id`);
  return inTransaction(ctx.db, async (trx) => {
    const inner = { ...ctx, db: trx };
    const matches = await conditionalMatches(ctx, trx, def, criteria, 'A conditional update');
    if (matches.length > 1) throw preconditionFailed(`The criteria '${criteria}' match more than one ${type}: a conditional update needs one match at most`);
    const [match] = matches;
    if (match) {
      if (bodyId !== undefined && bodyId !== match) throw badRequest(`The criteria match ${type}/${match}, but the resource's id is '${bodyId}'`, `${type}.id`);
      return updateResource(inner, type, match, { ...(body as object), id: match }, ifMatch);
    }
    if (ifMatch !== undefined) throw preconditionFailed(`If-Match ${ifMatch} but nothing matches '${criteria}'`);
    return bodyId !== undefined ? updateResource(inner, type, bodyId, body) : createResource(inner, type, body);
  }, { retryOnDuplicate: true });
}

/**
 * DELETE Type?criteria: the one match is deleted as by id; no match succeeds with nothing deleted;
 * several are 412 (HMS deletes one resource per request: conditionalDelete 'single').
 * Returns the id deleted, if any.
 */
export async function conditionalDelete(ctx: FhirContext, type: string, criteria: string): Promise<string | undefined> {
  const def = definitionOf(type);
  if (!def.interactions.includes('delete')) throw new FhirError(405, `${type} cannot be deleted`, 'not-supported');
  ctx.access.require(def, 'delete');
  return inTransaction(ctx.db, async (trx) => {
    const matches = await conditionalMatches(ctx, trx, def, criteria, 'A conditional delete');
    if (matches.length > 1) throw preconditionFailed(`The criteria '${criteria}' match more than one ${type}: HMS deletes one resource per conditional delete`);
    const [match] = matches;
    if (!match) {
      await ctx.audit({ action: 'delete-conditional-none', resourceType: type, success: true }, trx);
      return undefined;
    }
    await deleteResource({ ...ctx, db: trx }, type, match);
    return match;
  });
}
