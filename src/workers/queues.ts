/**
 * The one declaration of HMS's background work (docs/jobs.md): each queue's processor, payload
 * schema (ids only: no patient data ever reaches Redis), retry and backoff policy and schedule.
 * The BullMQ worker (`hms worker`), the in-process runner (`hms start`), `hms jobs run` and the
 * API's producers all read this table; the API reaches the workers only through it.
 */
import type { Config } from '../config.js';
import type { Processor, JobDeps, JobResult } from './jobs.js';
import { labIngest, abandonLabMessage } from './processors/lab-ingest.js';
import { overdueBilling } from './processors/overdue-billing.js';
import { sessionExpiry } from './processors/session-expiry.js';
import { auditArchive } from './processors/audit-archive.js';
import { outboxSweep } from './processors/outbox-sweep.js';
import { bulkExport } from './processors/bulk-export.js';
import { exportExpiry } from './processors/export-expiry.js';
import { failExport } from '../fhir/bulk/export-jobs.js';

import { PAYLOADS, type QueueName } from './queue-names.js';

export { QUEUE_NAMES, checkPayload, isQueueName, schedulerId, type QueueName } from './queue-names.js';

/** A schedule: a cron pattern (server time zone) or a fixed interval. */
export type Schedule = { pattern: string } | { everyMs: number };

export interface QueueSpec {
  name: QueueName;
  description: string;
  /** JSON Schema of the payload: ids and options only. */
  payload: Record<string, unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  processor: Processor<any>;
  /** Attempts in all for a transient failure (a PermanentJobError fails at once). */
  attempts(config: Config): number;
  /** First retry delay; doubled at each attempt. */
  backoffMs: number;
  /** Jobs one worker process runs at once. */
  concurrency(config: Config): number;
  /** When it runs by itself (undefined: only when work is recorded or asked for). */
  schedule?(config: Config): Schedule | undefined;
  /** Work is recorded in job_outbox first (and swept): true for work that must not be lost. */
  outbox: boolean;
  /**
   * Called by the sweeper when recorded work was started HMS_JOB_ATTEMPTS times and never
   * finished (it kills its worker): records the failure where its owner looks for it.
   */
  abandon?(payload: unknown, reason: string, deps: JobDeps): Promise<void>;
}


/** A cron setting: 'off' disables the schedule. */
function cron(value: string): Schedule | undefined {
  return value.trim().toLowerCase() === 'off' ? undefined : { pattern: value.trim() };
}

export const QUEUES: Record<QueueName, QueueSpec> = {
  'lab-ingest': {
    name: 'lab-ingest',
    description: 'Processes a stored lab message (HL7 v2 ORU^R01 or FHIR): matches patient and order, writes Observations and DiagnosticReports',
    payload: PAYLOADS['lab-ingest'],
    processor: labIngest,
    attempts: (c) => c.HMS_JOB_ATTEMPTS,
    backoffMs: 1000,
    concurrency: (c) => c.HMS_WORKER_CONCURRENCY,
    outbox: true,
    abandon: (payload, reason, deps) => abandonLabMessage(payload as { messageId: string }, reason, deps),
  },
  'overdue-billing': {
    name: 'overdue-billing',
    description: 'Marks unpaid invoices past due_date (plus grace days) overdue, each as a new version',
    payload: PAYLOADS['overdue-billing'],
    processor: overdueBilling,
    attempts: (c) => c.HMS_JOB_ATTEMPTS,
    backoffMs: 5000,
    concurrency: () => 1,
    schedule: (c) => cron(c.HMS_OVERDUE_SCHEDULE),
    outbox: false,
  },
  'session-expiry': {
    name: 'session-expiry',
    description: 'Ends sessions past their expiry or idle timeout and purges old ended ones',
    payload: PAYLOADS['session-expiry'],
    processor: sessionExpiry,
    attempts: () => 1,
    backoffMs: 1000,
    concurrency: () => 1,
    schedule: (c) => cron(c.HMS_SESSION_EXPIRY_SCHEDULE),
    outbox: false,
  },
  'audit-archive': {
    name: 'audit-archive',
    description: 'Moves security_logs rows past the online retention to verified, compressed NDJSON archive files',
    payload: PAYLOADS['audit-archive'],
    processor: auditArchive,
    attempts: (c) => c.HMS_JOB_ATTEMPTS,
    backoffMs: 10_000,
    concurrency: () => 1,
    schedule: (c) => cron(c.HMS_AUDIT_ARCHIVE_SCHEDULE),
    outbox: false,
  },
  'outbox-sweep': {
    name: 'outbox-sweep',
    description: 'Enqueues again recorded work that no queue holds (Redis flushed, a worker killed, retries exhausted)',
    payload: PAYLOADS['outbox-sweep'],
    processor: (payload, deps) => outboxSweep(payload, deps, QUEUES),
    attempts: () => 1,
    backoffMs: 1000,
    concurrency: () => 1,
    schedule: (c) => ({ everyMs: c.HMS_OUTBOX_SWEEP_SECONDS * 1000 }),
    outbox: false,
  },
  'bulk-export': {
    name: 'bulk-export',
    description: 'Bulk Data $export: streams the resources the caller may see to NDJSON files and records the manifest',
    payload: PAYLOADS['bulk-export'],
    processor: bulkExport,
    attempts: (c) => c.HMS_JOB_ATTEMPTS,
    backoffMs: 5000,
    concurrency: () => 1,
    outbox: true,
    abandon: (payload, reason, deps) => failExport(deps.db, (payload as { exportId: string }).exportId, reason, deps.config.HMS_EXPORT_RETENTION_MINUTES),
  },
  'export-expiry': {
    name: 'export-expiry',
    description: 'Removes the files of Bulk Data exports past their expiry or cancelled',
    payload: PAYLOADS['export-expiry'],
    processor: exportExpiry,
    attempts: () => 1,
    backoffMs: 1000,
    concurrency: () => 1,
    schedule: (c) => cron(c.HMS_EXPORT_EXPIRY_SCHEDULE),
    outbox: false,
  },
};

export type { JobResult };
