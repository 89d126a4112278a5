/**
 * The in-process job runner of the embedded mode (no REDIS_URL): the same queue declarations,
 * processors, retries, schedules and sweeper as the BullMQ workers, in the API's own process.
 * Jobs live in memory; the work that must not be lost is in job_outbox, which the sweeper reads
 * at start and every HMS_OUTBOX_SWEEP_SECONDS, so a crash loses nothing.
 */
import { CronExpressionParser } from 'cron-parser';
import { PermanentJobError, type JobDeps, type JobQueues, type JobState } from './jobs.js';
import { QUEUE_NAMES, QUEUES, type QueueName, type Schedule } from './queues.js';
import { isSuspect, RunGate, runJob } from './execute.js';
import { JobMetrics } from './metrics.js';

interface Queued { queue: QueueName; jobId: string; payload: Record<string, unknown>; attempt: number }

export interface LocalRunner extends JobQueues {
  readonly metrics: JobMetrics;
  /** Resolves when nothing is waiting, running or about to be retried (tests). */
  idle(): Promise<void>;
}

/** Milliseconds from now until a schedule next fires. */
export function nextDelay(schedule: Schedule, from: Date): number {
  if ('everyMs' in schedule) return schedule.everyMs;
  return Math.max(0, CronExpressionParser.parse(schedule.pattern, { currentDate: from }).next().toDate().getTime() - from.getTime());
}

export function startLocalRunner(deps: Omit<JobDeps, 'queues'>, opts: { schedules?: boolean } = {}): LocalRunner {
  const metrics = new JobMetrics();
  const waiting = new Map<QueueName, Queued[]>();
  const running = new Map<QueueName, number>();
  const held = new Map<string, JobState>(); // `${queue}/${jobId}` -> waiting | active | delayed
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();
  let closed = false;
  let idleWaiters: (() => void)[] = [];
  const key = (q: string, id: string) => `${q}/${id}`;

  const checkIdle = () => {
    if (held.size === 0 && inFlight.size === 0) { const w = idleWaiters; idleWaiters = []; for (const f of w) f(); }
  };

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    t.unref();
    timers.add(t);
  };

  const runner: LocalRunner = {
    mode: 'in-process',
    metrics,
    async enqueue(queue, jobId, payload) {
      if (closed) throw new Error('the job runner is closed');
      const q = queue as QueueName;
      if (held.has(key(q, jobId))) return;
      held.set(key(q, jobId), 'waiting');
      (waiting.get(q) ?? waiting.set(q, []).get(q)!).push({ queue: q, jobId, payload, attempt: 1 });
      pump(q);
    },
    async state(queue, jobId) {
      return held.get(key(queue, jobId)) ?? 'missing';
    },
    idle() {
      return new Promise<void>((resolve) => { idleWaiters.push(resolve); checkIdle(); });
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      waiting.clear();
      // running jobs finish; nothing new starts
      await Promise.allSettled([...inFlight]);
      held.clear();
      checkIdle();
    },
  };
  const fullDeps: JobDeps = { ...deps, queues: runner };
  const gate = new RunGate();

  function pump(q: QueueName): void {
    const list = waiting.get(q) ?? [];
    while (!closed && list.length && (running.get(q) ?? 0) < QUEUES[q].concurrency(deps.config)) {
      const job = list.shift()!;
      running.set(q, (running.get(q) ?? 0) + 1);
      held.set(key(q, job.jobId), 'active');
      const p = execute(job).finally(() => {
        running.set(q, running.get(q)! - 1);
        inFlight.delete(p);
        pump(q);
        checkIdle();
      });
      inFlight.add(p);
    }
  }

  async function execute(job: Queued): Promise<void> {
    const spec = QUEUES[job.queue];
    const maxAttempts = spec.attempts(deps.config);
    let leave: (() => void) | undefined;
    try {
      // recorded work whose last start died with its process (a crash) runs alone (RunGate)
      if (spec.outbox) leave = await gate.enter(await isSuspect(fullDeps, job.queue, job.jobId));
      await runJob({ queue: job.queue, jobId: job.jobId, payload: job.payload, attempt: job.attempt, maxAttempts }, fullDeps, metrics);
      held.delete(key(job.queue, job.jobId));
    } catch (err) {
      if (err instanceof PermanentJobError || job.attempt >= maxAttempts || closed) { held.delete(key(job.queue, job.jobId)); return; }
      held.set(key(job.queue, job.jobId), 'delayed');
      later(spec.backoffMs * 2 ** (job.attempt - 1), () => {
        if (closed) return;
        held.set(key(job.queue, job.jobId), 'waiting');
        (waiting.get(job.queue) ?? waiting.set(job.queue, []).get(job.queue)!).push({ ...job, attempt: job.attempt + 1 });
        pump(job.queue);
      });
    } finally {
      leave?.();
    }
  }

  function schedule(q: QueueName, s: Schedule): void {
    let delay: number;
    try {
      delay = nextDelay(s, deps.now());
    } catch (err) {
      deps.log.error({ queue: q, err }, 'invalid schedule: the queue does not run by itself');
      return;
    }
    later(delay, () => {
      if (closed) return;
      runner.enqueue(q, `${q}:${deps.now().toISOString()}`, {}).catch(() => undefined);
      schedule(q, s);
    });
  }

  if (opts.schedules !== false) {
    for (const q of QUEUE_NAMES) {
      const s = QUEUES[q].schedule?.(deps.config);
      if (s) schedule(q, s);
    }
    // recorded work left unfinished by an earlier process is taken up at once
    runner.enqueue('outbox-sweep', 'outbox-sweep:start', {}).catch(() => undefined);
  }
  return runner;
}
