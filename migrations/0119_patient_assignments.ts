import type { Knex } from 'knex';
import { createSeedTable, indexName } from './helpers.js';

/**
 * Extension: who is assigned to which patient, one row per source of an assignment (a patient's
 * primary doctor, an appointment or visit that is not cancelled, a member of an active care team
 * with the period the membership covers). The tables it comes from stay authoritative: triggers
 * (0120) keep this one in step inside the transaction of every change to them, native writes
 * included, so an assignment counts from the next statement on. It exists so that the access
 * check is one index probe, and so that a search narrowed to a clinician's patients can be driven
 * from them (docs/security.md, docs/architecture.md).
 */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, 'patient_assignments', (t) => {
    t.string('user_id', 36).notNullable();
    t.string('patient_id', 36).notNullable();
    t.string('source', 12).notNullable(); // primary | appointment | visit | care-team
    t.string('source_id', 36).notNullable(); // the patient, appointment, visit or care team
    t.integer('position').notNullable().defaultTo(0); // the participant of a care team
    t.datetime('starts', { useTz: false }).nullable();
    t.datetime('ends', { useTz: false }).nullable();
    t.primary(['user_id', 'patient_id', 'source', 'source_id', 'position']);
    t.index(['source', 'source_id'], indexName(knex, 'patient_assignments', 'idx_source'));
    t.index(['patient_id', 'user_id'], indexName(knex, 'patient_assignments', 'idx_patient'));
    t.foreign('user_id').references('id').inTable('users').onDelete('CASCADE');
    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('patient_assignments');
}
