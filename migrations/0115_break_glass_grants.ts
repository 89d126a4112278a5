import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: break-glass (emergency access) grants. A doctor or nurse who states a reason reaches
 * one unassigned patient's record until expires_at; every access under a grant is flagged in the
 * security log, and admins review the grants at GET /admin/break-glass. Rows are never changed.
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'break_glass_grants', name);
  await createSeedTable(knex, 'break_glass_grants', (t) => {
    idColumn(t);
    t.string('user_id', 36).notNullable();
    t.string('patient_id', 36).notNullable();
    t.text('reason').notNullable();
    timestampColumn(t, 'granted_at').notNullable();
    timestampColumn(t, 'expires_at').notNullable();
    t.string('ip_address', 45);
    t.index(['user_id', 'expires_at'], ix('idx_user_expires'));
    t.index(['patient_id'], ix('idx_patient'));
    t.index(['granted_at'], ix('idx_granted'));
    t.foreign('user_id').references('id').inTable('users').onDelete('CASCADE');
    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('break_glass_grants');
}
