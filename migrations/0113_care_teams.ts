import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: care teams (FHIR CareTeam). One row per team of one patient; its members are in
 * care_team_members. An active member of an active team whose period covers now is assigned to
 * the patient (docs/security.md). Everything else a CareTeam carries is kept in resource_history.
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'care_teams', name);
  await createSeedTable(knex, 'care_teams', (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('status', 20).notNullable(); // proposed | active | suspended | inactive | entered-in-error
    t.string('name', 255);
    t.datetime('period_start', { useTz: false }).nullable();
    t.datetime('period_end', { useTz: false }).nullable();
    t.integer('version_id').notNullable().defaultTo(1);
    timestampColumn(t, 'created_at').nullable();
    timestampColumn(t, 'updated_at').nullable();
    t.index(['patient_id', 'status'], ix('idx_patient_status'));
    t.index(['updated_at'], ix('idx_updated'));
    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('care_teams');
}
