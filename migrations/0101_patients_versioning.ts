import type { Knex } from 'knex';
import { indexName } from './helpers.js';

/** Extension: patients get a resource version, soft delete, and an index for _lastUpdated. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('patients', (t) => {
    t.integer('version_id').notNullable().defaultTo(1);
    t.timestamp('deleted_at', { useTz: false }).nullable().defaultTo(null);
  });
  await knex.schema.alterTable('patients', (t) => {
    t.index(['updated_at'], indexName(knex, 'patients', 'idx_hms_updated_at'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('patients', (t) => {
    t.dropIndex(['updated_at'], indexName(knex, 'patients', 'idx_hms_updated_at'));
  });
  await knex.schema.alterTable('patients', (t) => {
    t.dropColumn('version_id');
    t.dropColumn('deleted_at');
  });
}
