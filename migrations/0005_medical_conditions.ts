import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampDefaultNow, timestampOnUpdateNow } from './helpers.js';

const TABLE = 'medical_conditions';

/** Seed table 5: medical_conditions (diagnoses). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('visit_id', 36);
    t.string('condition_name', 255).notNullable();
    t.string('icd_10_code', 20);
    t.date('diagnosis_date').notNullable();
    t.enu('severity', ['mild', 'moderate', 'severe', 'critical']).defaultTo('moderate');
    t.enu('status', ['active', 'resolved', 'chronic', 'in_remission']).defaultTo('active');
    t.text('notes');
    t.string('diagnosed_by', 36).notNullable();
    timestampDefaultNow(knex, t, 'created_at');
    timestampOnUpdateNow(knex, t, 'updated_at');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['condition_name'], ix('idx_condition'));
    t.index(['status'], ix('idx_status'));
    t.index(['icd_10_code'], ix('idx_icd_code'));

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('visit_id').references('id').inTable('visits').onDelete('SET NULL');
    t.foreign('diagnosed_by').references('id').inTable('users').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
