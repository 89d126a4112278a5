/**
 * The sweeper: recorded work (job_outbox) that stayed queued or active longer than
 * HMS_OUTBOX_STALE_SECONDS and that the transport no longer holds as waiting, delayed or active
 * (Redis flushed, never enqueued because Redis was down, retries exhausted, a worker killed) is
 * enqueued again. Work started HMS_JOB_ATTEMPTS times without ever finishing (it kills its
 * worker) is failed for good, and its owner told (the lab message gets its OperationOutcome).
 * Done rows older than DONE_KEPT_DAYS are removed, a batch per sweep.
 */
import { PermanentJobError, type JobDeps, type JobResult } from '../jobs.js';
import { abandonReason, exhausted, finishAttempt, markEnqueued, purgeFinished, staleRows } from '../outbox.js';

const BATCH = 500;
/** Days a done outbox row is kept (the work's own record, e.g. the lab message, stays). */
export const DONE_KEPT_DAYS = 7;

/** What the sweeper needs to know of a queue (src/workers/queues.ts). */
export interface SweptQueue {
  attempts(config: JobDeps['config']): number;
  abandon?(payload: unknown, reason: string, deps: JobDeps): Promise<void>;
}

export async function outboxSweep(_payload: Record<string, never>, deps: JobDeps, queuesByName: Record<string, SweptQueue>): Promise<JobResult> {
  const queues = deps.queues;
  if (!queues) throw new PermanentJobError('The sweeper needs a job transport');
  const before = new Date(deps.now().getTime() - deps.config.HMS_OUTBOX_STALE_SECONDS * 1000);
  let examined = 0, requeued = 0, live = 0, abandoned = 0, unreachable = 0;
  for (const row of await staleRows(deps.db, before, BATCH)) {
    examined++;
    const spec = queuesByName[row.queue];
    if (!spec) continue;
    let state;
    try {
      state = await queues.state(row.queue, row.id);
    } catch (err) {
      unreachable++;
      deps.log.warn({ queue: row.queue, jobId: row.id, err }, 'sweeper: transport unreachable');
      break;
    }
    if (state === 'waiting' || state === 'active' || state === 'delayed') { live++; continue; }
    if (exhausted(row, spec.attempts(deps.config))) {
      const reason = abandonReason(row.attempts);
      await spec.abandon?.(row.payload, reason, deps);
      await finishAttempt(deps.db, row.id, 'failed', reason);
      abandoned++;
      deps.log.error({ queue: row.queue, jobId: row.id, attempts: row.attempts }, 'sweeper: work abandoned');
      continue;
    }
    try {
      await queues.enqueue(row.queue, row.id, row.payload, { replace: true });
      await markEnqueued(deps.db, row.id);
      requeued++;
    } catch (err) {
      unreachable++;
      deps.log.warn({ queue: row.queue, jobId: row.id, err }, 'sweeper: could not enqueue');
      break;
    }
  }
  if (requeued || abandoned) deps.log.info({ examined, requeued, abandoned }, 'sweeper: recorded work enqueued again');
  const purged = await purgeFinished(deps.db, new Date(deps.now().getTime() - DONE_KEPT_DAYS * 86_400_000));
  return { examined, requeued, live, abandoned, unreachable, purged };
}
