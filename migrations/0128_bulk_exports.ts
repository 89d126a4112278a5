import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

const TABLE = 'bulk_exports';

/**
 * Extension: Bulk Data $export jobs (docs/bulk-data.md).
 *
 * One row per kick-off: who asked (user_id or client_id, with the client's granted scope, so the
 * worker applies the same access rules the request had), what (level system | patient | group,
 * the group id, the types, _since and _typeFilter as JSON: no patient data), the request URL and
 * transaction time for the manifest, the status (queued -> running -> done | failed | cancelled),
 * progress text for X-Progress, the manifest's output[] and error[] (file names and counts), and
 * when its files expire. The files live under HMS_EXPORT_DIR/<id>/; the row is kept after they
 * are removed (status expired) as the record of what was exported. The job id of its bulk-export
 * job is the row's id (job_outbox).
 */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, TABLE, (t) => {
    idColumn(t);
    t.enu('status', ['queued', 'running', 'done', 'failed', 'cancelled', 'expired']).notNullable().defaultTo('queued');
    t.enu('level', ['system', 'patient', 'group']).notNullable();
    t.string('group_id', 64).nullable();
    t.string('user_id', 36).nullable();
    t.string('client_id', 64).nullable();
    t.text('scope').nullable();
    t.text('request_url').notNullable();
    t.json('params').notNullable();
    t.string('output_format', 64).notNullable();
    timestampColumn(t, 'transaction_time').notNullable();
    t.string('progress', 255).nullable();
    t.json('output').nullable();
    t.json('errors').nullable();
    t.text('failure').nullable();
    timestampColumn(t, 'created_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'finished_at').nullable();
    timestampColumn(t, 'expires_at').nullable();
    // the expiry sweep: finished exports by expiry
    t.index(['status', 'expires_at'], indexName(knex, TABLE, 'idx_status_expires'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists(TABLE);
}
