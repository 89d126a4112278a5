/**
 * A worker process (`hms worker`): BullMQ workers for every queue (or those named), the queues'
 * job schedulers upserted under their stable ids (any number of worker processes may run, on any
 * machines), optionally the MLLP listener, and a structured line of per-queue figures each
 * minute. Shutdown (SIGTERM) stops the listener, asks long runs to stop between batches, lets
 * running jobs finish, then closes Redis and the database.
 */
import { pino } from 'pino';
import type { Config } from '../config.js';
import { createDb } from '../db/knex.js';
import { AuditLog } from '../db/audit-log.js';
import { loggerOptions } from '../logger.js';
import { runJob } from './execute.js';
import { startMllpServer } from '../ingest/mllp.js';
import { mllpClient, mllpHandler } from '../ingest/mllp-intake.js';
import { BullQueues, startBullWorkers } from './bullmq.js';
import { JobMetrics } from './metrics.js';
import { outboxGauge, processRegistry } from '../metrics/collectors.js';
import { serveRegistry, type MetricsServer } from '../metrics/serve.js';
import type { JobDeps, JobLogger } from './jobs.js';
import { QUEUE_NAMES, type QueueName } from './queues.js';
import type { Knex } from 'knex';
import '../fhir/resources/index.js';
import { allResourceDefinitions } from '../fhir/registry.js';
import { warmValidators } from '../fhir/validate.js';

export interface WorkerProcess {
  /** The MLLP listener's port, when it listens. */
  mllpPort?: number;
  /** The port /metrics is served on (HMS_METRICS_PORT), when it is. */
  metricsPort?: number;
  metrics: JobMetrics;
  close(): Promise<void>;
}

export function workerLogger(config: Config): JobLogger {
  return pino(loggerOptions(config.LOG_LEVEL) as object) as unknown as JobLogger;
}

export interface MllpOptions { db: Knex; config: Config; log: JobLogger; auditLog: AuditLog; queues: JobDeps['queues']; port: number }

/** Starts the MLLP listener when a port is given (HMS_MLLP_CLIENT must name an active lab client). */
export async function startMllp(o: MllpOptions): Promise<{ port: number; close(): Promise<void> }> {
  const clientId = o.config.HMS_MLLP_CLIENT;
  if (!clientId) throw new Error('The MLLP listener needs HMS_MLLP_CLIENT: the registered lab client its messages are attributed to');
  await mllpClient(o.db, clientId); // fails now, not at the first message, when it is not a usable lab client
  const onMessage = mllpHandler({ db: o.db, auditLog: o.auditLog, queues: o.queues, log: o.log, clientId, facilities: o.config.HMS_LAB_FACILITIES });
  return startMllpServer({ host: o.config.HMS_MLLP_HOST, port: o.port, onMessage, log: o.log });
}

/**
 * Each worker's own timers: the sweeper every HMS_OUTBOX_SWEEP_SECONDS (it is what recovers work
 * when Redis lost it, so it cannot live in Redis), and the schedulers upserted again every five
 * minutes (a Redis restarted empty has lost them too). Runs overlapping on several workers are
 * harmless: enqueueing a job id twice makes one job.
 */
function maintenance(deps: JobDeps, queues: BullQueues, metrics: JobMetrics): { stop(): void } {
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    runJob({ queue: 'outbox-sweep', jobId: `outbox-sweep:${Date.now()}`, payload: {}, attempt: 1, maxAttempts: 1 }, deps, metrics)
      .catch(() => undefined).finally(() => { sweeping = false; });
  }, deps.config.HMS_OUTBOX_SWEEP_SECONDS * 1000);
  const schedules = setInterval(() => {
    queues.upsertSchedules().catch((err: unknown) => deps.log.warn({ err }, 'job schedulers not upserted'));
  }, 300_000);
  sweep.unref();
  schedules.unref();
  return { stop: () => { clearInterval(sweep); clearInterval(schedules); } };
}

/** The worker's metrics (its jobs' runs and durations, the outbox, Node's figures) on HMS_METRICS_PORT, when set. */
async function serveMetrics(config: Config, db: Knex, metrics: JobMetrics): Promise<MetricsServer | undefined> {
  if (config.HMS_METRICS === 'off' || config.HMS_METRICS_PORT === undefined) return undefined;
  const registry = processRegistry();
  metrics.attach(registry);
  outboxGauge(registry, db);
  return serveRegistry(registry, config.HMS_METRICS_PORT, config.HMS_METRICS_HOST);
}

export async function startWorker(config: Config, opts: { mllpPort?: number; queues?: QueueName[]; log?: JobLogger } = {}): Promise<WorkerProcess> {
  if (!config.REDIS_URL) throw new Error('hms worker needs REDIS_URL (without Redis, `hms start` runs the same jobs in-process)');
  const log = opts.log ?? workerLogger(config);
  const db = createDb(config);
  const auditLog = new AuditLog(db);
  const queues = new BullQueues(config, log);
  const metrics = new JobMetrics();
  const abort = new AbortController();
  const deps: JobDeps = { db, config, log, auditLog, now: () => new Date(), signal: abort.signal, queues };
  // the FHIR validators compiled before the first job, as the API does before it serves: compiled
  // by the first jobs, they block the event loop for seconds, past the jobs' locks (BullMQ would
  // take them for stalled and run them again elsewhere)
  warmValidators(allResourceDefinitions().map((d) => d.type));
  await queues.upsertSchedules();
  const workers = startBullWorkers(deps, metrics, (opts.queues ?? [...QUEUE_NAMES]).filter((q) => q !== 'outbox-sweep'));
  const timers = maintenance(deps, queues, metrics);
  const port = opts.mllpPort ?? config.HMS_MLLP_PORT;
  const mllp = port !== undefined ? await startMllp({ db, config, log, auditLog, queues, port }) : undefined;
  const served = await serveMetrics(config, db, metrics);
  const figures = setInterval(() => log.info({ queues: metrics.snapshot() }, 'job figures'), 60_000);
  figures.unref();
  log.info({ queues: opts.queues ?? 'all', mllp: mllp?.port }, 'worker started');
  return {
    mllpPort: mllp?.port,
    metricsPort: served?.port,
    metrics,
    async close() {
      clearInterval(figures);
      await served?.close();
      timers.stop();
      await mllp?.close();
      abort.abort();
      await workers.close();
      await auditLog.settle();
      await queues.close();
      await db.destroy();
      log.info({ queues: metrics.snapshot() }, 'worker stopped');
    },
  };
}
