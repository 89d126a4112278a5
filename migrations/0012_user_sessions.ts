import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { createSeedTable, idColumn, indexName, timestampColumn, timestampDefaultNow, timestampOnUpdateNow } from './helpers.js';

const TABLE = 'user_sessions';

/** Seed table 12: user_sessions (login sessions). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('user_id', 36).notNullable();
    t.string('session_token', 255).notNullable();
    t.string('ip_address', 45);
    t.text('user_agent');
    timestampDefaultNow(knex, t, 'created_at');
    timestampColumn(t, 'expires_at').notNullable();
    timestampOnUpdateNow(knex, t, 'last_activity');
    t.boolean('is_active').defaultTo(true);

    // `session_token VARCHAR(255) UNIQUE`: MySQL names that key after the column.
    t.unique(['session_token'], { indexName: ix('session_token') });
    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['user_id'], ix('idx_user'));
    t.index(['session_token'], ix('idx_token'));
    t.index(['expires_at'], ix('idx_expires'));
    t.index(['is_active'], ix('idx_active'));

    t.foreign('user_id').references('id').inTable('users').onDelete('CASCADE');
  });
  if (dialectOf(knex) === 'mysql') {
    // With explicit_defaults_for_timestamp=OFF (MySQL 5.7, MariaDB < 10.10 defaults) a
    // `TIMESTAMP NOT NULL` silently gets DEFAULT '0000-00-00 00:00:00'; the seed has no default.
    // A no-op when the variable is ON.
    await knex.raw('ALTER TABLE ?? ALTER COLUMN ?? DROP DEFAULT', [TABLE, 'expires_at']);
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
