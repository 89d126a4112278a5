/**
 * One run of a job, whoever runs it (a BullMQ worker, the in-process runner, `hms jobs run`):
 * the payload checked, recorded work marked in the outbox, the processor called, the run logged
 * as one structured line and counted, the last run of a scheduled queue noted (job_last_runs).
 */
import type { Knex } from 'knex';
import { errorForLog } from '../logger.js';
import { nowSeconds } from '../db/resource-repository.js';
import { PermanentJobError, type JobDeps, type JobResult } from './jobs.js';
import { checkPayload, QUEUES, type QueueName } from './queues.js';
import { abandonReason, exhausted, finishAttempt, outboxRow, startAttempt } from './outbox.js';
import type { JobMetrics } from './metrics.js';

export interface RunInput {
  queue: QueueName;
  jobId: string;
  payload: Record<string, unknown>;
  /** 1-based attempt number and the attempts allowed: the last one failing fails the job. */
  attempt: number;
  maxAttempts: number;
}


async function noteRun(db: Knex, queue: QueueName, values: Record<string, unknown>): Promise<void> {
  try {
    await db('job_last_runs').insert({ queue, job_id: values.job_id, status: 'running', started_at: values.started_at, runs: 0, failures: 0 }).onConflict('queue').ignore();
    await db('job_last_runs').where({ queue }).update(values);
  } catch {
    // bookkeeping only: a run is not failed because its note could not be written
  }
}

/**
 * The runs of recorded work in one process. Work whose previous start never finished (its outbox
 * row is still active: the process running it died) is a suspect: it runs alone, once the
 * process's other runs have ended and with none starting beside it. A message that kills its
 * process then takes no other message with it, and those that died beside it once run alone
 * next time and finish, instead of being blamed (and abandoned) with it. First come, first served.
 */
export class RunGate {
  private shared = 0;
  private alone = false;
  private readonly waiting: { alone: boolean; go: () => void }[] = [];

  /** Waits for its turn; resolves with the function that ends the run. */
  async enter(alone: boolean): Promise<() => void> {
    if (this.waiting.length === 0 && this.fits(alone)) this.take(alone);
    else await new Promise<void>((go) => this.waiting.push({ alone, go }));
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (alone) this.alone = false;
      else this.shared--;
      while (this.waiting.length && this.fits(this.waiting[0]!.alone)) {
        const next = this.waiting.shift()!;
        this.take(next.alone);
        next.go();
      }
    };
  }

  private fits(alone: boolean): boolean {
    return alone ? !this.alone && this.shared === 0 : !this.alone;
  }

  private take(alone: boolean): void {
    if (alone) this.alone = true;
    else this.shared++;
  }
}

/** Whether a job is recorded work whose last start did not finish (it is to run alone: RunGate). */
export async function isSuspect(deps: JobDeps, queue: QueueName, jobId: string): Promise<boolean> {
  if (!QUEUES[queue].outbox) return false;
  return (await outboxRow(deps.db, jobId))?.status === 'active';
}

/** Runs a job once; resolves with its result, or rejects (a PermanentJobError when retrying cannot help). */
export async function runJob(input: RunInput, deps: JobDeps, metrics?: JobMetrics): Promise<JobResult> {
  const spec = QUEUES[input.queue];
  const base = { queue: input.queue, jobId: input.jobId, attempt: input.attempt };
  try {
    checkPayload(input.queue, input.payload);
  } catch (err) {
    deps.log.error({ ...base, err }, 'job refused: invalid payload');
    throw new PermanentJobError((err as Error).message);
  }
  if (spec.outbox) {
    const limit = spec.attempts(deps.config);
    const row = await startAttempt(deps.db, input.jobId, limit);
    if (!row) throw new PermanentJobError(`No recorded work ${input.jobId} in the outbox`);
    if (row.status === 'done' || row.status === 'failed') {
      deps.log.info({ ...base, status: row.status }, 'job skipped: already finished');
      return { skipped: row.status };
    }
    if (exhausted(row, limit)) {
      // started HMS_JOB_ATTEMPTS times and never finished (it ends its process): not a start more
      const reason = abandonReason(row.attempts);
      await spec.abandon?.(row.payload, reason, deps);
      await finishAttempt(deps.db, input.jobId, 'failed', reason);
      metrics?.record(input.queue, 'failed', 0);
      deps.log.error({ ...base, attempts: row.attempts }, 'job abandoned: it never finished');
      throw new PermanentJobError(reason);
    }
  }
  const scheduled = spec.schedule !== undefined;
  const startedAt = nowSeconds().sql;
  if (scheduled) await noteRun(deps.db, input.queue, { job_id: input.jobId.slice(0, 191), status: 'running', started_at: startedAt, finished_at: null, duration_ms: null, error: null });
  const t0 = performance.now();
  try {
    const result = await spec.processor(input.payload, deps);
    const durationMs = Math.round(performance.now() - t0);
    if (spec.outbox) await finishAttempt(deps.db, input.jobId, 'done');
    if (scheduled) {
      await noteRun(deps.db, input.queue, {
        job_id: input.jobId.slice(0, 191), status: 'completed', started_at: startedAt, finished_at: nowSeconds().sql, duration_ms: durationMs,
        result: JSON.stringify(result), error: null, runs: deps.db.raw('runs + 1'),
      });
    }
    metrics?.record(input.queue, 'completed', durationMs);
    deps.log.info({ ...base, durationMs, result }, 'job completed');
    return result;
  } catch (err) {
    const durationMs = Math.round(performance.now() - t0);
    const permanent = err instanceof PermanentJobError;
    const final = permanent || input.attempt >= input.maxAttempts;
    const logged = errorForLog(err);
    // the outbox row goes back to queued after a transient failure: when the retries run out, the sweeper takes it up again
    if (spec.outbox) await finishAttempt(deps.db, input.jobId, permanent ? 'failed' : 'queued', logged.message).catch(() => undefined);
    if (scheduled) {
      await noteRun(deps.db, input.queue, {
        job_id: input.jobId.slice(0, 191), status: 'failed', started_at: startedAt, finished_at: nowSeconds().sql, duration_ms: durationMs,
        error: logged.message.slice(0, 2000), runs: deps.db.raw('runs + 1'), failures: deps.db.raw('failures + 1'),
      });
    }
    metrics?.record(input.queue, final ? 'failed' : 'retry', durationMs);
    deps.log[final ? 'error' : 'warn']({ ...base, durationMs, permanent, willRetry: !final, err }, final ? 'job failed' : 'job failed, will retry');
    throw err;
  }
}
