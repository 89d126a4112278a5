/**
 * `hms worker`, `hms jobs run` and `hms jobs status` (docs/jobs.md).
 */
import { onShutdownSignals } from './shutdown.js';
import { parseArgs } from 'node:util';
import type { Config } from './config.js';
import { createDb } from './db/knex.js';
import { AuditLog } from './db/audit-log.js';
import { startWorker, workerLogger } from './workers/worker.js';
import { BullQueues } from './workers/bullmq.js';
import { startLocalRunner } from './workers/local-runner.js';
import { runJob } from './workers/execute.js';
import { outboxCounts } from './workers/outbox.js';
import { isQueueName, QUEUE_NAMES, QUEUES, schedulerId, type QueueName } from './workers/queues.js';
import type { JobDeps, JobQueues } from './workers/jobs.js';
import { errorForLog } from './logger.js';

export const JOBS_USAGE = `  worker [--mllp PORT] [--queues Q1,Q2]
                              run the background jobs on BullMQ (needs REDIS_URL; run as many as
                              you like, on any machines); --mllp also listens for HL7 v2 over MLLP
  jobs run NAME [--as-of YYYY-MM-DD] [--before ISO-INSTANT] [--message ID]
                              run one job now, in this process, and print its result (queues:
                              ${QUEUE_NAMES.join(', ')})
  jobs status                 each queue's waiting / active / delayed / failed jobs, its schedule
                              and its last run, and the recorded work not yet done`;

function fail(message: string): never {
  process.stderr.write(`hms: ${message}\n`);
  process.exit(1);
}

/** `hms worker`: runs until SIGTERM / SIGINT, then shuts down gracefully. */
export async function workerCommand(config: Config, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { mllp: { type: 'string' }, queues: { type: 'string' } } });
  const mllpPort = values.mllp === undefined ? undefined : Number(values.mllp);
  if (mllpPort !== undefined && !(Number.isInteger(mllpPort) && mllpPort >= 0 && mllpPort <= 65535)) fail('--mllp needs a TCP port (0-65535)');
  const queues = values.queues?.split(',').map((q) => q.trim()).filter(Boolean);
  for (const q of queues ?? []) if (!isQueueName(q)) fail(`unknown queue ${q} (queues: ${QUEUE_NAMES.join(', ')})`);
  let worker;
  try {
    worker = await startWorker(config, { mllpPort, queues: queues as QueueName[] | undefined });
  } catch (err) {
    fail((err as Error).message);
  }
  if (worker.mllpPort !== undefined) process.stdout.write(`MLLP listening on ${config.HMS_MLLP_HOST}:${worker.mllpPort}\n`);
  process.stdout.write('HMS worker running (BullMQ)\n');
  if (worker.metricsPort !== undefined) process.stdout.write(`Metrics on http://${config.HMS_METRICS_HOST}:${worker.metricsPort}/metrics\n`);
  onShutdownSignals(() => worker.close(), config.HMS_SHUTDOWN_TIMEOUT);
}

function payloadOf(queue: QueueName, v: { 'as-of'?: string; before?: string; message?: string }): Record<string, unknown> {
  if (queue === 'lab-ingest') {
    if (!v.message) fail('jobs run lab-ingest needs --message ID (the id GET /ingest/messages/{id} shows)');
    return { messageId: v.message };
  }
  if (queue === 'overdue-billing') return v['as-of'] ? { asOf: v['as-of'] } : {};
  if (queue === 'audit-archive') return v.before ? { before: v.before } : {};
  return {};
}

/** `hms jobs run NAME`: one run, here and now. Without Redis, work the sweeper finds runs here too. */
async function runCommand(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'as-of': { type: 'string' }, before: { type: 'string' }, message: { type: 'string' } } });
  const name = positionals[0];
  if (!name || !isQueueName(name)) fail(`jobs run needs a queue name: ${QUEUE_NAMES.join(', ')}`);
  const log = workerLogger({ ...config, LOG_LEVEL: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL });
  const db = createDb(config);
  const auditLog = new AuditLog(db);
  const base = { db, config, log, auditLog, now: () => new Date() };
  const local = config.REDIS_URL ? undefined : startLocalRunner(base, { schedules: false });
  const queues: JobQueues = local ?? new BullQueues(config, log);
  const deps: JobDeps = { ...base, queues };
  const payload = payloadOf(name, values);
  const jobId = name === 'lab-ingest' ? String(payload.messageId) : `manual:${name}:${new Date().toISOString()}`;
  try {
    const result = await runJob({ queue: name, jobId, payload, attempt: 1, maxAttempts: 1 }, deps);
    await local?.idle();
    process.stdout.write(`${JSON.stringify({ queue: name, jobId, result })}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`hms: ${name} failed: ${errorForLog(err).message}\n`);
    return 1;
  } finally {
    await queues.close();
    await auditLog.settle();
    await db.destroy();
  }
}

/** A Redis call that gives up after a few seconds (Redis down: the database's part is still shown). */
function bounded<T>(p: Promise<T>, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p.finally(() => clearTimeout(timer)), new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('Redis did not answer')), ms); })]);
}

/** `hms jobs status`. */
async function statusCommand(config: Config): Promise<number> {
  const db = createDb(config);
  const bull = config.REDIS_URL ? new BullQueues(config, workerLogger({ ...config, LOG_LEVEL: 'silent' })) : undefined;
  try {
    const last = new Map((await db('job_last_runs').select()).map((r: Record<string, unknown>) => [String(r.queue), r]));
    const recorded = await outboxCounts(db);
    const schedulers = new Map<string, string>();
    let redisUp = true;
    const lines: string[] = [`Jobs: ${bull ? 'BullMQ' : 'in-process (embedded; no REDIS_URL)'}`, ''];
    for (const name of QUEUE_NAMES) {
      const spec = QUEUES[name];
      const schedule = spec.schedule?.(config);
      let counts = 'counts: only with BullMQ';
      if (bull && redisUp) {
        const q = bull.queue(name);
        try {
          const c = await bounded(q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed'));
          counts = `waiting ${c.waiting ?? 0}, active ${c.active ?? 0}, delayed ${c.delayed ?? 0}, failed ${c.failed ?? 0}, completed ${c.completed ?? 0}`;
          const s = await bounded(q.getJobScheduler(schedulerId(name)));
          if (s?.next) schedulers.set(name, new Date(s.next).toISOString());
        } catch {
          redisUp = false;
          counts = 'counts: Redis not reachable';
        }
      } else if (bull) counts = 'counts: Redis not reachable';
      const run = last.get(name);
      const work = recorded.filter((r) => r.queue === name && r.status !== 'done').map((r) => `${r.status} ${r.n}`).join(', ');
      lines.push(`${name}`);
      lines.push(`  ${counts}`);
      lines.push(`  schedule: ${schedule ? ('pattern' in schedule ? schedule.pattern : `every ${schedule.everyMs / 1000} s`) : 'none'}${schedulers.get(name) ? ` (next ${schedulers.get(name)})` : ''}`);
      if (run) lines.push(`  last run: ${run.status} ${run.finished_at ?? run.started_at}${run.duration_ms !== null ? ` in ${run.duration_ms} ms` : ''}${run.result ? ` ${typeof run.result === 'string' ? run.result : JSON.stringify(run.result)}` : ''}${run.error ? ` error: ${run.error}` : ''} (runs ${run.runs}, failed ${run.failures})`);
      if (spec.outbox) lines.push(`  recorded work not done: ${work || 'none'}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`hms: jobs status failed: ${errorForLog(err).message}\n`);
    return 1;
  } finally {
    await bounded(bull?.close() ?? Promise.resolve()).catch(() => undefined);
    await db.destroy();
  }
}

/** `hms jobs ...` */
export async function jobsCommand(config: Config, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'run') return runCommand(config, rest);
  if (sub === 'status') return statusCommand(config);
  fail('jobs needs a subcommand: run NAME | status');
}
