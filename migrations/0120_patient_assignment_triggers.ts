import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';

/**
 * Extension: the triggers that keep patient_assignments (0119) in step with the tables it is
 * derived from, inside the transaction of each change (API writes, `hms seed`, SQL by hand), then
 * the rows of what is stored already. Creating triggers on MySQL with binary logging on needs the
 * SUPER privilege or log_bin_trust_function_creators=1 (docs/operations.md).
 *
 * Note: InnoDB does not fire triggers for rows removed by ON DELETE CASCADE; the foreign keys of
 * patient_assignments cascade themselves, and a removed care team is handled by its own trigger.
 */
type Dialect = 'mysql' | 'sqlite';

interface Trigger { name: string; table: string; event: 'INSERT' | 'UPDATE' | 'DELETE'; when?: string; statements: string[] }

const COLUMNS = '(user_id, patient_id, source, source_id, position, starts, ends)';

/** The later of two nullable datetimes (an open bound yields to the other). */
const later = (a: string, b: string): string => `CASE WHEN ${a} IS NULL THEN ${b} WHEN ${b} IS NULL THEN ${a} WHEN ${a} > ${b} THEN ${a} ELSE ${b} END`;
const earlier = (a: string, b: string): string => `CASE WHEN ${a} IS NULL THEN ${b} WHEN ${b} IS NULL THEN ${a} WHEN ${a} < ${b} THEN ${a} ELSE ${b} END`;

function triggers(d: Dialect): Trigger[] {
  const insert = d === 'mysql' ? 'INSERT IGNORE INTO patient_assignments' : 'INSERT OR IGNORE INTO patient_assignments';
  const noTable = d === 'mysql' ? ' FROM DUAL' : '';
  const changed = (col: string): string => (d === 'mysql' ? `NOT (NEW.${col} <=> OLD.${col})` : `NEW.${col} IS NOT OLD.${col}`);
  const out: Trigger[] = [];

  // a patient's primary doctor
  const primary = `${insert} ${COLUMNS} SELECT NEW.primary_doctor_id, NEW.id, 'primary', NEW.id, 0, NULL, NULL${noTable} WHERE NEW.primary_doctor_id IS NOT NULL`;
  const dropPrimary = "DELETE FROM patient_assignments WHERE source = 'primary' AND source_id = OLD.id";
  out.push({ name: 'pa_patients_ai', table: 'patients', event: 'INSERT', statements: [primary] });
  out.push({ name: 'pa_patients_au', table: 'patients', event: 'UPDATE', when: `${changed('primary_doctor_id')} OR ${changed('id')}`, statements: [dropPrimary, primary] });
  out.push({ name: 'pa_patients_ad', table: 'patients', event: 'DELETE', statements: [dropPrimary] });

  // the practitioner of an appointment or a visit that is not cancelled
  for (const [table, source] of [['appointments', 'appointment'], ['visits', 'visit']] as const) {
    const add = `${insert} ${COLUMNS} SELECT NEW.doctor_id, NEW.patient_id, '${source}', NEW.id, 0, NULL, NULL${noTable} WHERE COALESCE(NEW.status, '') <> 'cancelled'`;
    const drop = `DELETE FROM patient_assignments WHERE source = '${source}' AND source_id = OLD.id`;
    out.push({ name: `pa_${table}_ai`, table, event: 'INSERT', statements: [add] });
    out.push({ name: `pa_${table}_au`, table, event: 'UPDATE', when: ['doctor_id', 'patient_id', 'status', 'id'].map(changed).join(' OR '), statements: [drop, add] });
    out.push({ name: `pa_${table}_ad`, table, event: 'DELETE', statements: [drop] });
  }

  // a member of an active care team, for the period both the team and the membership cover
  const member = (m: 'NEW' | 'm', team: 'NEW' | 't') =>
    `${m}.user_id, ${team}.patient_id, 'care-team', ${team}.id, ${m}.position, ${later(`${team}.period_start`, `${m}.period_start`)}, ${earlier(`${team}.period_end`, `${m}.period_end`)}`;
  const addMember = `${insert} ${COLUMNS} SELECT ${member('NEW', 't')} FROM care_teams t WHERE t.id = NEW.care_team_id AND t.status = 'active'`;
  const dropMember = "DELETE FROM patient_assignments WHERE source = 'care-team' AND source_id = OLD.care_team_id AND position = OLD.position";
  out.push({ name: 'pa_care_team_members_ai', table: 'care_team_members', event: 'INSERT', statements: [addMember] });
  out.push({ name: 'pa_care_team_members_au', table: 'care_team_members', event: 'UPDATE', statements: [dropMember, addMember] });
  out.push({ name: 'pa_care_team_members_ad', table: 'care_team_members', event: 'DELETE', statements: [dropMember] });
  const dropTeam = "DELETE FROM patient_assignments WHERE source = 'care-team' AND source_id = OLD.id";
  const addTeam = `${insert} ${COLUMNS} SELECT ${member('m', 'NEW')} FROM care_team_members m WHERE m.care_team_id = NEW.id AND NEW.status = 'active'`;
  out.push({
    name: 'pa_care_teams_au', table: 'care_teams', event: 'UPDATE',
    when: ['status', 'patient_id', 'period_start', 'period_end', 'id'].map(changed).join(' OR '), statements: [dropTeam, addTeam],
  });
  out.push({ name: 'pa_care_teams_ad', table: 'care_teams', event: 'DELETE', statements: [dropTeam] });
  return out;
}

function createSql(d: Dialect, t: Trigger): string {
  const body = t.statements.map((s) => `${s};`).join(' ');
  if (d === 'mysql') {
    return `CREATE TRIGGER ${t.name} AFTER ${t.event} ON ${t.table} FOR EACH ROW BEGIN ${t.when ? `IF ${t.when} THEN ${body} END IF;` : body} END`;
  }
  return `CREATE TRIGGER ${t.name} AFTER ${t.event} ON ${t.table} FOR EACH ROW ${t.when ? `WHEN ${t.when} ` : ''}BEGIN ${body} END`;
}

/** What is stored already, as the triggers would have written it. */
function backfill(d: Dialect): string[] {
  const insert = d === 'mysql' ? 'INSERT IGNORE INTO patient_assignments' : 'INSERT OR IGNORE INTO patient_assignments';
  return [
    `${insert} ${COLUMNS} SELECT primary_doctor_id, id, 'primary', id, 0, NULL, NULL FROM patients WHERE primary_doctor_id IS NOT NULL`,
    `${insert} ${COLUMNS} SELECT doctor_id, patient_id, 'appointment', id, 0, NULL, NULL FROM appointments WHERE COALESCE(status, '') <> 'cancelled'`,
    `${insert} ${COLUMNS} SELECT doctor_id, patient_id, 'visit', id, 0, NULL, NULL FROM visits WHERE COALESCE(status, '') <> 'cancelled'`,
    `${insert} ${COLUMNS} SELECT m.user_id, t.patient_id, 'care-team', t.id, m.position, ${later('t.period_start', 'm.period_start')}, ${earlier('t.period_end', 'm.period_end')} ` +
      "FROM care_team_members m JOIN care_teams t ON t.id = m.care_team_id WHERE t.status = 'active'",
  ];
}

export async function up(knex: Knex): Promise<void> {
  const d = dialectOf(knex);
  // triggers first, so that nothing written while the rows are copied is missed (INSERT IGNORE dedups)
  for (const t of triggers(d)) {
    await knex.raw(`DROP TRIGGER IF EXISTS ${t.name}`);
    await knex.raw(createSql(d, t));
  }
  for (const sql of backfill(d)) await knex.raw(sql);
}

export async function down(knex: Knex): Promise<void> {
  for (const t of triggers(dialectOf(knex))) await knex.raw(`DROP TRIGGER IF EXISTS ${t.name}`);
  await knex('patient_assignments').delete();
}
