import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampDefaultNow, timestampOnUpdateNow } from './helpers.js';

const TABLE = 'appointments';

/** Seed table 3: appointments (scheduling with priority and status). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('doctor_id', 36).notNullable();
    t.date('appointment_date').notNullable();
    t.time('appointment_time').notNullable();
    t.integer('duration_minutes').defaultTo(30);
    t.enu('appointment_type', ['consultation', 'follow_up', 'emergency', 'surgery', 'diagnostic']).notNullable();
    t.enu('priority', ['low', 'medium', 'high', 'urgent']).defaultTo('medium');
    t.enu('status', ['scheduled', 'confirmed', 'in_progress', 'completed', 'cancelled', 'no_show']).defaultTo('scheduled');
    t.text('chief_complaint');
    t.text('notes');
    t.string('room_number', 20);
    t.string('created_by', 36).notNullable();
    t.string('cancelled_by', 36);
    t.text('cancellation_reason');
    timestampDefaultNow(knex, t, 'created_at');
    timestampOnUpdateNow(knex, t, 'updated_at');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['appointment_date', 'appointment_time'], ix('idx_date_time'));
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['doctor_id'], ix('idx_doctor'));
    t.index(['status'], ix('idx_status'));
    t.index(['priority'], ix('idx_priority'));

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('doctor_id').references('id').inTable('users').onDelete('CASCADE');
    t.foreign('created_by').references('id').inTable('users').onDelete('CASCADE');
    t.foreign('cancelled_by').references('id').inTable('users').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
