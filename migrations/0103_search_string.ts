import type { Knex } from 'knex';
import { createSeedTable, indexName } from './helpers.js';
import { binaryCollation } from './helpers-ext.js';

/** Extension: string search index (names, addresses ...), one row per value, rebuilt on each write. */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, 'search_string', (t) => {
    t.bigIncrements('id');
    t.string('resource_type', 64).notNullable();
    t.string('resource_id', 36).notNullable();
    t.string('param', 64).notNullable();
    binaryCollation(knex, t.string('value', 255).notNullable());
    t.string('norm', 255).notNullable();
    // covering: a prefix match yields resource ids without touching the rows
    t.index(['resource_type', 'param', 'norm', 'resource_id'], indexName(knex, 'search_string', 'idx_lookup'));
    t.index(['resource_id', 'param'], indexName(knex, 'search_string', 'idx_resource'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('search_string');
}
