/**
 * BullMQ over ioredis, as BullMQ's production guide says: workers block on Redis and keep
 * retrying (maxRetriesPerRequest: null), producers fail fast (no offline queue) so that the API
 * answers at once when Redis is down; every connection has an error listener. Redis must run with
 * maxmemory-policy noeviction (docs/jobs.md). https://docs.bullmq.io/guide/going-to-production
 */
import { Queue, UnrecoverableError, Worker, type Job, type JobsOptions } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import { redisClient } from './redis.js';
import type { Config } from '../config.js';
import { PermanentJobError, type JobDeps, type JobLogger, type JobQueues, type JobState } from './jobs.js';
import { QUEUE_NAMES, QUEUES, schedulerId, type QueueName } from './queues.js';
import { isSuspect, RunGate, runJob } from './execute.js';
import type { JobMetrics } from './metrics.js';

function connection(url: string, log: JobLogger, role: 'producer' | 'worker'): Redis {
  const opts: RedisOptions = role === 'worker'
    ? { maxRetriesPerRequest: null, enableOfflineQueue: true }
    : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 };
  const redis = redisClient(url, opts);
  redis.on('error', (err: Error) => log.warn({ role, err }, 'redis connection error'));
  return redis;
}

/** What a job of a queue is added with: attempts, exponential backoff, how long finished jobs are kept. */
export function jobOptions(queue: QueueName, config: Config): JobsOptions {
  const spec = QUEUES[queue];
  return {
    attempts: spec.attempts(config),
    backoff: { type: 'exponential', delay: spec.backoffMs },
    // finished jobs are kept a while for the dashboard; the database keeps the outcome for good
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
  };
}

const STATES: Record<string, JobState> = {
  waiting: 'waiting', 'waiting-children': 'waiting', prioritized: 'waiting', active: 'active', delayed: 'delayed', completed: 'completed', failed: 'failed',
};

/** How long an enqueue waits for a producer connection that is not up (it is reconnecting, or starting). */
const READY_WAIT_MS = 1000;

/** Producers of every queue over one fail-fast connection. */
export class BullQueues implements JobQueues {
  readonly mode = 'bullmq' as const;
  private readonly redis: Redis;
  private readonly queues = new Map<QueueName, Queue>();

  constructor(private readonly config: Config, log: JobLogger) {
    this.redis = connection(config.REDIS_URL!, log, 'producer');
  }

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.redis, prefix: this.config.HMS_QUEUE_PREFIX });
      q.on('error', () => undefined); // the connection's listener logs it
      this.queues.set(name, q);
    }
    return q;
  }

  all(): Queue[] {
    return QUEUE_NAMES.map((n) => this.queue(n));
  }

  /**
   * Rejects at once when the connection is down, and waits a moment for one being opened:
   * BullMQ makes a queue first used while Redis is down wait until it is back, which would hold
   * a request (an API started during an outage) for as long as the outage lasts.
   */
  private async connected(): Promise<void> {
    const redis = this.redis;
    if (redis.status === 'ready') return;
    // reconnecting (Redis went away) or closed: at once; a connection being opened: a moment
    if (redis.status !== 'wait' && redis.status !== 'connecting' && redis.status !== 'connect') throw new Error(`Redis is not reachable (connection ${redis.status})`);
    if (redis.status === 'wait') redis.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const onReady = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(() => {
        redis.off('ready', onReady);
        reject(new Error(`Redis is not reachable (connection ${redis.status})`));
      }, READY_WAIT_MS);
      redis.once('ready', onReady);
    });
  }

  async enqueue(queue: string, jobId: string, payload: Record<string, unknown>, opts: { replace?: boolean } = {}): Promise<void> {
    await this.connected();
    const q = this.queue(queue as QueueName);
    if (opts.replace) {
      const existing = await q.getJob(jobId);
      if (existing) {
        const state = await existing.getState();
        if (state === 'completed' || state === 'failed') await existing.remove();
      }
    }
    await q.add(queue, payload, { ...jobOptions(queue as QueueName, this.config), jobId });
  }

  async state(queue: string, jobId: string): Promise<JobState> {
    await this.connected();
    const job = await this.queue(queue as QueueName).getJob(jobId);
    if (!job) return 'missing';
    return STATES[await job.getState()] ?? 'missing';
  }

  /** Creates or updates each queue's job scheduler (stable ids: any number of workers may do it), removes disabled ones. */
  async upsertSchedules(): Promise<void> {
    for (const name of QUEUE_NAMES) {
      // the sweeper runs on each worker's own timer: it must run when Redis has lost everything, its schedulers too
      const schedule = name === 'outbox-sweep' ? undefined : QUEUES[name].schedule?.(this.config);
      const q = this.queue(name);
      if (!schedule) { await q.removeJobScheduler(schedulerId(name)); continue; }
      const repeat = 'pattern' in schedule ? { pattern: schedule.pattern } : { every: schedule.everyMs };
      const { attempts, backoff, removeOnComplete, removeOnFail } = jobOptions(name, this.config);
      await q.upsertJobScheduler(schedulerId(name), repeat, { name, data: {}, opts: { attempts, backoff, removeOnComplete, removeOnFail } });
    }
  }

  async close(): Promise<void> {
    // a queue's close waits for Redis: when it is down, the connection is dropped after a moment
    const closed = Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    this.redis.disconnect();
  }
}

export interface BullWorkers {
  close(): Promise<void>;
}

/**
 * One BullMQ Worker per queue, each wrapping runJob: a PermanentJobError becomes BullMQ's
 * UnrecoverableError (no retries); anything else is retried with the queue's backoff.
 */
export function startBullWorkers(deps: JobDeps, metrics: JobMetrics, queues: QueueName[] = [...QUEUE_NAMES]): BullWorkers {
  const { config, log } = deps;
  const lockDuration = config.HMS_JOB_LOCK_SECONDS * 1000;
  // one gate for the process: recorded work whose last start died with its process runs alone
  const gate = new RunGate();
  const running = new Set<Promise<unknown>>();
  const connections: Redis[] = [];
  const workers = queues.map((name) => {
    const processor = async (job: Job): Promise<unknown> => {
      const jobId = String(job.id);
      const suspect = await isSuspect(deps, name, jobId);
      if (suspect) log.warn({ queue: name, jobId }, 'job runs alone: its last start did not finish');
      const leave = QUEUES[name].outbox ? await gate.enter(suspect) : undefined;
      try {
        return await runJob({ queue: name, jobId, payload: (job.data ?? {}) as Record<string, unknown>, attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1 }, deps, metrics);
      } catch (err) {
        if (err instanceof PermanentJobError) throw new UnrecoverableError(err.message);
        throw err;
      } finally {
        leave?.();
      }
    };
    const redis = connection(config.REDIS_URL!, log, 'worker');
    connections.push(redis);
    const worker = new Worker(name, (job: Job) => {
      const run = processor(job);
      running.add(run);
      return run.finally(() => running.delete(run));
    }, {
      connection: redis,
      prefix: config.HMS_QUEUE_PREFIX,
      concurrency: QUEUES[name].concurrency(config),
      lockDuration,
      stalledInterval: lockDuration,
      maxStalledCount: 1,
    });
    worker.on('error', (err) => log.warn({ queue: name, err }, 'worker error'));
    return worker;
  });
  return {
    async close() {
      // close() without force lets the running jobs finish. It also waits for Redis, for ever
      // when Redis is down: once the running jobs have ended, BullMQ is given a few seconds to
      // record them, and then the connections are dropped (a job whose end was not recorded
      // stalls and runs again; the database knows it is done)
      const graceful = Promise.all(workers.map((w) => w.close()));
      const jobsEnded = (async () => {
        while (running.size) await Promise.allSettled([...running]);
        await new Promise((r) => setTimeout(r, CLOSE_GRACE_MS).unref());
        return 'timeout' as const;
      })();
      if ((await Promise.race([graceful, jobsEnded])) !== 'timeout') return;
      log.warn({ redis: connections.map((c) => c.status) }, 'workers not closed in time (Redis unreachable?): dropping their connections');
      for (const c of connections) c.disconnect();
      await Promise.race([Promise.all(workers.map((w) => w.close(true).catch(() => undefined))), new Promise((r) => setTimeout(r, 1000).unref())]);
    },
  };
}

/** After the running jobs ended, how long a closing worker waits for BullMQ to record them. */
const CLOSE_GRACE_MS = 5000;
