import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampDefaultNow } from './helpers.js';

const TABLE = 'security_logs';

/** Seed table 11: security_logs (audit trail of security events). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('user_id', 36);
    t.string('action', 100).notNullable();
    t.string('resource_type', 50);
    t.string('resource_id', 36);
    t.string('ip_address', 45);
    t.text('user_agent');
    timestampDefaultNow(knex, t, 'timestamp');
    t.boolean('success').notNullable();
    t.text('failure_reason');
    t.json('additional_data'); // MariaDB: LONGTEXT with CHECK (json_valid(additional_data))

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['user_id'], ix('idx_user'));
    t.index(['action'], ix('idx_action'));
    t.index(['timestamp'], ix('idx_timestamp'));
    t.index(['success'], ix('idx_success'));
    t.index(['resource_type', 'resource_id'], ix('idx_resource'));

    t.foreign('user_id').references('id').inTable('users').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
