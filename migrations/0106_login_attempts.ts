import type { Knex } from 'knex';
import { createSeedTable } from './helpers.js';

/**
 * Extension: login throttling counters, one row per key (the SHA-256 hex of 'ip:<address>' or
 * 'email:<lower-cased email>', so no address or email is stored). A login registers its attempt
 * here (upsert, row lock until commit) before the password is checked, so concurrent attempts are
 * counted one after the other on every API process and cannot race past the limit.
 *
 * window_start has an explicit DEFAULT: without one, MySQL/MariaDB with
 * explicit_defaults_for_timestamp=OFF would give the first TIMESTAMP NOT NULL column
 * ON UPDATE CURRENT_TIMESTAMP, and every counter update would restart the window.
 */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, 'login_attempts', (t) => {
    t.string('key_hash', 64).notNullable().primary();
    t.timestamp('window_start', { useTz: false }).notNullable().defaultTo(knex.fn.now());
    t.integer('attempts').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('login_attempts');
}
