import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampDefaultNow } from './helpers.js';

const TABLE = 'vitals';

/** Seed table 7: vitals (vital signs). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('visit_id', 36);
    t.string('recorded_by', 36).notNullable();
    timestampDefaultNow(knex, t, 'recorded_at');
    t.integer('systolic_bp');
    t.integer('diastolic_bp');
    t.integer('heart_rate');
    t.integer('respiratory_rate');
    t.decimal('temperature', 4, 1);
    t.enu('temperature_unit', ['F', 'C']).defaultTo('F');
    t.integer('oxygen_saturation');
    t.decimal('weight', 5, 2);
    t.enu('weight_unit', ['lbs', 'kg']).defaultTo('lbs');
    t.integer('height_feet');
    t.integer('height_inches');
    t.integer('height_cm');
    t.decimal('bmi', 4, 1);
    // `pain_scale INT CHECK (pain_scale BETWEEN 0 AND 10)`: an unnamed column-level CHECK, as in the seed.
    t.integer('pain_scale').checkBetween([0, 10]);
    t.text('notes');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['visit_id'], ix('idx_visit'));
    t.index(['recorded_at'], ix('idx_recorded_at'));

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('visit_id').references('id').inTable('visits').onDelete('SET NULL');
    t.foreign('recorded_by').references('id').inTable('users').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
