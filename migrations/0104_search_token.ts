import type { Knex } from 'knex';
import { createSeedTable, indexName } from './helpers.js';
import { binaryCollation } from './helpers-ext.js';

/** Extension: token and reference search index (identifiers, telecoms, references), rebuilt on each write. */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, 'search_token', (t) => {
    t.bigIncrements('id');
    t.string('resource_type', 64).notNullable();
    t.string('resource_id', 36).notNullable();
    t.string('param', 64).notNullable();
    binaryCollation(knex, t.string('system', 255).nullable());
    binaryCollation(knex, t.string('code', 255).notNullable());
    t.index(['resource_type', 'param', 'code', 'resource_id'], indexName(knex, 'search_token', 'idx_lookup'));
    t.index(['resource_id', 'param'], indexName(knex, 'search_token', 'idx_resource'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('search_token');
}
