import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: access tokens issued to registered clients (SMART Backend Services). The token itself
 * is never stored, only its SHA-256 hex (token_hash). scope is what the token was granted (v2
 * spelling). A token is live while revoked is false, expires_at is ahead and its client is active.
 * created_at comes first with an explicit DEFAULT, so that no MySQL setting gives a TIMESTAMP
 * column ON UPDATE CURRENT_TIMESTAMP (revoking a token must not move its expiry).
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'client_tokens', name);
  await createSeedTable(knex, 'client_tokens', (t) => {
    idColumn(t);
    t.string('token_hash', 64).notNullable();
    t.string('client_id', 36).notNullable();
    t.text('scope').notNullable();
    timestampColumn(t, 'created_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'expires_at').notNullable().defaultTo(knex.fn.now());
    t.boolean('revoked').notNullable().defaultTo(false);
    t.unique(['token_hash'], { indexName: ix('uq_token_hash') });
    t.index(['client_id', 'revoked'], ix('idx_client_revoked'));
    t.index(['expires_at'], ix('idx_expires'));
    t.foreign('client_id').references('id').inTable('api_clients').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('client_tokens');
}
