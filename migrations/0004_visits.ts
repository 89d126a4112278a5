import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampDefaultNow, timestampOnUpdateNow } from './helpers.js';

const TABLE = 'visits';

/** Seed table 4: visits (clinical encounters). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('doctor_id', 36).notNullable();
    t.string('appointment_id', 36);
    t.date('visit_date').notNullable();
    t.time('visit_time').notNullable();
    t.enu('visit_type', ['routine', 'emergency', 'follow_up', 'consultation', 'surgery']).notNullable();
    t.text('chief_complaint');
    t.text('history_present_illness');
    t.text('physical_examination');
    t.text('assessment');
    t.text('plan');
    t.text('notes');
    t.text('discharge_instructions');
    t.text('follow_up_instructions');
    t.enu('status', ['in_progress', 'completed', 'cancelled']).defaultTo('in_progress');
    timestampDefaultNow(knex, t, 'created_at');
    timestampOnUpdateNow(knex, t, 'updated_at');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['doctor_id'], ix('idx_doctor'));
    t.index(['visit_date'], ix('idx_date'));
    t.index(['status'], ix('idx_status'));

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('doctor_id').references('id').inTable('users').onDelete('CASCADE');
    t.foreign('appointment_id').references('id').inTable('appointments').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
