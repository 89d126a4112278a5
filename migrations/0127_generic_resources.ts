import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { createSeedTable, indexName, timestampColumn } from './helpers.js';
import { binaryCollation } from './helpers-ext.js';

/**
 * Extension: the generic store (docs/generic-store.md). Every R4 resource type that no seed table
 * holds lives in fhir_resources, one row per resource: its type, id, current version, times, the
 * deletion mark, the patient whose compartment it is in (the access policy reaches it through
 * that column) and the resource as last written (JSON, meta included). Its versions are kept in
 * resource_history like every other type's.
 *
 * The search index grows three tables for the parameter types the seed types search by column:
 * dates (each value a range [low, high) in epoch milliseconds, so any year compares), numbers and
 * quantities. Strings, tokens, references and uris stay in search_string and search_token.
 */
export async function up(knex: Knex): Promise<void> {
  const mysql = dialectOf(knex) === 'mysql';
  await createSeedTable(knex, 'fhir_resources', (t) => {
    t.string('resource_type', 64).notNullable();
    // the collation of every other id column (seed tables, the search index): joins with the index
    // compare like with like and use its indexes; exact case is the reads' BINARY narrowing
    // (whereExactIds), and ids that differ only in case cannot both exist, as in the seed tables
    t.string('id', 36).notNullable();
    t.integer('version_id').notNullable().defaultTo(1);
    timestampColumn(t, 'created_at').nullable();
    timestampColumn(t, 'updated_at').nullable();
    timestampColumn(t, 'deleted_at').nullable();
    t.string('patient_id', 36).nullable();
    if (mysql) t.specificType('resource', 'LONGTEXT NOT NULL');
    else t.text('resource').notNullable();
    t.primary(['resource_type', 'id']);
    t.index(['patient_id', 'resource_type'], indexName(knex, 'fhir_resources', 'idx_patient'));
    t.index(['resource_type', 'updated_at'], indexName(knex, 'fhir_resources', 'idx_type_updated'));
  });
  await indexTable(knex, 'search_date', (t) => {
    t.bigInteger('low').notNullable();
    t.bigInteger('high').notNullable();
  }, [['low', 'idx_low'], ['high', 'idx_high']]);
  await indexTable(knex, 'search_number', (t) => { t.double('value').notNullable(); }, [['value', 'idx_lookup']]);
  await indexTable(knex, 'search_quantity', (t) => {
    t.double('value').notNullable();
    binaryCollation(knex, t.string('system', 255).nullable());
    binaryCollation(knex, t.string('code', 255).nullable());
  }, [['value', 'idx_lookup']]);
}

/**
 * A search index table: the resource (type, id) and parameter of each row, its value columns, an
 * index per value column leading with (type, parameter) for lookups, and one by resource for the
 * rewrite of a resource's rows at each write.
 */
async function indexTable(knex: Knex, name: string, values: (t: Knex.CreateTableBuilder) => void, lookups: [string, string][]): Promise<void> {
  await createSeedTable(knex, name, (t) => {
    t.bigIncrements('id');
    t.string('resource_type', 64).notNullable();
    t.string('resource_id', 36).notNullable();
    t.string('param', 64).notNullable();
    values(t);
    for (const [column, index] of lookups) t.index(['resource_type', 'param', column, 'resource_id'], indexName(knex, name, index));
    t.index(['resource_id', 'param'], indexName(knex, name, 'idx_resource'));
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['search_quantity', 'search_number', 'search_date', 'fhir_resources']) await knex.schema.dropTableIfExists(table);
}
