/**
 * Export expiry (queue export-expiry, every 10 minutes by default; docs/bulk-data.md): removes the
 * files of Bulk Data exports past their expiry (HMS_EXPORT_RETENTION_MINUTES after they finished)
 * and of cancelled ones, and marks them expired. The status URL and the files answer 404 from the
 * moment of expiry already; this only reclaims the disk. The row stays, as the record of the export.
 */
import { rm } from 'node:fs/promises';
import type { JobDeps, JobResult } from '../jobs.js';
import { expiredExports, exportDir, markExpired } from '../../fhir/bulk/export-jobs.js';

export async function exportExpiry(_payload: Record<string, never>, deps: JobDeps): Promise<JobResult> {
  let removed = 0;
  for (;;) {
    if (deps.signal?.aborted) break;
    const ids = await expiredExports(deps.db, deps.now(), 100);
    for (const id of ids) {
      await rm(exportDir(deps.config.HMS_EXPORT_DIR, id), { recursive: true, force: true });
      await markExpired(deps.db, id);
      removed++;
    }
    if (ids.length < 100) break;
  }
  return { removed };
}
