import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: the job outbox and the last run of each queue (docs/jobs.md).
 *
 * job_outbox holds work that must happen, recorded in the same transaction as what caused it (a
 * lab message accepted): the database is the source of truth and Redis only the transport. Its id
 * is the BullMQ job id, so enqueueing it twice makes one job. The sweeper enqueues again what is
 * queued or running with no live job (Redis flushed, a worker killed) once it is older than
 * HMS_OUTBOX_STALE_SECONDS. payload holds ids only: no patient data.
 *
 * job_last_runs keeps, per queue, the last run's times, status and result (counts) for
 * `hms jobs status`.
 */
export async function up(knex: Knex): Promise<void> {
  await createSeedTable(knex, 'job_outbox', (t) => {
    idColumn(t);
    t.string('queue', 64).notNullable();
    t.json('payload').notNullable();
    t.enu('status', ['queued', 'active', 'done', 'failed']).notNullable().defaultTo('queued');
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('enqueued').notNullable().defaultTo(0);
    t.text('last_error').nullable();
    timestampColumn(t, 'created_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'updated_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'finished_at').nullable();
    // the sweeper's query: unfinished work by age
    t.index(['status', 'updated_at'], indexName(knex, 'job_outbox', 'idx_status_updated'));
    t.index(['queue', 'status'], indexName(knex, 'job_outbox', 'idx_queue_status'));
  });
  await createSeedTable(knex, 'job_last_runs', (t) => {
    t.string('queue', 64).notNullable().primary();
    t.string('job_id', 191).notNullable();
    t.enu('status', ['running', 'completed', 'failed']).notNullable();
    timestampColumn(t, 'started_at').notNullable();
    timestampColumn(t, 'finished_at').nullable();
    t.integer('duration_ms').nullable();
    t.json('result').nullable();
    t.text('error').nullable();
    t.bigInteger('runs').notNullable().defaultTo(0);
    t.bigInteger('failures').notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('job_last_runs');
  await knex.schema.dropTableIfExists('job_outbox');
}
