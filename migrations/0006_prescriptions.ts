import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampDefaultNow, timestampOnUpdateNow } from './helpers.js';

const TABLE = 'prescriptions';

/** Seed table 6: prescriptions (medication orders). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('doctor_id', 36).notNullable();
    t.string('visit_id', 36);
    t.string('medication_name', 255).notNullable();
    t.string('dosage', 100).notNullable();
    t.string('frequency', 100).notNullable();
    t.string('duration', 100);
    t.integer('quantity_prescribed');
    t.integer('refills_remaining').defaultTo(0);
    t.text('instructions');
    t.string('indication', 255);
    t.enu('status', ['active', 'completed', 'cancelled', 'expired']).defaultTo('active');
    t.date('prescribed_date').notNullable();
    t.date('start_date');
    t.date('end_date');
    t.text('pharmacy_notes');
    timestampDefaultNow(knex, t, 'created_at');
    timestampOnUpdateNow(knex, t, 'updated_at');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['doctor_id'], ix('idx_doctor'));
    t.index(['medication_name'], ix('idx_medication'));
    t.index(['status'], ix('idx_status'));
    t.index(['prescribed_date'], ix('idx_prescribed_date'));

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('doctor_id').references('id').inTable('users').onDelete('CASCADE');
    t.foreign('visit_id').references('id').inTable('visits').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
