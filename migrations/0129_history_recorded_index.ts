import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { indexName } from './helpers.js';

const TABLE = 'resource_history';
const NAME = 'idx_recorded_key';
const COLUMNS = ['recorded_at', 'resource_type', 'resource_id', 'version_id'];

/**
 * Extension: resource_history(recorded_at, resource_type, resource_id, version_id), the index of
 * system history (GET /fhir/_history, src/fhir/history.ts). It lists the versions of many types in
 * (recorded_at, type, id, version) order, newest first, in keyset pages: with this index a page is
 * one backward range read from the cursor, whatever the table's size. Type history is served by
 * idx_type_recorded (resource_type, recorded_at), whose InnoDB entries end with the primary key.
 * The key columns are spelled out for SQLite, whose indexes end with the rowid.
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
