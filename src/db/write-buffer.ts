/**
 * Rows a transaction appends that none of its own statements reads back at once (each resource's
 * history row, its search index rows, the row of a new resource in a table nothing else depends
 * on), gathered and written as multi-row INSERTs instead of a few statements per resource: a
 * transaction Bundle of 200 resources sends one INSERT per table and column set for them, not 800.
 *
 * Nothing a statement could see is held back: the rows are written before the next statement of
 * the transaction that names one of their tables (a search on the index, a read joined with the
 * history, a reference check), before any UPDATE or DELETE (whose cascades and triggers would
 * miss rows not yet written), and all of them when the transaction's body ends with flushRows (a
 * COMMIT that finds rows still gathered rolls back instead: never a part of the writes). Every
 * statement of a knex transaction, COMMIT included, runs through the transaction's own client's
 * `query(connection, statement)` (knex 3: lib/execution/transaction.js, makeTxClient);
 * `bufferRows` wraps that function of this one transaction's client, so the guarantee holds
 * whoever builds the statement. test/integration/write-buffer.test.ts checks it against the
 * database, and that GATHERED names only tables no foreign key points to and no INSERT trigger
 * watches (so the order rows go in is free).
 */
import type { Knex } from 'knex';
import { dialectOf } from './dialect.js';

type Row = Record<string, unknown>;

/**
 * The tables whose appended rows may wait: history, the search index and the resource tables that
 * no foreign key references and no INSERT trigger reads (rows of any other table go in at once).
 */
export const GATHERED = new Set([
  'resource_history', 'search_token', 'search_string', 'search_date', 'search_number', 'search_quantity',
  'fhir_resources', 'observations', 'lab_results', 'vitals', 'diagnostic_reports', 'medical_conditions',
]);

/** Rows per multi-row INSERT on MySQL; SQLite compiles one into a compound SELECT of at most 500 terms. */
const ROWS_PER_INSERT = { mysql: 1000, sqlite: 500 };
/** Bound values per statement, under SQLite's limit (32,766). */
const MAX_BINDINGS = 30_000;

/** Inserts rows in as few statements as each dialect's limits allow. */
export async function insertRows(trx: Knex, table: string, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const size = Math.max(1, Math.min(ROWS_PER_INSERT[dialectOf(trx)], Math.floor(MAX_BINDINGS / Object.keys(rows[0]!).length)));
  for (let i = 0; i < rows.length; i += size) await trx(table).insert(rows.slice(i, i + size));
}

interface Buffered {
  trx: Knex.Transaction;
  /** Table -> its column list -> rows not yet written, in the order they were given (one INSERT shape each). */
  rows: Map<string, Map<string, Row[]>>;
  /** Set while the buffer writes itself (its own INSERTs pass straight through). */
  writing: boolean;
}

type Query = (connection: unknown, statement: unknown) => Promise<unknown>;

/** The buffer of a transaction, by its client (one per knex transaction). */
const buffers = new WeakMap<object, Buffered>();

const sqlOf = (statement: unknown): string =>
  typeof statement === 'string' ? statement : String((statement as { sql?: unknown } | null)?.sql ?? '');

/** Writes every buffered row (in table order of first use); the buffer is empty after. */
async function write(b: Buffered): Promise<void> {
  if (b.writing || b.rows.size === 0) return;
  b.writing = true;
  try {
    while (b.rows.size) {
      const [table, shapes] = b.rows.entries().next().value as [string, Map<string, Row[]>];
      b.rows.delete(table);
      for (const rows of shapes.values()) await insertRows(b.trx, table, rows);
    }
  } finally {
    b.writing = false;
  }
}

/**
 * From now on `appendRows(trx, ...)` gathers rows in this transaction. A savepoint
 * (trx.transaction) buffers nothing of its own and, like a stream (which bypasses query()), may
 * start only when no rows are gathered (after flushRows). Call it on a transaction the caller
 * opened itself: every appendRows of it is gathered from then on. Idempotent.
 */
export function bufferRows(trx: Knex.Transaction): void {
  const client = trx.client as unknown as { query: Query };
  if (buffers.has(client)) return;
  const b: Buffered = { trx, rows: new Map(), writing: false };
  buffers.set(client, b);
  const query = client.query;
  client.query = async function (this: unknown, connection: unknown, statement: unknown) {
    if (!b.writing && b.rows.size) {
      const sql = sqlOf(statement);
      if (/^\s*ROLLBACK/i.test(sql)) b.rows.clear();
      else if (/^\s*COMMIT/i.test(sql)) {
        // the body returned without flushRows: a failed INSERT here would leave knex's transaction
        // open (it does not roll back a failed COMMIT), so nothing of it commits
        b.rows.clear();
        await query.call(this, connection, 'ROLLBACK');
        throw new Error('A buffered transaction ended with rows not written (flushRows before it returns): rolled back');
      } else if (/^\s*(UPDATE|DELETE)\b/i.test(sql) || [...b.rows.keys()].some((t) => sql.includes(t))) await write(b);
    }
    return query.call(this, connection, statement);
  };
  // a stream runs through the client's stream(), not query(): refused while rows are gathered
  const stream = (client as unknown as { stream: (...args: unknown[]) => unknown }).stream;
  (client as unknown as { stream: (...args: unknown[]) => unknown }).stream = function (this: unknown, ...args: unknown[]) {
    if (b.rows.size) throw new Error('A stream in a buffered transaction must start after flushRows');
    return stream.apply(this, args);
  };
  // a savepoint runs on a client of its own, which this one cannot see through; its SAVEPOINT
  // would come before the rows, and its rollback take them along: refused while rows are gathered
  const nest = (client as unknown as { transaction: (...args: unknown[]) => unknown }).transaction;
  (client as unknown as { transaction: (...args: unknown[]) => unknown }).transaction = function (this: unknown, ...args: unknown[]) {
    if (b.rows.size) throw new Error('A savepoint in a buffered transaction must start after flushRows');
    return nest.apply(this, args);
  };
}

/** Appends rows to a table: at once, or gathered when the transaction buffers them (bufferRows). */
export async function appendRows(trx: Knex, table: string, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const b = trx.isTransaction && GATHERED.has(table) ? buffers.get(trx.client) : undefined;
  if (!b) return insertRows(trx, table, rows);
  let shapes = b.rows.get(table);
  if (!shapes) b.rows.set(table, (shapes = new Map()));
  for (const r of rows) {
    // rows of one INSERT share their columns (a missing one would be NULL on SQLite, not its default)
    const columns = Object.keys(r).join(',');
    const list = shapes.get(columns);
    if (list) list.push(r);
    else shapes.set(columns, [r]);
  }
}

/** Writes what a transaction has gathered now (before work that must see it from another connection). */
export async function flushRows(trx: Knex): Promise<void> {
  const b = trx.isTransaction ? buffers.get(trx.client) : undefined;
  if (b) await write(b);
}
