/**
 * Bulk Data $export: the queue is declared, recorded work is swept, but the processing itself
 * belongs to the record-exchange work. Until then a job fails at once, saying so.
 */
import { PermanentJobError, type JobDeps, type JobResult } from '../jobs.js';

export async function bulkExport(payload: { exportId: string }, _deps: JobDeps): Promise<JobResult> {
  throw new PermanentJobError(`Bulk export ${payload.exportId}: $export processing is not implemented yet`);
}
