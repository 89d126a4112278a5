import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampDefaultNow, timestampOnUpdateNow } from './helpers.js';

const TABLE = 'patients';

/** Seed table 2: patients (demographics and summary medical information). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('user_id', 36); // links to users for patient portal access
    t.string('first_name', 100).notNullable();
    t.string('last_name', 100).notNullable();
    t.date('date_of_birth').notNullable();
    t.enu('gender', ['male', 'female', 'other', 'prefer_not_to_say']).notNullable();
    t.string('phone', 20);
    t.string('email', 255);
    t.text('address');
    t.string('city', 100);
    t.string('state', 50);
    t.string('zip_code', 10);
    t.string('country', 50).defaultTo('USA');
    t.string('emergency_contact_name', 255);
    t.string('emergency_contact_phone', 20);
    t.string('emergency_contact_relationship', 50);
    t.enu('blood_type', ['A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-']);
    t.text('allergies');
    t.text('chronic_conditions');
    t.text('current_medications');
    t.string('primary_doctor_id', 36);
    t.enu('status', ['active', 'inactive', 'deceased']).defaultTo('active');
    timestampDefaultNow(knex, t, 'created_at');
    timestampOnUpdateNow(knex, t, 'updated_at');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['last_name', 'first_name'], ix('idx_name'));
    t.index(['primary_doctor_id'], ix('idx_doctor'));
    t.index(['status'], ix('idx_status'));

    t.foreign('user_id').references('id').inTable('users').onDelete('SET NULL');
    t.foreign('primary_doctor_id').references('id').inTable('users').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
