import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { indexName } from './helpers.js';

const TABLE = 'billing';
const NAME = 'idx_overdue';
const COLUMNS = ['payment_status', 'due_date', 'id'];

/**
 * Extension: billing(payment_status, due_date, id), the overdue sweep's index
 * (src/workers/processors/overdue-billing.ts). The sweep walks each unpaid payment status in
 * (due_date, id) order below its cut-off date in keyset batches: with this index every batch is
 * one range read of the rows it changes, whatever the table's size, and a run that finds nothing
 * to do reads nothing. id is spelled out for SQLite, whose indexes end with the rowid, not the key.
 * The seed's single-column idx_payment_status stays (seed indexes are kept as they are).
 */
async function hasIndex(knex: Knex, name: string): Promise<boolean> {
  if (dialectOf(knex) === 'mysql') {
    const [rows] = (await knex.raw(
      'SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ? LIMIT 1', [TABLE, name],
    )) as [unknown[]];
    return rows.length > 0;
  }
  const rows = (await knex.raw("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [name])) as unknown[];
  return rows.length > 0;
}

export async function up(knex: Knex): Promise<void> {
  const name = indexName(knex, TABLE, NAME);
  if (await hasIndex(knex, name)) return;
  await knex.schema.alterTable(TABLE, (t) => { t.index(COLUMNS, name); });
}

export async function down(knex: Knex): Promise<void> {
  const name = indexName(knex, TABLE, NAME);
  if (!(await hasIndex(knex, name))) return;
  await knex.schema.alterTable(TABLE, (t) => { t.dropIndex(COLUMNS, name); });
}
