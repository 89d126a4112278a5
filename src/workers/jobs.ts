/**
 * What every job processor is: a plain exported async function of (payload, deps), idempotent
 * by a key the database enforces, run the same way by a BullMQ worker (`hms worker`) and by the
 * in-process runner of the embedded mode (`hms start`). Processors import nothing of BullMQ.
 */
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import type { AuditLog } from '../db/audit-log.js';
import type { OperationOutcome } from '../fhir/outcome.js';

/** Structured logging of a job (pino's shape); never given patient data. */
export interface JobLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** What a processor may use. */
export interface JobDeps {
  db: Knex;
  config: Config;
  log: JobLogger;
  /** The security log (entries are group-committed, or appended inside a given transaction). */
  auditLog: AuditLog;
  /** The clock: the time a run acts as of (tests pass a fixed one). */
  now(): Date;
  /** Aborted when the process shuts down: a long run stops between batches and is resumed later. */
  signal?: AbortSignal;
  /** The transport (BullMQ or in-process): what the sweeper enqueues work through. */
  queues?: JobQueues;
}

/** Where the transport has a job: 'missing' when it holds none of that id (Redis flushed ...). */
export type JobState = 'waiting' | 'active' | 'delayed' | 'completed' | 'failed' | 'missing';

/** Hands jobs to the workers: BullMQ queues in Redis, or the in-process runner. */
export interface JobQueues {
  readonly mode: 'bullmq' | 'in-process';
  /**
   * Enqueues a job (a job of the same id already held is left as it is, unless `replace` and it
   * has finished). Rejects when the transport cannot take it (Redis down): recorded work stays in
   * the outbox and the sweeper enqueues it later.
   */
  enqueue(queue: string, jobId: string, payload: Record<string, unknown>, opts?: { replace?: boolean }): Promise<void>;
  state(queue: string, jobId: string): Promise<JobState>;
  close(): Promise<void>;
}

/** What a run reports (counts, ids): kept as the job's return value and logged. No patient data. */
export type JobResult = Record<string, unknown>;

export type Processor<P> = (payload: P, deps: JobDeps) => Promise<JobResult>;

/**
 * A failure that running the job again cannot mend (an unparseable message, a patient that
 * cannot be matched): the job fails at once, with no retries, keeping the outcome.
 * Anything else a processor throws is transient and retried with backoff.
 */
export class PermanentJobError extends Error {
  constructor(message: string, readonly outcome?: OperationOutcome) {
    super(message);
    this.name = 'PermanentJobError';
  }
}
