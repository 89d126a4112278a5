import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName } from './helpers.js';

const TABLE = 'billing';

/** Seed table 9: billing (invoices and payments). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('visit_id', 36);
    t.string('appointment_id', 36);
    t.string('invoice_number', 100).notNullable();
    t.date('service_date').notNullable();
    t.text('service_description').notNullable();
    t.text('procedure_codes'); // CPT codes
    t.text('diagnosis_codes'); // ICD-10 codes
    t.decimal('amount_charged', 10, 2).notNullable();
    t.decimal('amount_paid', 10, 2).defaultTo(0);
    // Must be part of CREATE TABLE: SQLite cannot ALTER TABLE ADD a STORED generated column.
    t.specificType('amount_due', 'DECIMAL(10,2) GENERATED ALWAYS AS (amount_charged - amount_paid) STORED');
    t.enu('payment_status', ['pending', 'partial', 'paid', 'overdue', 'written_off']).defaultTo('pending');
    t.date('billing_date').notNullable();
    t.date('due_date').notNullable();
    t.date('payment_date');
    t.enu('payment_method', ['cash', 'check', 'credit_card', 'insurance', 'other']);
    t.text('notes');
    t.string('created_by', 36).notNullable();

    // `invoice_number VARCHAR(100) UNIQUE`: MySQL names that key after the column.
    t.unique(['invoice_number'], { indexName: ix('invoice_number') });
    // Indexes before foreign keys, so MySQL reuses them instead of adding its own.
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['invoice_number'], ix('idx_invoice'));
    t.index(['payment_status'], ix('idx_payment_status'));
    t.index(['due_date'], ix('idx_due_date'));
    t.index(['service_date'], ix('idx_service_date'));

    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('visit_id').references('id').inTable('visits').onDelete('SET NULL');
    t.foreign('appointment_id').references('id').inTable('appointments').onDelete('SET NULL');
    t.foreign('created_by').references('id').inTable('users').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
