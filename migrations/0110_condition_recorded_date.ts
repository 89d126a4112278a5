import type { Knex } from 'knex';
import { indexName } from './helpers.js';

/**
 * Extension: medical_conditions.recorded_date holds Condition.recordedDate (the seed's
 * diagnosis_date is the onset), so the recorded-date search parameter is a column search.
 * Nullable: rows written natively have none.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('medical_conditions', (t) => {
    t.date('recorded_date').nullable();
  });
  await knex.schema.alterTable('medical_conditions', (t) => {
    t.index(['recorded_date'], indexName(knex, 'medical_conditions', 'idx_hms_recorded_date'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('medical_conditions', (t) => {
    t.dropIndex(['recorded_date'], indexName(knex, 'medical_conditions', 'idx_hms_recorded_date'));
  });
  await knex.schema.alterTable('medical_conditions', (t) => {
    t.dropColumn('recorded_date');
  });
}
