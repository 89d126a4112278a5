/**
 * "A doctor who creates a Patient becomes a member of its care team": the CareTeam written for
 * it, through the one write path (version 1 in the history, search index), inside the
 * transaction that creates the patient.
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { FhirContext } from './context.js';
import { definitionOf, withMeta } from './resource-view.js';
import { indexEntries } from './search/index-entries.js';
import { insertResource } from '../db/resource-repository.js';
import { sqlToInstant } from '../mappers/datatypes.js';
import type { Resource } from './types.js';

/** Creates an active CareTeam of the patient with the user as its member from now on. */
export async function joinCareTeam(ctx: FhirContext, trx: Knex.Transaction, patientId: string, userId: string, now: string): Promise<string> {
  const def = definitionOf('CareTeam');
  const id = uuidv7();
  const at = sqlToInstant(now)!;
  const team: Resource = {
    resourceType: 'CareTeam', id, status: 'active', name: 'Care team',
    subject: { reference: `Patient/${patientId}` },
    period: { start: at },
    participant: [{ member: { reference: `Practitioner/${userId}` }, period: { start: at } }],
  };
  const columns = def.toRow(team, { id, userId, now });
  await insertResource(trx, def, { id, columns, resource: withMeta(team, 1, at), index: indexEntries(def, team), method: 'POST', userId }, now);
  await ctx.audit({ action: 'create', resourceType: 'CareTeam', resourceId: id, patientId, success: true, data: { reason: 'the creator of the patient joins its care team' } }, trx);
  return id;
}
