/**
 * Patient/{id}/$break-glass: emergency access (HIPAA "break the glass"). A doctor or nurse who
 * states a reason reaches an unassigned patient's record for HMS_BREAK_GLASS_MINUTES; every access
 * under the grant is flagged in the security log and admins review grants at GET /admin/break-glass.
 * docs/security.md
 */
import type { FhirContext } from '../context.js';
import { FhirError, badRequest, notFound } from '../outcome.js';
import { definitionOf } from '../resource-view.js';
import type { Resource } from '../types.js';
import { CLINICIAN_ROLES } from '../../auth/principal.js';
import { insertGrant, type GrantRecord } from '../../db/break-glass-repository.js';
import { readCurrent } from '../../db/resource-repository.js';
import { inTransaction } from '../../db/transactions.js';
import { sqlToInstant } from '../../mappers/datatypes.js';

/** The longest reason kept (a sentence or two for the reviewer). */
const MAX_REASON = 2000;

/** The reason of a Parameters body (400 unless present, non-empty and not too long). */
function reasonOf(body: unknown): string {
  const b = body as { resourceType?: unknown; parameter?: { name?: unknown; valueString?: unknown }[] } | null;
  if (!b || typeof b !== 'object' || b.resourceType !== 'Parameters') throw badRequest('$break-glass takes a Parameters resource with a reason', 'Parameters');
  const params = Array.isArray(b.parameter) ? b.parameter.filter((p) => p?.name === 'reason') : [];
  if (params.length !== 1) throw badRequest('$break-glass needs exactly one parameter named reason (valueString)', 'Parameters.parameter');
  const reason = params[0]!.valueString;
  if (typeof reason !== 'string' || reason.trim() === '') throw badRequest('The reason must be a non-empty valueString', "Parameters.parameter.where(name='reason').value");
  if (reason.length > MAX_REASON) throw badRequest(`The reason is longer than ${MAX_REASON} characters`, "Parameters.parameter.where(name='reason').value");
  return reason.trim();
}

/** Grants the calling clinician emergency access to a patient; answers the grant as Parameters. */
export async function breakGlass(ctx: FhirContext, patientId: string, body: unknown, opts: { minutes: number; ip?: string }): Promise<{ grant: GrantRecord; resource: Resource }> {
  const p = ctx.access.principal;
  if (p?.kind !== 'user' || !CLINICIAN_ROLES.includes(p.role)) throw new FhirError(403, 'Only doctors and nurses may use break-glass access', 'forbidden');
  const reason = reasonOf(body);
  // the patient must exist; the clinician is not assigned to it, so its row is read unnarrowed
  const patient = await readCurrent(ctx.db, definitionOf('Patient'), patientId);
  if (!patient || patient.deleted) throw notFound(`Patient/${patientId} is not known`);
  // the grant and its audit row commit together: no grant in force that the log does not show
  const grant = await inTransaction(ctx.db, async (trx) => {
    const g = await insertGrant(trx, { userId: p.userId, patientId, reason, now: new Date(), minutes: opts.minutes, ip: opts.ip });
    await ctx.audit({ action: 'break-glass', resourceType: 'Patient', resourceId: patientId, patientId, success: true, breakGlass: true, data: { grant: g.id, minutes: opts.minutes } }, trx);
    return g;
  });
  return {
    grant,
    resource: {
      resourceType: 'Parameters',
      parameter: [
        { name: 'grant', valueId: grant.id },
        { name: 'patient', valueReference: { reference: `Patient/${patientId}` } },
        { name: 'expires', valueInstant: sqlToInstant(grant.expiresAt) },
        { name: 'reason', valueString: reason },
      ],
    },
  };
}
