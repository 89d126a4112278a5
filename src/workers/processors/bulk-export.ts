/**
 * Runs a Bulk Data $export job (docs/bulk-data.md): as the caller that started it (a user with
 * their role and reach today, or a client with the scope its token was granted), streams the
 * export's NDJSON files into HMS_EXPORT_DIR/<id>/ and records the manifest. A run started again
 * (a worker died) starts over. DELETE of the status URL stops a run at its next page.
 */
import type { Knex } from 'knex';
import { rm } from 'node:fs/promises';
import { PermanentJobError, type JobDeps, type JobResult } from '../jobs.js';
import { workerContext } from '../context.js';
import type { Principal } from '../../auth/principal.js';
import type { ClientKind, Role } from '../../auth/principal.js';
import { parseScopes } from '../../auth/scopes.js';
import { FhirError } from '../../fhir/outcome.js';
import type { FhirContext } from '../../fhir/context.js';
import { readResource } from '../../fhir/interactions.js';
import { writeExport } from '../../fhir/bulk/export-writer.js';
import { exportDir, failExport, findExport, finishExport, markRunning, reportProgress, type ExportJob } from '../../fhir/bulk/export-jobs.js';
import { referenceShape } from '../../fhir/references.js';

/** The caller who started the job, as they are now (a user deactivated since cannot export). */
async function starterOf(db: Knex, job: ExportJob): Promise<Principal> {
  if (job.clientId) {
    const client = await db('api_clients').where({ id: job.clientId, status: 'active' }).first('kind');
    if (!client) throw new PermanentJobError(`Export ${job.id}: its client is no longer active`);
    const scope = job.scope ?? '';
    return { kind: 'client', clientId: job.clientId, clientKind: client.kind as ClientKind, scope, scopes: parseScopes(scope).scopes, tokenId: `export:${job.id}` };
  }
  if (job.userId) {
    const user = await db('users as u').leftJoin('patients as p', (j) => { j.on('p.user_id', '=', 'u.id').andOnNull('p.deleted_at'); })
      .where('u.id', job.userId).andWhere('u.status', 'active').whereNull('u.deleted_at').first('u.role', 'p.id as patientId');
    if (!user) throw new PermanentJobError(`Export ${job.id}: its user is no longer active`);
    return { kind: 'user', userId: job.userId, role: user.role as Role, sessionId: `export:${job.id}`, grants: [], ...(user.patientId ? { patientId: String(user.patientId) } : {}) };
  }
  throw new PermanentJobError(`Export ${job.id} has no caller`);
}

/** The patients of a Group (members not inactive, named as Patient/id), read as the caller (its access, audited). */
async function groupMembers(ctx: FhirContext, groupId: string): Promise<string[]> {
  const group = await readResource(ctx, 'Group', groupId) as { member?: { entity?: { reference?: string }; inactive?: boolean }[] };
  const ids = new Set<string>();
  for (const m of group.member ?? []) {
    if (m.inactive === true || typeof m.entity?.reference !== 'string') continue;
    const shape = referenceShape(m.entity.reference);
    if (typeof shape !== 'string' && shape.kind === 'relative' && shape.type === 'Patient') ids.add(shape.id);
  }
  return [...ids];
}

export async function bulkExport(payload: { exportId: string }, deps: JobDeps): Promise<JobResult> {
  const id = payload.exportId;
  const job = await findExport(deps.db, id);
  if (!job) throw new PermanentJobError(`No bulk export ${id}`);
  if (job.status !== 'queued' && job.status !== 'running') return { exportId: id, skipped: job.status };
  if (!(await markRunning(deps.db, id))) return { exportId: id, skipped: 'finished meanwhile' };
  const retention = deps.config.HMS_EXPORT_RETENTION_MINUTES;
  const dir = exportDir(deps.config.HMS_EXPORT_DIR, id);
  // a run started again starts from nothing
  await rm(dir, { recursive: true, force: true });
  let result;
  try {
    const ctx = workerContext(deps, { principal: await starterOf(deps.db, job), job: { queue: 'bulk-export', id } });
    const patients = job.level === 'group' ? await groupMembers(ctx, job.groupId!) : undefined;
    result = await writeExport(ctx, job.level, job.params, {
      dir, patients, auditData: { export: id },
      onPage: (p) => (deps.signal?.aborted ? Promise.resolve(false) : reportProgress(deps.db, id, `${p.type} (${p.typeIndex + 1} of ${p.types} types), ${p.resources} resources`)),
    });
  } catch (err) {
    // the caller's rights or the request (a Group gone, a scope withdrawn): running again cannot mend it
    const refused = err instanceof PermanentJobError ? err.message : err instanceof FhirError && err.status < 500 && err.status !== 409 && err.status !== 429 ? err.message : undefined;
    if (refused === undefined) throw err;
    await rm(dir, { recursive: true, force: true });
    await failExport(deps.db, id, refused, retention, true);
    throw new PermanentJobError(`Export ${id}: ${refused}`);
  }
  if (result.stopped) {
    await rm(dir, { recursive: true, force: true });
    // cancelled: removed; a shutdown: the job runs again (its row is still running)
    if (deps.signal?.aborted) throw new Error(`Export ${id} interrupted by shutdown`);
    return { exportId: id, cancelled: true, resources: result.resources };
  }
  if (!(await finishExport(deps.db, id, result.output, retention))) {
    await rm(dir, { recursive: true, force: true });
    return { exportId: id, cancelled: true, resources: result.resources };
  }
  return { exportId: id, files: result.output.length, resources: result.resources, patients: result.patients };
}
