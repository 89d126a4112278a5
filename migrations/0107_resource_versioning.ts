import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';

/**
 * Extension: the clinical and financial tables become versioned FHIR resources. Each gets a
 * resource version; those without them get created_at / updated_at. SQLite can neither add a
 * column with a non-constant default nor has ON UPDATE, so there they default to NULL and the
 * write path (and the seeder) always sets them.
 */
const TABLES: { table: string; timestamps: boolean }[] = [
  { table: 'appointments', timestamps: false },
  { table: 'visits', timestamps: false },
  { table: 'medical_conditions', timestamps: false },
  { table: 'prescriptions', timestamps: false },
  { table: 'vitals', timestamps: true },
  { table: 'lab_results', timestamps: true },
  { table: 'billing', timestamps: true },
  { table: 'insurance', timestamps: true },
];

export async function up(knex: Knex): Promise<void> {
  const mysql = dialectOf(knex) === 'mysql';
  for (const { table, timestamps } of TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.integer('version_id').notNullable().defaultTo(1);
      if (timestamps) {
        t.timestamp('created_at', { useTz: false }).nullable().defaultTo(mysql ? knex.fn.now() : null);
        t.timestamp('updated_at', { useTz: false }).nullable()
          .defaultTo(mysql ? knex.raw('CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP') : null);
      }
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const { table, timestamps } of [...TABLES].reverse()) {
    await knex.schema.alterTable(table, (t) => {
      t.dropColumn('version_id');
      if (timestamps) {
        t.dropColumn('created_at');
        t.dropColumn('updated_at');
      }
    });
  }
}
