import type { Knex } from 'knex';
import { createSeedTable, idColumn, indexName, timestampColumn } from './helpers.js';

const MANIFEST = 'audit_archives';
const LOCK = 'audit_archive_lock';

/**
 * Extension: the manifest of the security log's archive files (docs/audit-log.md, "Archiving").
 *
 * audit_archives: one row per archive file, written in the same transaction that removes the
 * file's rows from security_logs. It names the file and what the file must hold: the seq range
 * (first_seq..last_seq, row_count rows, no gap), the chain's hashes at both ends (first_prev_hash:
 * the prev_hash of its first row, i.e. the hash of the row before it; last_hash: the hash of its
 * last row), the SHA-256 and size of the file's bytes, and the earliest and latest timestamps of
 * its rows (NULL when none of them has one), which is what finds the archives of a time range
 * (`hms audit export`). The ranges of the manifests follow each other without gap or overlap
 * (unique first_seq and last_seq), and the first row left in security_logs follows the last one.
 *
 * audit_archive_lock: one row (id 1) that an archive run locks while it writes a file and moves
 * its rows, so two runs (two workers) never archive the same rows. locked_at / locked_by name the
 * last run that took it (for operators).
 */
export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable(MANIFEST))) {
    await createSeedTable(knex, MANIFEST, (t) => {
      idColumn(t);
      t.string('file_name', 255).notNullable();
      t.bigInteger('first_seq').notNullable();
      t.bigInteger('last_seq').notNullable();
      t.bigInteger('row_count').notNullable();
      timestampColumn(t, 'min_timestamp').nullable();
      timestampColumn(t, 'max_timestamp').nullable();
      t.specificType('first_prev_hash', 'CHAR(64)').notNullable();
      t.specificType('last_hash', 'CHAR(64)').notNullable();
      t.specificType('sha256', 'CHAR(64)').notNullable();
      t.bigInteger('bytes').notNullable();
      timestampColumn(t, 'created_at').notNullable().defaultTo(knex.fn.now());
      t.string('created_by', 200).nullable();
      t.unique(['file_name'], { indexName: indexName(knex, MANIFEST, 'unique_file_name') });
      t.unique(['first_seq'], { indexName: indexName(knex, MANIFEST, 'unique_first_seq') });
      t.unique(['last_seq'], { indexName: indexName(knex, MANIFEST, 'unique_last_seq') });
      // the archives of a time range: max_timestamp >= from AND min_timestamp <= to
      t.index(['max_timestamp', 'min_timestamp'], indexName(knex, MANIFEST, 'idx_time_range'));
    });
  }
  if (!(await knex.schema.hasTable(LOCK))) {
    await createSeedTable(knex, LOCK, (t) => {
      t.integer('id').notNullable().primary();
      timestampColumn(t, 'locked_at').nullable();
      t.string('locked_by', 200).nullable();
    });
  }
  if (!(await knex(LOCK).where({ id: 1 }).first())) await knex(LOCK).insert({ id: 1, locked_at: null, locked_by: null });
}

export async function down(knex: Knex): Promise<void> {
  // the archive files stay where they are; without the manifest they no longer verify as part of the chain
  await knex.schema.dropTableIfExists(LOCK);
  await knex.schema.dropTableIfExists(MANIFEST);
}
