/**
 * Bulk Data export jobs (table bulk_exports, migration 0128): recorded with their bulk-export job
 * in one transaction at kick-off, run by the worker, answered by the status URL, cancelled by
 * DELETE, expired by the export-expiry job. Who started a job is kept (user, or client with its
 * granted scope) so the worker applies that caller's access and only that caller reads the result.
 * docs/bulk-data.md
 */
import type { Knex } from 'knex';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import type { Principal } from '../../auth/principal.js';
import { nowSeconds, type Row } from '../../db/resource-repository.js';
import { inTransaction } from '../../db/transactions.js';
import { dateToSqlTimestamp, sqlToInstant } from '../../mappers/datatypes.js';
import { recordJob } from '../../workers/outbox.js';
import type { JobLogger, JobQueues } from '../../workers/jobs.js';
import type { ExportLevel, ExportParams, ExportRequest } from './export-request.js';
import type { ExportedFile } from './export-writer.js';

export const EXPORTS_TABLE = 'bulk_exports';

export type ExportStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'expired';

export interface ExportJob {
  id: string;
  status: ExportStatus;
  level: ExportLevel;
  groupId?: string;
  userId?: string;
  clientId?: string;
  scope?: string;
  requestUrl: string;
  params: ExportParams;
  outputFormat: string;
  /** FHIR instant. */
  transactionTime: string;
  progress?: string;
  output: ExportedFile[];
  errors: ExportedFile[];
  failure?: string;
  /** FHIR instant, once finished. */
  expiresAt?: string;
}

const json = <T>(v: unknown, fallback: T): T => (v === null || v === undefined ? fallback : typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
const opt = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

function fromRow(r: Row): ExportJob {
  return {
    id: String(r.id), status: r.status as ExportStatus, level: r.level as ExportLevel, groupId: opt(r.group_id),
    userId: opt(r.user_id), clientId: opt(r.client_id), scope: opt(r.scope), requestUrl: String(r.request_url),
    params: json<ExportParams>(r.params, { types: [], typeFilter: {} }), outputFormat: String(r.output_format),
    transactionTime: sqlToInstant(String(r.transaction_time))!, progress: opt(r.progress),
    output: json<ExportedFile[]>(r.output, []), errors: json<ExportedFile[]>(r.errors, []), failure: opt(r.failure),
    expiresAt: r.expires_at ? sqlToInstant(String(r.expires_at)) : undefined,
  };
}

/** Where a job's files are. */
export const exportDir = (root: string, id: string): string => join(root, id);

/**
 * Records an export and its job in one transaction, then hands the job to the workers (best
 * effort: recorded work that no queue holds is enqueued again by the outbox sweeper).
 */
export async function startExport(db: Knex, queues: JobQueues | undefined, log: JobLogger, principal: Principal, request: ExportRequest, requestUrl: string): Promise<string> {
  const id = uuidv7();
  const now = nowSeconds().sql;
  await inTransaction(db, async (trx) => {
    await trx(EXPORTS_TABLE).insert({
      id, status: 'queued', level: request.level, group_id: request.groupId ?? null,
      user_id: principal.kind === 'user' ? principal.userId : null,
      client_id: principal.kind === 'client' ? principal.clientId : null,
      scope: principal.kind === 'client' ? principal.scope : null,
      request_url: requestUrl, params: JSON.stringify(request.params), output_format: request.outputFormat,
      transaction_time: now, created_at: now,
    });
    await recordJob(trx, 'bulk-export', { exportId: id }, id);
  });
  if (queues) {
    await queues.enqueue('bulk-export', id, { exportId: id }).catch((err: unknown) => {
      log.warn({ exportId: id, err }, 'bulk export recorded but not enqueued');
    });
  }
  return id;
}

export async function findExport(db: Knex, id: string): Promise<ExportJob | undefined> {
  const r = (await db(EXPORTS_TABLE).where({ id }).first()) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/** Whether a caller is the one who started a job (the only one who may see its status and files). */
export function startedBy(job: ExportJob, p: Principal | undefined): boolean {
  if (!p) return false;
  return p.kind === 'user' ? job.userId === p.userId : job.clientId === p.clientId;
}

/** Takes a job to running, its transaction time now (a run started again after a crash starts over). */
export async function markRunning(db: Knex, id: string): Promise<boolean> {
  const n = await db(EXPORTS_TABLE).where({ id }).whereIn('status', ['queued', 'running'])
    .update({ status: 'running', transaction_time: nowSeconds().sql, progress: 'starting', output: null, errors: null });
  return n > 0;
}

/** Records progress; false when the job is no longer running (cancelled): the run stops. */
export async function reportProgress(db: Knex, id: string, progress: string): Promise<boolean> {
  return (await db(EXPORTS_TABLE).where({ id, status: 'running' }).update({ progress: progress.slice(0, 255) })) > 0;
}

export async function finishExport(db: Knex, id: string, output: ExportedFile[], retentionMinutes: number): Promise<boolean> {
  const now = new Date();
  return (await db(EXPORTS_TABLE).where({ id, status: 'running' }).update({
    status: 'done', progress: 'done', output: JSON.stringify(output), errors: JSON.stringify([]),
    finished_at: dateToSqlTimestamp(now), expires_at: dateToSqlTimestamp(new Date(now.getTime() + retentionMinutes * 60_000)),
  })) > 0;
}

/** Records a failure: `refused` when the caller's rights or request were at fault (a 4xx), else the server's. */
export async function failExport(db: Knex, id: string, failure: string, retentionMinutes: number, refused = false): Promise<void> {
  const now = new Date();
  await db(EXPORTS_TABLE).where({ id }).whereIn('status', ['queued', 'running']).update({
    status: 'failed', progress: refused ? 'refused' : 'failed', failure: failure.slice(0, 2000),
    finished_at: dateToSqlTimestamp(now), expires_at: dateToSqlTimestamp(new Date(now.getTime() + retentionMinutes * 60_000)),
  });
}

/** DELETE of the status URL: a job not yet cancelled or expired becomes cancelled; false when it already was. */
export async function cancelExport(db: Knex, id: string): Promise<boolean> {
  return (await db(EXPORTS_TABLE).where({ id }).whereIn('status', ['queued', 'running', 'done', 'failed'])
    .update({ status: 'cancelled', progress: 'cancelled', finished_at: nowSeconds().sql, expires_at: nowSeconds().sql })) > 0;
}

/** Whether a job's result is gone (cancelled, expired, or past its expiry not yet swept). */
export function isGone(job: ExportJob, now = new Date()): boolean {
  return job.status === 'cancelled' || job.status === 'expired' || (job.expiresAt !== undefined && Date.parse(job.expiresAt) <= now.getTime());
}

/** Jobs whose files are to be removed: past their expiry, or cancelled (their files may remain). */
export async function expiredExports(db: Knex, now: Date, limit: number): Promise<string[]> {
  const rows = (await db(EXPORTS_TABLE).whereIn('status', ['done', 'failed', 'cancelled']).andWhere('expires_at', '<=', dateToSqlTimestamp(now))
    .orderBy('expires_at').limit(limit).select('id')) as Row[];
  return rows.map((r) => String(r.id));
}

export async function markExpired(db: Knex, id: string): Promise<void> {
  await db(EXPORTS_TABLE).where({ id }).whereIn('status', ['done', 'failed', 'cancelled']).update({ status: 'expired' });
}
