import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName } from './helpers.js';

const TABLE = 'lab_results';

/** Seed table 8: lab_results (laboratory tests and results). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('visit_id', 36);
    t.string('ordered_by', 36).notNullable();
    t.string('test_name', 255).notNullable();
    t.string('test_code', 50);
    t.enu('test_category', ['blood', 'urine', 'imaging', 'pathology', 'microbiology', 'other']).notNullable();
    t.string('result_value', 255);
    t.string('result_unit', 50);
    t.string('reference_range', 100);
    t.enu('status', ['ordered', 'in_progress', 'completed', 'cancelled']).defaultTo('ordered');
    t.enu('abnormal_flag', ['normal', 'low', 'high', 'critical']).defaultTo('normal');
    t.date('ordered_date').notNullable();
    t.date('collection_date');
    t.date('result_date');
    t.text('lab_comments');
    t.text('interpretation');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['test_name'], ix('idx_test_name'));
    t.index(['status'], ix('idx_status'));
    t.index(['ordered_date'], ix('idx_ordered_date'));
    t.index(['abnormal_flag'], ix('idx_abnormal_flag'));

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('visit_id').references('id').inTable('visits').onDelete('SET NULL');
    t.foreign('ordered_by').references('id').inTable('users').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
