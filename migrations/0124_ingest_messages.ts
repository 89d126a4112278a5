import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

/**
 * Extension: lab messages as received (HL7 v2 ORU^R01 or a FHIR Bundle / Observation), stored
 * before HMS answers (202, or an MLLP ACK) so that nothing accepted is ever lost (docs/lab-ingestion.md).
 *
 * `source` names who sent it (a client id, or user:<id> for an admin) and `control_id` the
 * message (MSH-10; for FHIR the Bundle's identifier, else a SHA-256 of the body): the pair is
 * unique, so the same message sent twice is stored, and processed, once. `result` lists the ids
 * of everything the message wrote; `outcome` is the OperationOutcome of a failure. `body` is the
 * raw message (patient data: it never leaves the database; the job carries this row's id only).
 */
export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'ingest_messages', name);
  await createSeedTable(knex, 'ingest_messages', (t) => {
    idColumn(t);
    t.string('source', 64).notNullable();
    t.string('control_id', 191).notNullable();
    t.string('client_id', 36).nullable();
    t.string('user_id', 36).nullable();
    // the scopes of the token the message came with: the worker writes with exactly these
    t.text('scope').nullable();
    t.enu('format', ['hl7v2', 'fhir']).notNullable();
    t.string('content_type', 100).notNullable();
    t.string('sending_application', 227).nullable();
    t.string('sending_facility', 227).nullable();
    t.string('channel', 10).notNullable().defaultTo('http');
    t.enu('status', ['queued', 'processing', 'done', 'failed']).notNullable().defaultTo('queued');
    t.integer('attempts').notNullable().defaultTo(0);
    t.specificType('body', dialectOf(knex) === 'mysql' ? 'MEDIUMTEXT' : 'TEXT').notNullable();
    t.integer('body_bytes').notNullable();
    t.json('result').nullable();
    t.json('outcome').nullable();
    timestampColumn(t, 'received_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'updated_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'finished_at').nullable();
    t.unique(['source', 'control_id'], { indexName: ix('uq_source_control') });
    t.index(['status', 'updated_at'], ix('idx_status_updated'));
    t.index(['client_id', 'received_at'], ix('idx_client'));
    t.foreign('client_id').references('id').inTable('api_clients').onDelete('SET NULL');
    t.foreign('user_id').references('id').inTable('users').onDelete('SET NULL');
  });
  // critical results (HH, LL, AA ...) found by ingestion, for the clinicians to act on
  await createSeedTable(knex, 'lab_alerts', (t) => {
    idColumn(t);
    t.string('patient_id', 36).notNullable();
    t.string('observation_id', 36).notNullable();
    t.string('message_id', 36).nullable();
    t.string('code', 100).nullable();
    t.string('flag', 20).notNullable();
    timestampColumn(t, 'created_at').notNullable().defaultTo(knex.fn.now());
    timestampColumn(t, 'acknowledged_at').nullable();
    t.string('acknowledged_by', 36).nullable();
    t.index(['patient_id', 'created_at'], indexName(knex, 'lab_alerts', 'idx_patient'));
    t.index(['acknowledged_at', 'created_at'], indexName(knex, 'lab_alerts', 'idx_open'));
    t.unique(['observation_id', 'message_id'], { indexName: indexName(knex, 'lab_alerts', 'uq_observation_message') });
    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
    t.foreign('message_id').references('id').inTable('ingest_messages').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('lab_alerts');
  await knex.schema.dropTableIfExists('ingest_messages');
}
