/**
 * The FHIR context of work done off the request path: the same interactions, access rules and
 * audit rows as the API, acting as the server itself (overdue sweep) or as the client whose
 * message is being processed (lab ingestion: the client's scopes apply and its rows name it).
 */
import type { Knex } from 'knex';
import { Access } from '../fhir/access.js';
import type { FhirContext } from '../fhir/context.js';
import { roleOf, type Principal } from '../auth/principal.js';
import type { SecurityLogEntry } from '../db/audit-log.js';
import type { JobDeps } from './jobs.js';

/** The FHIR base a worker names in what it writes (HMS_BASE_URL, else the API's own address). */
export function workerBaseUrl(deps: JobDeps): string {
  const { HMS_BASE_URL, HOST, PORT } = deps.config;
  return HMS_BASE_URL ?? `http://${HOST.includes(':') ? `[${HOST}]` : HOST}:${PORT}/fhir`;
}

export interface WorkerContextOptions {
  /** Who the work is done for (undefined: the server itself, which may do everything). */
  principal?: Principal;
  /** The job, recorded with every audit row (additional_data.job). */
  job: { queue: string; id: string };
  /** The database to work in (a transaction of the processor's). */
  db?: Knex;
  /**
   * Collects the audit rows of writes here instead of appending them at once; the processor
   * appends them in its transaction just before it commits (`deps.auditLog.record(rows, trx)`),
   * so the chain head's row lock is held for the end of the transaction only, not all of it.
   */
  auditRows?: SecurityLogEntry[];
}

/** A FhirContext for a job; its audit rows carry the job's queue and id in place of a request. */
export function workerContext(deps: JobDeps, opts: WorkerContextOptions): FhirContext {
  const access = new Access(opts.principal);
  const p = opts.principal;
  // inside the job's transaction, reads are recorded in it too (one connection on SQLite; and they commit with the work)
  const inJob = opts.db?.isTransaction ? (opts.db as Knex.Transaction) : undefined;
  const record = async (rows: SecurityLogEntry[], trx?: Knex.Transaction): Promise<void> => {
    if (opts.auditRows && (trx ?? inJob)) { opts.auditRows.push(...rows); return; }
    await deps.auditLog.record(rows, trx ?? inJob);
  };
  return {
    db: opts.db ?? deps.db,
    baseUrl: workerBaseUrl(deps),
    userId: p?.kind === 'user' ? p.userId : undefined,
    access,
    strict: true,
    maxCount: deps.config.HMS_MAX_COUNT,
    audit: (events, trx) => record((Array.isArray(events) ? events : [events]).map((e): SecurityLogEntry => ({
      userId: p?.kind === 'user' ? p.userId : null,
      clientId: p?.kind === 'client' ? p.clientId : null,
      role: p ? roleOf(p) : 'system',
      action: e.action,
      resourceType: e.resourceType,
      resourceId: e.resourceId ?? null,
      patientId: e.patientId ?? null,
      success: e.success,
      failureReason: e.reason ?? null,
      breakGlass: false,
      additionalData: { job: opts.job, ...(e.data ?? {}) },
    })), trx),
  };
}
