import type { Knex } from 'knex';
import { createSeedTable, indexName } from './helpers.js';

/**
 * Extension: the Practitioner members of care teams (CareTeam.participant.member that are users
 * rows), one row per participant, rewritten with each version of the team. The assignment check
 * looks members up by user (idx_user_team).
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'care_team_members', name);
  await createSeedTable(knex, 'care_team_members', (t) => {
    t.string('care_team_id', 36).notNullable();
    t.integer('position').notNullable();
    t.string('user_id', 36).notNullable();
    t.datetime('period_start', { useTz: false }).nullable();
    t.datetime('period_end', { useTz: false }).nullable();
    t.primary(['care_team_id', 'position']);
    t.index(['user_id', 'care_team_id'], ix('idx_user_team'));
    t.foreign('care_team_id').references('id').inTable('care_teams').onDelete('CASCADE');
    t.foreign('user_id').references('id').inTable('users').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('care_team_members');
}
