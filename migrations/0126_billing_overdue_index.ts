import { indexMigration } from './helpers-ext.js';

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
export const { up, down } = indexMigration(TABLE, NAME, COLUMNS);
