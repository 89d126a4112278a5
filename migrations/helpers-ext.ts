import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';

/** Case- and accent-sensitive comparison for a column on MySQL (SQLite compares bytes already). */
export function binaryCollation(knex: Knex, column: Knex.ColumnBuilder): Knex.ColumnBuilder {
  return dialectOf(knex) === 'mysql' ? column.collate('utf8mb4_bin') : column;
}
