import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { createSeedTable, indexName } from './helpers.js';

/**
 * Extension: patient_assignments (0119) counted down to one row per clinician, patient and time
 * window, with the number of sources behind it: a doctor with a thousand visits of three hundred
 * patients has three hundred rows here. The access check reads this table (docs/architecture.md):
 * a search narrowed to a clinician's patients then costs what the admin's costs, within a few
 * tens of percent. Triggers on patient_assignments keep it in step; an open bound is stored as a
 * far date so the window can be part of the key.
 */
export const OPEN_START = '1000-01-01 00:00:00';
export const OPEN_END = '9999-12-31 23:59:59';

const KEY = 'user_id, patient_id, starts, ends';

function triggers(d: 'mysql' | 'sqlite'): { name: string; sql: string }[] {
  const row = (r: 'NEW' | 'OLD') => `${r}.user_id, ${r}.patient_id, COALESCE(${r}.starts, '${OPEN_START}'), COALESCE(${r}.ends, '${OPEN_END}')`;
  const where = (r: 'NEW' | 'OLD') => `user_id = ${r}.user_id AND patient_id = ${r}.patient_id AND starts = COALESCE(${r}.starts, '${OPEN_START}') AND ends = COALESCE(${r}.ends, '${OPEN_END}')`;
  const add = d === 'mysql'
    ? `INSERT INTO patient_assignment_windows (${KEY}, sources) VALUES (${row('NEW')}, 1) ON DUPLICATE KEY UPDATE sources = sources + 1`
    : `INSERT INTO patient_assignment_windows (${KEY}, sources) VALUES (${row('NEW')}, 1) ON CONFLICT (${KEY}) DO UPDATE SET sources = sources + 1`;
  const drop = [`UPDATE patient_assignment_windows SET sources = sources - 1 WHERE ${where('OLD')}`, `DELETE FROM patient_assignment_windows WHERE ${where('OLD')} AND sources <= 0`];
  const body = (stmts: string[]) => (d === 'mysql' ? `BEGIN ${stmts.map((s) => `${s};`).join(' ')} END` : `BEGIN ${stmts.map((s) => `${s};`).join(' ')} END`);
  return [
    { name: 'paw_ai', sql: `CREATE TRIGGER paw_ai AFTER INSERT ON patient_assignments FOR EACH ROW ${body([add])}` },
    { name: 'paw_ad', sql: `CREATE TRIGGER paw_ad AFTER DELETE ON patient_assignments FOR EACH ROW ${body(drop)}` },
    { name: 'paw_au', sql: `CREATE TRIGGER paw_au AFTER UPDATE ON patient_assignments FOR EACH ROW ${body([...drop, add])}` },
  ];
}

export async function up(knex: Knex): Promise<void> {
  const ix = (name: string) => indexName(knex, 'patient_assignment_windows', name);
  await createSeedTable(knex, 'patient_assignment_windows', (t) => {
    t.string('user_id', 36).notNullable();
    t.string('patient_id', 36).notNullable();
    t.datetime('starts', { useTz: false }).notNullable();
    t.datetime('ends', { useTz: false }).notNullable();
    t.integer('sources').notNullable();
    t.primary(['user_id', 'patient_id', 'starts', 'ends']);
    t.index(['patient_id'], ix('idx_patient'));
    t.foreign('user_id').references('id').inTable('users').onDelete('CASCADE');
    t.foreign('patient_id').references('id').inTable('patients').onDelete('CASCADE');
  });
  const d = dialectOf(knex);
  for (const t of triggers(d)) {
    await knex.raw(`DROP TRIGGER IF EXISTS ${t.name}`);
    await knex.raw(t.sql);
  }
  // what patient_assignments holds already (triggers first: rows added meanwhile are counted by them;
  // a migration runs with the API stopped, so the two do not meet)
  await knex.raw(`INSERT INTO patient_assignment_windows (${KEY}, sources) ` +
    `SELECT user_id, patient_id, COALESCE(starts, '${OPEN_START}'), COALESCE(ends, '${OPEN_END}'), COUNT(*) FROM patient_assignments ` +
    `GROUP BY user_id, patient_id, COALESCE(starts, '${OPEN_START}'), COALESCE(ends, '${OPEN_END}')`);
}

export async function down(knex: Knex): Promise<void> {
  for (const t of triggers(dialectOf(knex))) await knex.raw(`DROP TRIGGER IF EXISTS ${t.name}`);
  await knex.schema.dropTable('patient_assignment_windows');
}
