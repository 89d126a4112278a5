/**
 * Batch and transaction Bundles (POST /fhir). https://hl7.org/fhir/R4/http.html#transaction
 *
 * - transaction: every entry in one database transaction, all or nothing. Deletes run first, then
 *   the writes (creates before updates and patches, each after the entries it refers to, so
 *   references between entries resolve to the ids the server gives), then the reads. The
 *   entries' history and search index rows are gathered and written as multi-row INSERTs before
 *   any statement that reads their tables (src/db/write-buffer.ts). The audit
 *   rows of every entry are appended at the end, inside the transaction: they commit with the
 *   data, and the chain head is locked for the end only. A failing entry rolls everything back;
 *   the OperationOutcome names the entry and the element.
 * - batch: entries independent, in order, each in a transaction of its own, each with its own
 *   status and outcome; a refused entry is audited as a refusal and changes nothing else.
 */
import { v7 as uuidv7 } from 'uuid';
import type { AuditEvent, FhirContext } from '../context.js';
import type { Bundle } from '../bundle.js';
import { FhirError, unprocessable, type Issue } from '../outcome.js';
import { inTransaction } from '../../db/transactions.js';
import { bufferRows, flushRows } from '../../db/write-buffer.js';
import { VerifiedReferences } from '../verified-references.js';
import { resourceDefinition } from '../registry.js';
import { bundleRequests, entryPath, type BundleEntryRequest } from './bundle-entries.js';
import { EntryIndex, dependencies, resolveReferences } from './entry-references.js';
import { failedEntry, runEntry, statusLine, type EntryResult, type ReturnPreference } from './run-entry.js';

export interface BundleOptions {
  /** Most entries a Bundle may hold (HMS_BUNDLE_MAX_ENTRIES); more is 413. */
  maxEntries: number;
  /** Prefer: return= of the request (default: representation). */
  return?: string;
  /** Told of an unexpected error of a batch entry (answered as that entry's 500). */
  onError?(err: unknown, entry: number): void;
}

const RETURNS = new Set(['minimal', 'representation', 'OperationOutcome']);

/** Runs a batch or transaction Bundle; answers the batch-response or transaction-response. */
export async function processBundle(ctx: FhirContext, body: unknown, opts: BundleOptions): Promise<Bundle> {
  const { type, entries } = bundleRequests(body, ctx.baseUrl, opts.maxEntries);
  const ret = (RETURNS.has(opts.return ?? '') ? opts.return : 'representation') as ReturnPreference;
  const index = new EntryIndex(entries);
  const results = type === 'transaction' ? await transaction(ctx, entries, index, ret) : await batch(ctx, entries, index, ret, opts);
  return {
    resourceType: 'Bundle',
    id: uuidv7(),
    type: type === 'transaction' ? 'transaction-response' : 'batch-response',
    ...(results.length ? { entry: results.map((r) => r.entry) } : {}),
  };
}

const RANK: Record<BundleEntryRequest['method'], number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3 };

/**
 * The order a transaction runs its entries in: R4's (DELETE, POST, PUT/PATCH, GET), except that
 * a write runs after the writes it refers to (a create referring to a resource an update of the
 * same Bundle creates). A cycle of references cannot be written one resource at a time: 422.
 */
export function transactionOrder(entries: BundleEntryRequest[], index: EntryIndex): BundleEntryRequest[] {
  const sorted = [...entries].sort((a, b) => RANK[a.method] - RANK[b.method] || a.index - b.index);
  const state = new Map<number, 'visiting' | 'done'>();
  const out: BundleEntryRequest[] = [];
  const visit = (e: BundleEntryRequest, path: number[]): void => {
    const s = state.get(e.index);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(e.index)), e.index];
      throw unprocessable(`Bundle entries ${cycle.join(' -> ')} refer to one another in a cycle: HMS writes each resource after those it refers to; write one of them without the reference and add it with a later update`, entryPath(e.index, '.resource'));
    }
    state.set(e.index, 'visiting');
    for (const j of dependencies(e, index)) {
      const dep = entries[j]!;
      if (dep.method !== 'GET' && dep.method !== 'DELETE') visit(dep, [...path, e.index]);
    }
    state.set(e.index, 'done');
    out.push(e);
  };
  for (const e of sorted) visit(e, []);
  return out;
}

/** A FhirError of an entry, as the transaction's: its issues say which entry (and element) failed. */
function inEntry(err: unknown, e: BundleEntryRequest): unknown {
  if (!(err instanceof FhirError)) return err; // a database error: a deadlock is retried whole
  const where = `Bundle.entry[${e.index}]`;
  const issues = err.issues.map((i): Issue => ({
    ...i,
    diagnostics: i.diagnostics?.startsWith(where) ? i.diagnostics : `${where} (${e.method} ${e.url.slice(0, 100)}): ${i.diagnostics ?? i.code}`,
    expression: i.expression?.length
      ? i.expression.map((x) => (x.startsWith('Bundle.') ? x : entryPath(e.index, `.resource${x.replace(/^[A-Z][A-Za-z]+/, '')}`)))
      : [entryPath(e.index)],
  }));
  // a precondition or a refusal stays what it is; Location and the like of a single request do not apply
  const headers = Object.fromEntries(Object.entries(err.headers).filter(([k]) => k.toLowerCase() === 'retry-after'));
  return new FhirError(err.status, issues, 'processing', headers);
}

async function transaction(ctx: FhirContext, entries: BundleEntryRequest[], index: EntryIndex, ret: ReturnPreference): Promise<EntryResult[]> {
  const order = transactionOrder(entries, index);
  const deferred: (() => Promise<void>)[] = [];
  const results = await inTransaction(ctx.db, async (trx) => {
    // a deadlock runs the whole transaction again: nothing of a failed attempt is kept
    deferred.length = 0;
    // the entries' history and index rows go in as multi-row INSERTs (src/db/write-buffer.ts)
    bufferRows(trx);
    const events: AuditEvent[] = [];
    const inner: FhirContext = {
      ...ctx, db: trx, deferred, verified: new VerifiedReferences(ctx.access),
      audit: async (e) => { events.push(...(Array.isArray(e) ? e : [e])); },
    };
    const written = new Map<number, string>();
    const out: EntryResult[] = new Array(entries.length);
    for (const e of order) {
      try {
        const resource = await resolveReferences(inner, trx, e, index, written, false);
        const result = await runEntry(inner, e, resource, ret);
        if (result.wrote) {
          written.set(e.index, result.wrote);
          // an update may have changed what a reference to it was checked against; a write to
          // what assigns patients (a CareTeam, an Appointment) may have narrowed a restricted caller's reach
          if (e.method !== 'POST') inner.verified!.forget(result.wrote);
          // a create (or the match of its If-None-Exist): the resource exists from here to commit
          else inner.verified!.created(result.wrote);
          inner.verified!.wroteType(e.type);
          if (!ctx.access.unrestricted && resourceDefinition(e.type)?.assigns) inner.verified!.clear();
        }
        out[e.index] = result;
      } catch (err) {
        throw inEntry(err, e);
      }
    }
    await flushRows(trx);
    if (events.length) await ctx.audit(events, trx);
    return out;
  }, { retryOnDuplicate: true });
  for (const fn of deferred) await fn();
  return results;
}

async function batch(ctx: FhirContext, entries: BundleEntryRequest[], index: EntryIndex, ret: ReturnPreference, opts: BundleOptions): Promise<EntryResult[]> {
  // each entry commits alone: inside a caller's transaction a failed entry's writes would stay
  if (ctx.db.isTransaction) throw new Error('A batch runs each entry in a transaction of its own: call it outside a transaction');
  const out: EntryResult[] = [];
  for (const e of entries) {
    try {
      out.push(e.method === 'GET'
        ? await runEntry(ctx, e, undefined, ret)
        : await inTransaction(ctx.db, async (trx) => {
          const inner = { ...ctx, db: trx };
          return runEntry(inner, e, await resolveReferences(inner, trx, e, index, new Map(), true), ret);
        }, { retryOnDuplicate: true }));
    } catch (err) {
      if (!(err instanceof FhirError)) {
        opts.onError?.(err, e.index);
        out.push({ entry: { response: { status: statusLine(500), outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: `Bundle.entry[${e.index}] failed unexpectedly; nothing of it was written` }] } } } });
        continue;
      }
      const failed = inEntry(err, e) as FhirError;
      // a refusal is on record, as the same request on its own would be (status and code only: diagnostics quote input)
      if (failed.status !== 503) {
        await ctx.audit({ action: 'refused', resourceType: e.type, success: false, reason: `${failed.status} ${failed.issues[0]?.code ?? ''}`, data: { entry: e.index } });
      }
      out.push(failedEntry(failed));
    }
  }
  return out;
}
