import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: the Observation projection and the DiagnosticReport table.
 *
 * observations: one row per Observation. A vital-sign Observation is one measurement of a vitals
 * row (measure says which), a laboratory (or any other) Observation is one lab_results row. The
 * source rows stay authoritative; this table holds the stable FHIR id, the version and the
 * values searches compare (code, effective time, quantity), so a search is one indexed table.
 *
 * diagnostic_reports: DiagnosticReports written through the API (their result references and
 * everything else are kept in resource_history).
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (table: string, name: string) => indexName(knex, table, name);
  await createSeedTable(knex, 'observations', (t) => {
    idColumn(t);
    t.string('source', 10).notNullable(); // 'vitals' | 'lab'
    t.string('source_id', 36).notNullable();
    t.string('measure', 20); // which vital (bp, heart-rate ... panel); NULL for lab rows
    t.string('patient_id', 36).notNullable();
    t.string('visit_id', 36);
    t.string('category', 64);
    t.string('code_system', 255);
    t.string('code', 64);
    t.datetime('effective_at', { useTz: false });
    t.double('value_quantity');
    t.string('unit', 64);
    t.string('status', 20).notNullable();
    t.integer('version_id').notNullable().defaultTo(1);
    timestampColumn(t, 'created_at').nullable();
    timestampColumn(t, 'updated_at').nullable();
    t.index(['patient_id', 'code', 'effective_at'], ix('observations', 'idx_patient_code_date'));
    t.index(['source', 'source_id'], ix('observations', 'idx_source'));
    t.index(['code', 'effective_at'], ix('observations', 'idx_code_date'));
    t.index(['visit_id'], ix('observations', 'idx_visit'));
    t.index(['effective_at'], ix('observations', 'idx_effective'));
    t.index(['updated_at'], ix('observations', 'idx_updated'));
    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
  });
  await createSeedTable(knex, 'diagnostic_reports', (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('visit_id', 36);
    t.string('status', 20).notNullable();
    t.string('category', 64);
    t.string('code_system', 255);
    t.string('code', 64);
    t.datetime('effective_at', { useTz: false });
    t.datetime('issued', { useTz: false });
    t.integer('version_id').notNullable().defaultTo(1);
    timestampColumn(t, 'created_at').nullable();
    timestampColumn(t, 'updated_at').nullable();
    t.index(['patient_id', 'effective_at'], ix('diagnostic_reports', 'idx_patient_date'));
    t.index(['visit_id'], ix('diagnostic_reports', 'idx_visit'));
    t.index(['updated_at'], ix('diagnostic_reports', 'idx_updated'));
    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('diagnostic_reports');
  await knex.schema.dropTableIfExists('observations');
}
