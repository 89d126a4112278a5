/**
 * Queue audit-archive (daily by default): moves security_logs rows older than the online
 * retention (HMS_AUDIT_RETENTION_DAYS) to verified, compressed NDJSON files under
 * HMS_AUDIT_ARCHIVE_DIR, with a manifest row per file (src/db/audit-archive.ts,
 * docs/audit-log.md). Idempotent: a run moves only rows no manifest holds, under the archive lock
 * (two workers never move a row twice), and a run killed half-way is completed by the next one.
 * After a move, one security_logs row records the run itself (action audit-archive, role system).
 */
import { join } from 'node:path';
import { AuditArchiveError, archiveAuditLog } from '../../db/audit-archive.js';
import { parseBackupKeys } from '../../backup/crypt.js';
import { PermanentJobError, type JobDeps, type JobResult } from '../jobs.js';

export interface AuditArchivePayload {
  /** ISO instant: rows recorded before it move (default: now - HMS_AUDIT_RETENTION_DAYS). */
  before?: string;
}

const DAY_MS = 86_400_000;

/** The cutoff of a run: the payload's instant (not in the future), else now minus the retention. */
export function archiveCutoff(payload: AuditArchivePayload, deps: Pick<JobDeps, 'config' | 'now'>): Date {
  const now = deps.now();
  if (payload.before === undefined) return new Date(now.getTime() - deps.config.HMS_AUDIT_RETENTION_DAYS * DAY_MS);
  const before = new Date(payload.before);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(payload.before) || Number.isNaN(before.getTime())) throw new PermanentJobError(`audit-archive: before is not an ISO instant: ${payload.before}`);
  if (before.getTime() > now.getTime()) throw new PermanentJobError(`audit-archive: before (${payload.before}) is in the future: only rows already recorded can be archived`);
  return before;
}

export async function auditArchive(payload: AuditArchivePayload, deps: JobDeps): Promise<JobResult> {
  const before = archiveCutoff(payload ?? {}, deps);
  let moved;
  try {
    moved = await archiveAuditLog(deps.db, {
      archiveDir: deps.config.HMS_AUDIT_ARCHIVE_DIR ?? join(deps.config.HMS_DATA_DIR, 'audit-archive'),
      before,
      signal: deps.signal,
      log: deps.log,
      // with HMS_BACKUP_KEYS the files are encrypted at rest with its first key
      key: parseBackupKeys(deps.config.HMS_BACKUP_KEYS)[0],
    });
  } catch (err) {
    if (err instanceof AuditArchiveError && err.permanent) throw new PermanentJobError(err.message);
    throw err;
  }
  const result = { files: moved.files, rows: moved.rows, firstSeq: moved.firstSeq, lastSeq: moved.lastSeq };
  if (moved.rows > 0) {
    await deps.auditLog.record({
      action: 'audit-archive', role: 'system', success: true,
      additionalData: { ...result, fileNames: moved.fileNames, before: before.toISOString() },
    });
  }
  return { ...result, before: before.toISOString(), ...(moved.busy ? { busy: true } : {}), ...(moved.removed.length ? { removed: moved.removed.length } : {}) };
}
