import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { indexName } from './helpers.js';

/** Case- and accent-sensitive comparison for a column on MySQL (SQLite compares bytes already). */
export function binaryCollation(knex: Knex, column: Knex.ColumnBuilder): Knex.ColumnBuilder {
  return dialectOf(knex) === 'mysql' ? column.collate('utf8mb4_bin') : column;
}

/** Whether an index of this name exists on the table (information_schema on MySQL, sqlite_master on SQLite). */
export async function hasIndex(knex: Knex, table: string, name: string): Promise<boolean> {
  if (dialectOf(knex) === 'mysql') {
    const [rows] = (await knex.raw(
      'SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ? LIMIT 1', [table, name],
    )) as [unknown[]];
    return rows.length > 0;
  }
  const rows = (await knex.raw("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [name])) as unknown[];
  return rows.length > 0;
}

/** A migration adding one index, idempotent both ways (up when missing, down when present). */
export function indexMigration(table: string, indexKey: string, columns: string[]): { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> } {
  return {
    async up(knex) {
      const name = indexName(knex, table, indexKey);
      if (await hasIndex(knex, table, name)) return;
      await knex.schema.alterTable(table, (t) => { t.index(columns, name); });
    },
    async down(knex) {
      const name = indexName(knex, table, indexKey);
      if (!(await hasIndex(knex, table, name))) return;
      await knex.schema.alterTable(table, (t) => { t.dropIndex(columns, name); });
    },
  };
}
