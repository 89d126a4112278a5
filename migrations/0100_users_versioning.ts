import type { Knex } from 'knex';

/** Extension: users get a resource version and soft delete (Practitioner reads as 410 once deleted). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.integer('version_id').notNullable().defaultTo(1);
    t.timestamp('deleted_at', { useTz: false }).nullable().defaultTo(null);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('version_id');
    t.dropColumn('deleted_at');
  });
}
