import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn, timestampDefaultNow, timestampOnUpdateNow } from './helpers.js';

const TABLE = 'users';

/** Seed table 1: users (authentication and roles). */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.string('email', 255).notNullable();
    t.string('password_hash', 255).notNullable();
    t.string('name', 255).notNullable();
    t.enu('role', ['admin', 'doctor', 'nurse', 'patient', 'finance']).notNullable();
    t.string('avatar', 500);
    t.string('department', 100);
    t.string('specialization', 100);
    t.string('phone', 20);
    t.enu('status', ['active', 'inactive', 'suspended']).defaultTo('active');
    timestampColumn(t, 'last_login').nullable();
    timestampDefaultNow(knex, t, 'created_at');
    timestampOnUpdateNow(knex, t, 'updated_at');

    // `email VARCHAR(255) UNIQUE`: MySQL names that key after the column.
    t.unique(['email'], { indexName: ix('email') });
    t.index(['email'], ix('idx_email'));
    t.index(['role'], ix('idx_role'));
    t.index(['status'], ix('idx_status'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable(TABLE);
}
