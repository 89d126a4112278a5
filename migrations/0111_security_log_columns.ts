import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { indexName } from './helpers.js';

const TABLE = 'security_logs';

/**
 * Extension: what an audit row records beyond the seed (docs/audit-log.md) and its place in the
 * tamper-evident chain. client_id: the acting system (no foreign key: a row outlives its client);
 * role: the role acted in; patient_id: whose data it was (no foreign key: a row must outlive a
 * hard-deleted patient; with timestamp, the accounting of disclosures); request_id; break_glass;
 * seq / prev_hash / hash: the chain (filled by 0112 for rows that already exist).
 *
 * One schema change per step (on MySQL each commits on its own) and every step skips what is
 * already there, so a migration that failed half-way can simply be run again.
 */
const COLUMNS: [string, (t: Knex.AlterTableBuilder) => void][] = [
  ['client_id', (t) => t.string('client_id', 36).nullable()],
  ['role', (t) => t.string('role', 20).nullable()],
  ['patient_id', (t) => t.string('patient_id', 36).nullable()],
  ['request_id', (t) => t.string('request_id', 36).nullable()],
  ['break_glass', (t) => t.boolean('break_glass').notNullable().defaultTo(false)],
  ['seq', (t) => t.bigInteger('seq').nullable()],
  ['prev_hash', (t) => t.specificType('prev_hash', 'CHAR(64)').nullable()],
  ['hash', (t) => t.specificType('hash', 'CHAR(64)').nullable()],
];

/** Whether an index of that (dialect-qualified) name exists on the table. */
async function hasIndex(knex: Knex, table: string, name: string): Promise<boolean> {
  if (dialectOf(knex) === 'mysql') {
    const [rows] = (await knex.raw(
      'SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ? LIMIT 1', [table, name],
    )) as [unknown[]];
    return rows.length > 0;
  }
  const rows = (await knex.raw("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [name])) as unknown[];
  return rows.length > 0;
}

export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  const missing: typeof COLUMNS = [];
  for (const c of COLUMNS) if (!(await knex.schema.hasColumn(TABLE, c[0]))) missing.push(c);
  // MySQL: one ALTER TABLE adding every column (instant on MariaDB 10.3+ and MySQL 8)
  if (missing.length) await knex.schema.alterTable(TABLE, (t) => { for (const [, add] of missing) add(t); });
  if (!(await hasIndex(knex, TABLE, ix('idx_patient_time')))) {
    await knex.schema.alterTable(TABLE, (t) => { t.index(['patient_id', 'timestamp'], ix('idx_patient_time')); });
  }
  if (!(await hasIndex(knex, TABLE, ix('unique_seq')))) {
    await knex.schema.alterTable(TABLE, (t) => { t.unique(['seq'], { indexName: ix('unique_seq') }); });
  }
}

export async function down(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, TABLE, name);
  if (await hasIndex(knex, TABLE, ix('unique_seq'))) await knex.schema.alterTable(TABLE, (t) => { t.dropUnique(['seq'], ix('unique_seq')); });
  if (await hasIndex(knex, TABLE, ix('idx_patient_time'))) await knex.schema.alterTable(TABLE, (t) => { t.dropIndex(['patient_id', 'timestamp'], ix('idx_patient_time')); });
  for (const [name] of [...COLUMNS].reverse()) {
    if (await knex.schema.hasColumn(TABLE, name)) await knex.schema.alterTable(TABLE, (t) => { t.dropColumn(name); });
  }
}
