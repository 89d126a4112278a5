import type { Knex } from 'knex';
import { createSeedTable, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: client assertions already used at POST /auth/token (replay refusal). The key is the
 * SHA-256 hex of `<client_id>\n<jti>`: a unique key every API process shares, so an assertion
 * replayed on another process is refused too, and a jti is compared byte for byte (a collation
 * would not make 'a' and 'A' the same jti). expires_at is the assertion's exp plus the clock
 * tolerance: until then the assertion could still be accepted, so the row must stay; later rows
 * are purged. The explicit DEFAULT keeps MySQL from giving the column ON UPDATE CURRENT_TIMESTAMP.
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'client_assertions', name);
  await createSeedTable(knex, 'client_assertions', (t) => {
    t.string('jti_hash', 64).notNullable().primary();
    t.string('client_id', 36).notNullable();
    timestampColumn(t, 'expires_at').notNullable().defaultTo(knex.fn.now());
    t.index(['expires_at'], ix('idx_expires'));
    t.index(['client_id'], ix('idx_client'));
    t.foreign('client_id').references('id').inTable('api_clients').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('client_assertions');
}
