import type { Knex } from 'knex';
import * as m0001 from './0001_users.js';
import * as m0002 from './0002_patients.js';
import * as m0003 from './0003_appointments.js';
import * as m0004 from './0004_visits.js';
import * as m0005 from './0005_medical_conditions.js';
import * as m0006 from './0006_prescriptions.js';
import * as m0007 from './0007_vitals.js';
import * as m0008 from './0008_lab_results.js';
import * as m0009 from './0009_billing.js';
import * as m0010 from './0010_insurance.js';
import * as m0011 from './0011_security_logs.js';
import * as m0012 from './0012_user_sessions.js';
import * as m0100 from './0100_users_versioning.js';
import * as m0101 from './0101_patients_versioning.js';
import * as m0102 from './0102_resource_history.js';
import * as m0103 from './0103_search_string.js';
import * as m0104 from './0104_search_token.js';
import * as m0105 from './0105_conditional_locks.js';
import * as m0106 from './0106_login_attempts.js';
import * as m0107 from './0107_resource_versioning.js';
import * as m0108 from './0108_observations.js';
import * as m0110 from './0110_condition_recorded_date.js';
import * as m0111 from './0111_security_log_columns.js';
import * as m0112 from './0112_audit_chain.js';
import * as m0113 from './0113_care_teams.js';
import * as m0114 from './0114_care_team_members.js';
import * as m0115 from './0115_break_glass_grants.js';
import * as m0116 from './0116_api_clients.js';
import * as m0117 from './0117_client_assertions.js';
import * as m0118 from './0118_client_tokens.js';
import * as m0119 from './0119_patient_assignments.js';
import * as m0120 from './0120_patient_assignment_triggers.js';
import * as m0121 from './0121_observation_source_triggers.js';
import * as m0122 from './0122_patient_assignment_windows.js';
import * as m0123 from './0123_job_outbox.js';
import * as m0124 from './0124_ingest_messages.js';
import * as m0125 from './0125_audit_archives.js';
import * as m0126 from './0126_billing_overdue_index.js';
import * as m0127 from './0127_generic_resources.js';
import * as m0128 from './0128_bulk_exports.js';
import * as m0129 from './0129_history_recorded_index.js';

/** Every migration, in the order it runs. Append only. */
export const migrations: Record<string, Knex.Migration> = {
  '0001_users': m0001,
  '0002_patients': m0002,
  '0003_appointments': m0003,
  '0004_visits': m0004,
  '0005_medical_conditions': m0005,
  '0006_prescriptions': m0006,
  '0007_vitals': m0007,
  '0008_lab_results': m0008,
  '0009_billing': m0009,
  '0010_insurance': m0010,
  '0011_security_logs': m0011,
  '0012_user_sessions': m0012,
  // extensions (additive) start at 0100
  '0100_users_versioning': m0100,
  '0101_patients_versioning': m0101,
  '0102_resource_history': m0102,
  '0103_search_string': m0103,
  '0104_search_token': m0104,
  '0105_conditional_locks': m0105,
  '0106_login_attempts': m0106,
  '0107_resource_versioning': m0107,
  '0108_observations': m0108,
  '0110_condition_recorded_date': m0110,
  '0111_security_log_columns': m0111,
  '0112_audit_chain': m0112,
  '0113_care_teams': m0113,
  '0114_care_team_members': m0114,
  '0115_break_glass_grants': m0115,
  '0116_api_clients': m0116,
  '0117_client_assertions': m0117,
  '0118_client_tokens': m0118,
  '0119_patient_assignments': m0119,
  '0120_patient_assignment_triggers': m0120,
  '0121_observation_source_triggers': m0121,
  '0122_patient_assignment_windows': m0122,
  '0123_job_outbox': m0123,
  '0124_ingest_messages': m0124,
  '0125_audit_archives': m0125,
  '0126_billing_overdue_index': m0126,
  '0127_generic_resources': m0127,
  '0128_bulk_exports': m0128,
  '0129_history_recorded_index': m0129,
};
