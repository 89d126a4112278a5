import type { Knex } from 'knex';
import { createSeedTable, indexName } from './helpers.js';
import { dialectOf } from '../src/db/dialect.js';

/**
 * Extension: every version of every resource, written in the same transaction as the row.
 * Serves vread, _history, ETags and the data-change audit trail, and keeps the elements a
 * client sent that no column holds (the current version is merged with its row on read).
 */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, 'resource_history', (t) => {
    t.string('resource_type', 64).notNullable();
    t.string('resource_id', 36).notNullable();
    t.integer('version_id').notNullable();
    t.string('method', 8).notNullable();
    t.timestamp('recorded_at', { useTz: false }).notNullable();
    t.string('recorded_by', 36).nullable();
    if (dialectOf(knex) === 'sqlite') t.text('resource').nullable();
    else t.specificType('resource', 'LONGTEXT NULL');
    t.primary(['resource_type', 'resource_id', 'version_id']);
    t.index(['resource_type', 'recorded_at'], indexName(knex, 'resource_history', 'idx_type_recorded'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('resource_history');
}
