/**
 * Which patients a clinician is assigned to, and which clinicians a patient's record names, as
 * SQL conditions evaluated at request time (a change in the data takes effect on the next
 * statement). docs/security.md describes the rules:
 * a doctor or nurse is assigned to a patient when they are its primary doctor
 * (patients.primary_doctor_id), an active member of one of its active care teams whose periods
 * cover now, or the practitioner (doctor_id) of one of its appointments or visits that is not
 * cancelled; a break-glass grant in force adds the patient too.
 */
import type { Knex } from 'knex';

type QB = Knex.QueryBuilder;

/** The values a condition binds; placeholders may stand in for them when a statement is prepared once. */
export interface AssignmentValues {
  userId: unknown;
  /** Now, as SQL 'YYYY-MM-DD HH:MM:SS' UTC. */
  now: unknown;
  /** Patients held under break-glass grants in force. */
  grantPatients: unknown[];
}

/**
 * Keeps the rows whose patient (the SQL column `patientColumn`, e.g. `t.patient_id`) is assigned
 * to the clinician now: a semi-join on patient_assignment_windows (one row per clinician, patient
 * and time window, kept by triggers from patient_assignments, itself kept from the primary
 * doctors, appointments, visits and care teams: migrations 0119-0122), so a read by id costs one
 * index probe and a search may be driven from the clinician's patients; or held under a
 * break-glass grant in force.
 */
export function whereAssigned(db: Knex, q: QB, patientColumn: string, v: AssignmentValues): void {
  const col = db.raw('??', [patientColumn]);
  const assigned = db('patient_assignment_windows as az').select(db.raw('1')).where('az.user_id', v.userId as Knex.Value).andWhere('az.patient_id', col)
    .andWhere('az.starts', '<=', v.now as Knex.Value).andWhere('az.ends', '>', v.now as Knex.Value);
  if (v.grantPatients.length === 0) { q.whereExists(assigned); return; }
  q.where((any) => { any.whereExists(assigned).orWhereIn(patientColumn, v.grantPatients as Knex.Value[]); });
}

/**
 * The users columns through which a patient's record names a clinician: the relations of
 * assignment, read from the patient's side, plus who diagnosed, prescribed, recorded and ordered.
 */
const CLINICIAN_COLUMNS: { table: string; patient: string; user: string }[] = [
  { table: 'patients', patient: 'id', user: 'primary_doctor_id' },
  { table: 'appointments', patient: 'patient_id', user: 'doctor_id' },
  { table: 'visits', patient: 'patient_id', user: 'doctor_id' },
  { table: 'medical_conditions', patient: 'patient_id', user: 'diagnosed_by' },
  { table: 'prescriptions', patient: 'patient_id', user: 'doctor_id' },
  { table: 'vitals', patient: 'patient_id', user: 'recorded_by' },
  { table: 'lab_results', patient: 'patient_id', user: 'ordered_by' },
];

/** Keeps the users rows (column `userColumn`, e.g. `t.id`) that the patient's record names. */
export function whereClinicianOf(db: Knex, q: QB, userColumn: string, patientId: unknown): void {
  const col = db.raw('??', [userColumn]);
  q.where((any) => {
    for (const c of CLINICIAN_COLUMNS) {
      any.orWhereExists(db(`${c.table} as az_c`).select(db.raw('1')).where(`az_c.${c.patient}`, patientId as Knex.Value).andWhere(`az_c.${c.user}`, col));
    }
    any.orWhereExists(db('care_teams as az_t').join('care_team_members as az_m', 'az_m.care_team_id', 'az_t.id').select(db.raw('1'))
      .where('az_t.patient_id', patientId as Knex.Value).andWhere('az_m.user_id', col));
  });
}
