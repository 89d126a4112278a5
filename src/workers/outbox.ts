/**
 * job_outbox (migration 0123): work that must happen, recorded in the transaction that caused it.
 * A row's id is its BullMQ job id. Life of a row: queued -> active (each start counts an attempt)
 * -> done | failed; a transient failure puts it back to queued. The sweeper enqueues again what
 * stayed queued or active too long (docs/jobs.md).
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { nowSeconds } from '../db/resource-repository.js';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';
import { checkPayload, type QueueName } from './queue-names.js';

export const OUTBOX_TABLE = 'job_outbox';

export interface OutboxRow {
  id: string;
  queue: QueueName;
  payload: Record<string, unknown>;
  status: 'queued' | 'active' | 'done' | 'failed';
  attempts: number;
  enqueued: number;
  lastError?: string;
  updatedAt: string;
}

const parse = (v: unknown): Record<string, unknown> => (typeof v === 'string' ? JSON.parse(v) : (v as Record<string, unknown>));

function fromRow(r: Record<string, unknown>): OutboxRow {
  return {
    id: String(r.id), queue: r.queue as QueueName, payload: parse(r.payload), status: r.status as OutboxRow['status'],
    attempts: Number(r.attempts), enqueued: Number(r.enqueued), lastError: (r.last_error as string | null) ?? undefined, updatedAt: String(r.updated_at),
  };
}

/** Records work in the caller's transaction; returns its id (the job id to enqueue after commit). */
export async function recordJob(trx: Knex, queue: QueueName, payload: Record<string, unknown>, id: string = uuidv7()): Promise<string> {
  checkPayload(queue, payload);
  const now = nowSeconds().sql;
  await trx(OUTBOX_TABLE).insert({ id, queue, payload: JSON.stringify(payload), status: 'queued', attempts: 0, enqueued: 0, created_at: now, updated_at: now });
  return id;
}

export async function outboxRow(db: Knex, id: string): Promise<OutboxRow | undefined> {
  const r = await db(OUTBOX_TABLE).where({ id }).first();
  return r ? fromRow(r) : undefined;
}

/**
 * Whether recorded work was started `limit` times and never finished: its row is still active
 * (no run ended it: the process died, likely because of it) and has used all its starts.
 */
export const exhausted = (row: OutboxRow, limit: number): boolean => row.status === 'active' && row.attempts >= limit;

/** Why such work was given up (the lab message's outcome says it). */
export const abandonReason = (attempts: number): string =>
  `Started ${attempts} times without finishing (the run ended its worker process, or was cut off every time)`;

/**
 * A run starts: counts the attempt. Returns the row as it was, or undefined when there is none.
 * Work that is finished, or exhausted (see above) for `limit`, is not started (nor counted).
 */
export async function startAttempt(db: Knex, id: string, limit = Infinity): Promise<OutboxRow | undefined> {
  const row = await outboxRow(db, id);
  if (!row || row.status === 'done' || row.status === 'failed' || exhausted(row, limit)) return row;
  await db(OUTBOX_TABLE).where({ id }).update({ status: 'active', attempts: db.raw('attempts + 1'), updated_at: nowSeconds().sql });
  return row;
}

/** The run's end: done, failed for good, or back to queued after a transient failure. */
export async function finishAttempt(db: Knex, id: string, status: 'done' | 'failed' | 'queued', error?: string): Promise<void> {
  const now = nowSeconds().sql;
  await db(OUTBOX_TABLE).whereIn('status', ['queued', 'active']).andWhere({ id }).update({
    status, updated_at: now, finished_at: status === 'queued' ? null : now, last_error: error === undefined ? null : error.slice(0, 2000),
  });
}

/** Unfinished work not touched since `before` (the sweeper's query), oldest first. */
export async function staleRows(db: Knex, before: Date, limit: number): Promise<OutboxRow[]> {
  const rows = await db(OUTBOX_TABLE).whereIn('status', ['queued', 'active']).andWhere('updated_at', '<', dateToSqlTimestamp(before))
    .orderBy('updated_at').orderBy('id').limit(limit);
  return rows.map(fromRow);
}

/** The sweeper enqueued it again. */
export async function markEnqueued(db: Knex, id: string): Promise<void> {
  await db(OUTBOX_TABLE).where({ id }).update({ enqueued: db.raw('enqueued + 1'), updated_at: nowSeconds().sql });
}

/** Counts by queue and status (hms jobs status; /metrics, the statuses not done only). */
export async function outboxCounts(db: Knex, statuses?: readonly string[]): Promise<{ queue: string; status: string; n: number }[]> {
  const q = db(OUTBOX_TABLE).select('queue', 'status').count({ n: '*' }).groupBy('queue', 'status');
  const rows: Record<string, unknown>[] = await (statuses ? q.whereIn('status', statuses) : q);
  return rows.map((r) => ({ queue: String(r.queue), status: String(r.status), n: Number(r.n) }));
}

/** Removes up to `limit` done rows finished before `before`; returns how many. */
export async function purgeFinished(db: Knex, before: Date, limit = 1000): Promise<number> {
  const ids = (await db(OUTBOX_TABLE).where({ status: 'done' }).andWhere('finished_at', '<', dateToSqlTimestamp(before)).limit(limit).pluck('id')) as string[];
  if (!ids.length) return 0;
  return Number(await db(OUTBOX_TABLE).whereIn('id', ids).andWhere({ status: 'done' }).delete());
}
