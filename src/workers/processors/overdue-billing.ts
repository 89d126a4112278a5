/**
 * The overdue billing sweep (queue overdue-billing, daily by default; docs/jobs.md): invoices
 * (billing rows) whose due_date lies before the run's date minus HMS_OVERDUE_GRACE_DAYS, with
 * amount_due > 0 and payment_status pending or partial, become overdue.
 *
 * - Batches: each unpaid status is walked in (due_date, id) order over the index
 *   billing(payment_status, due_date, id) (migration 0126), HMS_OVERDUE_BATCH rows per
 *   transaction with a keyset cursor: no lock outlives its batch, and every batch is one range
 *   read however large the table is.
 * - Versions: each change is a new version through the batched native write path
 *   (src/db/native-revision.ts): version_id + 1 and updated_at in one UPDATE per batch, the
 *   resource as the Invoice definition now reads it (kept elements merged with the columns) in
 *   resource_history with one multi-row INSERT, recorded by the system (a row only ever written
 *   natively first gets its state so far kept as the version it was); the index rows the new
 *   version implies, rewritten only where they differ (Invoice.status is index-backed: a native
 *   row gains its rows, as its new kept version makes searches use the index for it).
 * - Lock and read are one statement: the billing rows joined with their kept version
 *   (currentQuery), over the index, FOR UPDATE.
 * - Concurrency: a batch locks its rows (SELECT ... FOR UPDATE; SKIP LOCKED where the server has
 *   it, so a second runner takes other rows instead of waiting) and checks the condition again
 *   on what it locked; the UPDATE is guarded by the version read. Rows another transaction held
 *   while they were passed are taken by a last pass that waits for locks. On SQLite a batch takes
 *   the database's write lock first, so runs are serialised batch by batch. A row is changed once
 *   whoever runs; a second run changes nothing.
 * - Abort (deps.signal): the run stops between batches and says so; the next run carries on
 *   from what is left (the changed rows no longer match).
 * - Audit: one security_logs row per run (action overdue-sweep, role system) with the counts;
 *   nothing about a patient or an invoice is logged.
 */
import type { Knex } from 'knex';
import { PermanentJobError, type JobDeps, type JobResult } from '../jobs.js';
import { InvoiceDefinition } from '../../fhir/resources/Invoice.js';
import type { ResourceDefinition } from '../../fhir/registry.js';
import type { Resource } from '../../fhir/types.js';
import { withMeta } from '../../fhir/resource-view.js';
import { indexEntries } from '../../fhir/search/index-entries.js';
import { dialectOf } from '../../db/dialect.js';
import { inTransaction } from '../../db/transactions.js';
import { supportsSkipLocked } from '../../db/row-locks.js';
import { currentQuery, nowSeconds, storedFromRow, type Row, type StoredResource } from '../../db/resource-repository.js';
import { reviseNatively, type NativeIndex } from '../../db/native-revision.js';
import { sqlToInstant } from '../../mappers/datatypes.js';

export interface OverdueBillingPayload {
  /** The day the run acts as of (YYYY-MM-DD, UTC); default: the day of deps.now() in UTC. */
  asOf?: string;
}

/** The payment statuses of invoices that may fall overdue. */
export const UNPAID_STATUSES = ['pending', 'partial'] as const;
const OVERDUE = 'overdue';
const TABLE = 'billing';
const INDEX = 'idx_overdue';

const DAY_MS = 86_400_000;
const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The run's day, checked: a malformed date cannot be mended by retrying. */
function runDay(payload: OverdueBillingPayload, deps: JobDeps): string {
  const asOf = payload.asOf ?? isoDay(deps.now().getTime());
  const ms = Date.parse(`${asOf}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(asOf) || Number.isNaN(ms) || isoDay(ms) !== asOf) {
    throw new PermanentJobError(`asOf must be a calendar date YYYY-MM-DD, not '${String(asOf).slice(0, 40)}'`);
  }
  return asOf;
}

/** How a batch takes its rows: skipping rows others hold, waiting for them, or under SQLite's write lock. */
type LockMode = 'skip' | 'wait' | 'sqlite';

interface Cursor { dueDate: string; id: string }

interface BatchOutcome { examined: number; changed: number; last?: Cursor }

const definition = InvoiceDefinition as unknown as ResourceDefinition;
const indexParams = definition.searchParams.filter((p) => p.source === 'index');
/** The index rows an Invoice implies (Invoice.status is index-backed), and the tables they are in. */
const index: NativeIndex | undefined = indexParams.length ? {
  entries: (r) => indexEntries(definition, r as unknown as Resource),
  strings: indexParams.some((p) => p.type === 'string'),
  tokens: indexParams.some((p) => p.type !== 'string'),
} : undefined;

/**
 * The next batch of candidates of one status after the cursor, locked, read as the write path
 * reads them (row and kept version: currentQuery) in the same statement. The index's order is the
 * keyset's, so the range read stops after `limit` rows.
 */
async function lockCandidates(trx: Knex.Transaction, mode: LockMode, status: string, cutoff: string, after: Cursor | undefined, limit: number): Promise<StoredResource[]> {
  const table = mode === 'sqlite' ? trx.raw(`?? AS t INDEXED BY ??`, [TABLE, `${TABLE}_${INDEX}`]) : trx.raw(`?? AS t FORCE INDEX (??)`, [TABLE, INDEX]);
  const q = currentQuery(trx, definition).from(table)
    .where('t.payment_status', status).andWhere('t.due_date', '<', cutoff).andWhere('t.amount_due', '>', 0);
  // the keyset: a row value on SQLite (its planner seeks to it), the OR form on MySQL (two ranges of the index)
  if (after && mode === 'sqlite') q.andWhereRaw('(t.due_date, t.id) > (?, ?)', [after.dueDate, after.id]);
  else if (after) q.andWhere((w) => { w.where('t.due_date', '>', after.dueDate).orWhere((x) => { x.where('t.due_date', after.dueDate).andWhere('t.id', '>', after.id); }); });
  q.orderBy([{ column: 't.due_date' }, { column: 't.id' }]).limit(limit);
  if (mode !== 'sqlite') q.forUpdate();
  if (mode === 'skip') q.skipLocked();
  return ((await q) as Row[]).map((r) => storedFromRow(definition, r));
}

const cursorOf = (s: StoredResource): Cursor => ({ dueDate: String(s.row.due_date).slice(0, 10), id: String(s.row.id) });

/** One batch in its own transaction: lock and read, check again, write the new versions. */
function runBatch(deps: JobDeps, mode: LockMode, status: string, cutoff: string, after: Cursor | undefined): Promise<BatchOutcome> {
  const limit = deps.config.HMS_OVERDUE_BATCH;
  return inTransaction(deps.db, async (trx) => {
    // SQLite: take the write lock before reading, so a concurrent runner waits here instead of
    // failing to upgrade its read later (and reads what this batch committed)
    if (mode === 'sqlite') await trx.raw(`UPDATE ${TABLE} SET version_id = version_id WHERE 0`);
    const locked = await lockCandidates(trx, mode, status, cutoff, after, limit);
    if (locked.length === 0) return { examined: 0, changed: 0 };
    // the condition again, in code, on the rows as locked
    const due = locked.filter((s) => !s.deleted
      && (UNPAID_STATUSES as readonly string[]).includes(String(s.row.payment_status))
      && String(s.row.due_date).slice(0, 10) < cutoff
      && Number(s.row.amount_due) > 0);
    await reviseNatively(trx, due, {
      spec: definition,
      columns: { payment_status: OVERDUE },
      at: nowSeconds().sql,
      render: (row, kept, version, lastUpdated) => withMeta(definition.fromRow(row, kept as Resource | undefined), version, sqlToInstant(lastUpdated)!) as unknown as Record<string, unknown>,
      index,
    });
    return { examined: locked.length, changed: due.length, last: cursorOf(locked[locked.length - 1]!) };
  });
}

/** Marks unpaid invoices past their due date (and the grace days) overdue; see the module comment. */
export async function overdueBilling(payload: OverdueBillingPayload, deps: JobDeps): Promise<JobResult> {
  const asOf = runDay(payload, deps);
  const graceDays = deps.config.HMS_OVERDUE_GRACE_DAYS;
  // due before this day (the run's day minus the grace days): overdue
  const cutoff = isoDay(Date.parse(`${asOf}T00:00:00Z`) - graceDays * DAY_MS);
  const batchSize = deps.config.HMS_OVERDUE_BATCH;
  const counts = { examined: 0, changed: 0, batches: 0 };
  let aborted = false;
  const started = performance.now();
  const result = (): JobResult => ({ asOf, cutoff, graceDays, ...counts, aborted, durationMs: Math.round(performance.now() - started) });
  const audit = (success: boolean, failureReason?: string) => deps.auditLog.record({
    userId: null, clientId: null, role: 'system', action: 'overdue-sweep', resourceType: 'Invoice', resourceId: null, patientId: null,
    success, failureReason: failureReason ?? null, additionalData: { examined: counts.examined, changed: counts.changed, batches: counts.batches, asOf, cutoff, graceDays, aborted },
  });
  try {
    const modes: LockMode[] = dialectOf(deps.db) === 'sqlite' ? ['sqlite'] : (await supportsSkipLocked(deps.db)) ? ['skip', 'wait'] : ['wait'];
    passes: for (const mode of modes) {
      for (const status of UNPAID_STATUSES) {
        let after: Cursor | undefined;
        for (;;) {
          if (deps.signal?.aborted) { aborted = true; break passes; }
          const batch = await runBatch(deps, mode, status, cutoff, after);
          if (batch.examined === 0) break;
          counts.batches++;
          counts.examined += batch.examined;
          counts.changed += batch.changed;
          after = batch.last;
          // fewer rows than asked for: the range is exhausted (skipped rows do not count against LIMIT)
          if (batch.examined < batchSize) break;
        }
      }
    }
  } catch (err) {
    await audit(false, `run failed after ${counts.changed} changes: ${(err as Error).message ?? String(err)}`.slice(0, 1000)).catch(() => undefined);
    throw err;
  }
  await audit(true);
  if (aborted) deps.log.warn({ queue: 'overdue-billing', changed: counts.changed, batches: counts.batches }, 'overdue sweep stopped between batches (shutting down); the next run carries on');
  return result();
}
