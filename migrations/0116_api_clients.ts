import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: registered systems (SMART Backend Services clients: labs, EHRs, insurers). id is the
 * client_id (UUIDv7). A client authenticates with a JWT signed by a key of its JWKS, held by value
 * (jwks) or fetched from jwks_url (an operator allow-listed URL); exactly one of the two is set.
 * scope holds the scopes the client may be granted (space separated). Rows are never deleted: a
 * revoked client keeps its row, so the security log's client ids stay resolvable.
 *
 * created_at carries an explicit DEFAULT so that no MySQL setting can give it ON UPDATE
 * CURRENT_TIMESTAMP (updated_at is written by the repository on both dialects).
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'api_clients', name);
  await createSeedTable(knex, 'api_clients', (t) => {
    idColumn(t);
    t.string('name', 255).notNullable();
    t.enu('kind', ['lab', 'ehr', 'insurer', 'other']).notNullable();
    t.json('jwks').nullable();
    t.string('jwks_url', 2048).nullable();
    t.text('scope').notNullable();
    t.enu('status', ['active', 'revoked']).notNullable().defaultTo('active');
    t.string('created_by', 36).nullable();
    timestampColumn(t, 'created_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'updated_at').nullable();
    // listing filters by kind and/or status and pages by id
    t.index(['kind', 'id'], ix('idx_kind'));
    t.index(['status', 'id'], ix('idx_status'));
    t.index(['created_by'], ix('idx_created_by'));
    t.foreign('created_by').references('id').inTable('users').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_clients');
}
