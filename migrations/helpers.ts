import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';

/**
 * Name of an index or unique key. MySQL scopes index names to their table, so the seed's names
 * (idx_email, idx_patient, ...) are used as they are; SQLite scopes them to the whole database,
 * so there they are prefixed with the table name (appointments_idx_patient).
 */
export function indexName(knex: Knex, table: string, name: string): string {
  return dialectOf(knex) === 'mysql' ? name : `${table}_${name}`;
}

/** `id VARCHAR(36) PRIMARY KEY` (NOT NULL spelled out: SQLite would otherwise allow a NULL key). */
export function idColumn(t: Knex.CreateTableBuilder): Knex.ColumnBuilder {
  return t.string('id', 36).notNullable().primary();
}

/** A plain TIMESTAMP (DATETIME affinity on SQLite); nullability and default are up to the caller. */
export function timestampColumn(t: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  return t.timestamp(name, { useTz: false });
}

/**
 * `TIMESTAMP DEFAULT CURRENT_TIMESTAMP`. NULL is spelled out so MySQL/MariaDB with
 * explicit_defaults_for_timestamp=OFF do not turn it into NOT NULL.
 */
export function timestampDefaultNow(knex: Knex, t: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  return timestampColumn(t, name).nullable().defaultTo(knex.fn.now());
}

/**
 * `TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP` on MySQL. SQLite has no
 * ON UPDATE clause, so there it is only `DEFAULT CURRENT_TIMESTAMP` (writers set it themselves).
 */
export function timestampOnUpdateNow(knex: Knex, t: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  const dflt = dialectOf(knex) === 'mysql' ? knex.raw('CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP') : knex.fn.now();
  return timestampColumn(t, name).nullable().defaultTo(dflt);
}

/**
 * Creates one seed table: InnoDB / utf8mb4 / utf8mb4_unicode_ci on MySQL (knex rejects these
 * options on SQLite). knex issues a MySQL CREATE TABLE followed by one ALTER TABLE per index and
 * foreign key, and each of those commits on its own; if one of them fails, the half-built table
 * is dropped again (only when this call created it) so that the migration can simply be rerun.
 */
export async function createSeedTable(
  knex: Knex,
  name: string,
  build: (t: Knex.CreateTableBuilder) => void,
): Promise<void> {
  const mysql = dialectOf(knex) === 'mysql';
  const existed = mysql && (await knex.schema.hasTable(name));
  try {
    await knex.schema.createTable(name, (t) => {
      if (mysql) {
        t.engine('InnoDB');
        t.charset('utf8mb4');
        t.collate('utf8mb4_unicode_ci');
      }
      build(t);
    });
  } catch (err) {
    if (mysql && !existed) await knex.schema.dropTableIfExists(name).catch(() => undefined);
    throw err;
  }
}
