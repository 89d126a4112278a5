import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';

/**
 * Extension: the observations projection (0108) follows its source rows' patient and visit. The
 * write path changes both together; a change made to vitals or lab_results directly (a worker, an
 * operator's fix) would otherwise leave the projection naming the old patient, and access is
 * narrowed on the projection's patient_id. These triggers copy the two columns over in the same
 * statement's transaction.
 */
const SOURCES = [['vitals', 'vitals'], ['lab_results', 'lab']] as const;

function createSql(d: 'mysql' | 'sqlite', table: string, source: string): string {
  const update = `UPDATE observations SET patient_id = NEW.patient_id, visit_id = NEW.visit_id WHERE source = '${source}' AND source_id = NEW.id`;
  if (d === 'mysql') {
    return `CREATE TRIGGER obs_${table}_au AFTER UPDATE ON ${table} FOR EACH ROW BEGIN ` +
      `IF NOT (NEW.patient_id <=> OLD.patient_id) OR NOT (NEW.visit_id <=> OLD.visit_id) THEN ${update}; END IF; END`;
  }
  return `CREATE TRIGGER obs_${table}_au AFTER UPDATE OF patient_id, visit_id ON ${table} FOR EACH ROW ` +
    `WHEN NEW.patient_id IS NOT OLD.patient_id OR NEW.visit_id IS NOT OLD.visit_id BEGIN ${update}; END`;
}

export async function up(knex: Knex): Promise<void> {
  const d = dialectOf(knex);
  for (const [table, source] of SOURCES) {
    await knex.raw(`DROP TRIGGER IF EXISTS obs_${table}_au`);
    await knex.raw(createSql(d, table, source));
  }
  // rows that drifted before the triggers existed
  for (const [table, source] of SOURCES) {
    await knex.raw(`UPDATE observations SET patient_id = (SELECT s.patient_id FROM ${table} s WHERE s.id = observations.source_id), ` +
      `visit_id = (SELECT s.visit_id FROM ${table} s WHERE s.id = observations.source_id) ` +
      `WHERE source = '${source}' AND EXISTS (SELECT 1 FROM ${table} s WHERE s.id = observations.source_id AND (s.patient_id <> observations.patient_id OR ` +
      `${d === 'mysql' ? 'NOT (s.visit_id <=> observations.visit_id)' : 's.visit_id IS NOT observations.visit_id'}))`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [table] of SOURCES) await knex.raw(`DROP TRIGGER IF EXISTS obs_${table}_au`);
}
