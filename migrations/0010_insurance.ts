import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName } from './helpers.js';

const TABLE = 'insurance';

/** Seed table 10: insurance (coverage per patient). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('insurance_company', 255).notNullable();
    t.string('policy_number', 100).notNullable();
    t.string('group_number', 100);
    t.string('policy_holder_name', 255).notNullable();
    t.enu('relationship_to_patient', ['self', 'spouse', 'child', 'parent', 'other']).notNullable();
    t.enu('coverage_type', ['primary', 'secondary', 'tertiary']).notNullable();
    t.date('effective_date').notNullable();
    t.date('expiration_date');
    t.decimal('copay_amount', 6, 2);
    t.decimal('deductible_amount', 8, 2);
    t.decimal('deductible_met', 8, 2).defaultTo(0);
    t.enu('status', ['active', 'inactive', 'expired']).defaultTo('active');
    t.boolean('pre_auth_required').defaultTo(false);
    t.text('notes');

    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['policy_number'], ix('idx_policy'));
    t.index(['coverage_type'], ix('idx_coverage_type'));
    t.index(['status'], ix('idx_status'));
    t.unique(['patient_id', 'coverage_type'], { indexName: ix('unique_patient_coverage') });

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
