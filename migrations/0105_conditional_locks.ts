import type { Knex } from 'knex';
import { createSeedTable } from './helpers.js';

/**
 * Extension: one row per conditional-create criteria (hashed). A conditional create upserts its
 * row first, which holds a row lock until commit, so identical concurrent requests run one after
 * the other on every API process and only one of them creates.
 */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, 'conditional_locks', (t) => {
    t.string('lock_key', 64).primary();
    t.timestamp('touched_at', { useTz: false }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('conditional_locks');
}
