/**
 * Thin Objection models of the 12 seed tables. They stay behind the repositories in src/db, so
 * the rest of the code never depends on Objection directly. Always bind a knex/trx per call
 * (Model.query(trx)); there is no global connection.
 */
import objection from 'objection';

const { Model } = objection;

/** Base of the seed-table models: rows are plain column maps (the mappers give them meaning). */
export class SeedModel extends Model {
  id!: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [column: string]: any;
  static override get idColumn(): string {
    return 'id';
  }
}

export class UserModel extends SeedModel { static override tableName = 'users'; }
export class PatientModel extends SeedModel {
  static override tableName = 'patients';
  static override get relationMappings() {
    return {
      primaryDoctor: { relation: Model.BelongsToOneRelation, modelClass: UserModel, join: { from: 'patients.primary_doctor_id', to: 'users.id' } },
      user: { relation: Model.BelongsToOneRelation, modelClass: UserModel, join: { from: 'patients.user_id', to: 'users.id' } },
    };
  }
}
export class AppointmentModel extends SeedModel { static override tableName = 'appointments'; }
export class VisitModel extends SeedModel { static override tableName = 'visits'; }
export class MedicalConditionModel extends SeedModel { static override tableName = 'medical_conditions'; }
export class PrescriptionModel extends SeedModel { static override tableName = 'prescriptions'; }
export class VitalModel extends SeedModel { static override tableName = 'vitals'; }
export class LabResultModel extends SeedModel { static override tableName = 'lab_results'; }
export class BillingModel extends SeedModel { static override tableName = 'billing'; }
export class InsuranceModel extends SeedModel { static override tableName = 'insurance'; }
export class SecurityLogModel extends SeedModel { static override tableName = 'security_logs'; }
export class UserSessionModel extends SeedModel { static override tableName = 'user_sessions'; }

/** The model of each seed table, by table name. */
export const modelsByTable: Record<string, typeof SeedModel> = Object.fromEntries(
  [UserModel, PatientModel, AppointmentModel, VisitModel, MedicalConditionModel, PrescriptionModel, VitalModel,
    LabResultModel, BillingModel, InsuranceModel, SecurityLogModel, UserSessionModel].map((m) => [m.tableName, m]),
);
