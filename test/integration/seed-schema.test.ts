/**
 * The live schema against the seed (the HMS seed schema, migrations 0001-0012), column by
 * column. On MySQL/MariaDB (DATABASE_URL set) it reads information_schema of the current database;
 * on SQLite it reads the table pragmas. Columns and indexes that later (additive) migrations add
 * are ignored. Reads only, apart from rows written inside a transaction that is rolled back.
 */
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createDb, dialectOf, migrateLatest } from '../../src/db/knex.js';

/**
 * [COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA] in a canonical form of
 * what information_schema.COLUMNS reports for the seed: integer display widths dropped (`int`, but
 * `tinyint(1)` for BOOLEAN), JSON as `json` (MariaDB stores it as LONGTEXT + CHECK json_valid),
 * defaults unquoted with `CURRENT_TIMESTAMP` for the function and null for none/NULL, EXTRA as
 * MySQL 8 spells it without DEFAULT_GENERATED.
 */
type ColumnSpec = [
  name: string,
  dataType: string,
  columnType: string,
  isNullable: 'YES' | 'NO',
  columnDefault: string | null,
  extra?: 'on update CURRENT_TIMESTAMP' | 'STORED GENERATED',
];
/** [INDEX_NAME (MySQL), columns in order, unique]. */
type IndexSpec = [name: string, columns: string[], unique: boolean];
/** [column, referenced table, referenced column, ON DELETE rule]; ON UPDATE is unspecified. */
type ForeignKeySpec = [column: string, refTable: string, refColumn: string, onDelete: 'CASCADE' | 'SET NULL'];

interface TableSpec {
  columns: ColumnSpec[];
  indexes: IndexSpec[];
  foreignKeys: ForeignKeySpec[];
}

/** The seed's 12 tables, in the seed's order. */
const SEED: Record<string, TableSpec> = {
  users: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['email', 'varchar', 'varchar(255)', 'NO', null],
      ['password_hash', 'varchar', 'varchar(255)', 'NO', null],
      ['name', 'varchar', 'varchar(255)', 'NO', null],
      ['role', 'enum', "enum('admin','doctor','nurse','patient','finance')", 'NO', null],
      ['avatar', 'varchar', 'varchar(500)', 'YES', null],
      ['department', 'varchar', 'varchar(100)', 'YES', null],
      ['specialization', 'varchar', 'varchar(100)', 'YES', null],
      ['phone', 'varchar', 'varchar(20)', 'YES', null],
      ['status', 'enum', "enum('active','inactive','suspended')", 'YES', 'active'],
      ['last_login', 'timestamp', 'timestamp', 'YES', null],
      ['created_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['updated_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP', 'on update CURRENT_TIMESTAMP'],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['email', ['email'], true],
      ['idx_email', ['email'], false],
      ['idx_role', ['role'], false],
      ['idx_status', ['status'], false],
    ],
    foreignKeys: [],
  },
  patients: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['user_id', 'varchar', 'varchar(36)', 'YES', null],
      ['first_name', 'varchar', 'varchar(100)', 'NO', null],
      ['last_name', 'varchar', 'varchar(100)', 'NO', null],
      ['date_of_birth', 'date', 'date', 'NO', null],
      ['gender', 'enum', "enum('male','female','other','prefer_not_to_say')", 'NO', null],
      ['phone', 'varchar', 'varchar(20)', 'YES', null],
      ['email', 'varchar', 'varchar(255)', 'YES', null],
      ['address', 'text', 'text', 'YES', null],
      ['city', 'varchar', 'varchar(100)', 'YES', null],
      ['state', 'varchar', 'varchar(50)', 'YES', null],
      ['zip_code', 'varchar', 'varchar(10)', 'YES', null],
      ['country', 'varchar', 'varchar(50)', 'YES', 'USA'],
      ['emergency_contact_name', 'varchar', 'varchar(255)', 'YES', null],
      ['emergency_contact_phone', 'varchar', 'varchar(20)', 'YES', null],
      ['emergency_contact_relationship', 'varchar', 'varchar(50)', 'YES', null],
      ['blood_type', 'enum', "enum('A+','A-','B+','B-','AB+','AB-','O+','O-')", 'YES', null],
      ['allergies', 'text', 'text', 'YES', null],
      ['chronic_conditions', 'text', 'text', 'YES', null],
      ['current_medications', 'text', 'text', 'YES', null],
      ['primary_doctor_id', 'varchar', 'varchar(36)', 'YES', null],
      ['status', 'enum', "enum('active','inactive','deceased')", 'YES', 'active'],
      ['created_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['updated_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP', 'on update CURRENT_TIMESTAMP'],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_name', ['last_name', 'first_name'], false],
      ['idx_doctor', ['primary_doctor_id'], false],
      ['idx_status', ['status'], false],
    ],
    foreignKeys: [
      ['user_id', 'users', 'id', 'SET NULL'],
      ['primary_doctor_id', 'users', 'id', 'SET NULL'],
    ],
  },
  appointments: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['doctor_id', 'varchar', 'varchar(36)', 'NO', null],
      ['appointment_date', 'date', 'date', 'NO', null],
      ['appointment_time', 'time', 'time', 'NO', null],
      ['duration_minutes', 'int', 'int', 'YES', '30'],
      ['appointment_type', 'enum', "enum('consultation','follow_up','emergency','surgery','diagnostic')", 'NO', null],
      ['priority', 'enum', "enum('low','medium','high','urgent')", 'YES', 'medium'],
      ['status', 'enum', "enum('scheduled','confirmed','in_progress','completed','cancelled','no_show')", 'YES', 'scheduled'],
      ['chief_complaint', 'text', 'text', 'YES', null],
      ['notes', 'text', 'text', 'YES', null],
      ['room_number', 'varchar', 'varchar(20)', 'YES', null],
      ['created_by', 'varchar', 'varchar(36)', 'NO', null],
      ['cancelled_by', 'varchar', 'varchar(36)', 'YES', null],
      ['cancellation_reason', 'text', 'text', 'YES', null],
      ['created_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['updated_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP', 'on update CURRENT_TIMESTAMP'],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_date_time', ['appointment_date', 'appointment_time'], false],
      ['idx_patient', ['patient_id'], false],
      ['idx_doctor', ['doctor_id'], false],
      ['idx_status', ['status'], false],
      ['idx_priority', ['priority'], false],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
      ['doctor_id', 'users', 'id', 'CASCADE'],
      ['created_by', 'users', 'id', 'CASCADE'],
      ['cancelled_by', 'users', 'id', 'SET NULL'],
    ],
  },
  visits: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['doctor_id', 'varchar', 'varchar(36)', 'NO', null],
      ['appointment_id', 'varchar', 'varchar(36)', 'YES', null],
      ['visit_date', 'date', 'date', 'NO', null],
      ['visit_time', 'time', 'time', 'NO', null],
      ['visit_type', 'enum', "enum('routine','emergency','follow_up','consultation','surgery')", 'NO', null],
      ['chief_complaint', 'text', 'text', 'YES', null],
      ['history_present_illness', 'text', 'text', 'YES', null],
      ['physical_examination', 'text', 'text', 'YES', null],
      ['assessment', 'text', 'text', 'YES', null],
      ['plan', 'text', 'text', 'YES', null],
      ['notes', 'text', 'text', 'YES', null],
      ['discharge_instructions', 'text', 'text', 'YES', null],
      ['follow_up_instructions', 'text', 'text', 'YES', null],
      ['status', 'enum', "enum('in_progress','completed','cancelled')", 'YES', 'in_progress'],
      ['created_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['updated_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP', 'on update CURRENT_TIMESTAMP'],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_patient', ['patient_id'], false],
      ['idx_doctor', ['doctor_id'], false],
      ['idx_date', ['visit_date'], false],
      ['idx_status', ['status'], false],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
      ['doctor_id', 'users', 'id', 'CASCADE'],
      ['appointment_id', 'appointments', 'id', 'SET NULL'],
    ],
  },
  medical_conditions: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['visit_id', 'varchar', 'varchar(36)', 'YES', null],
      ['condition_name', 'varchar', 'varchar(255)', 'NO', null],
      ['icd_10_code', 'varchar', 'varchar(20)', 'YES', null],
      ['diagnosis_date', 'date', 'date', 'NO', null],
      ['severity', 'enum', "enum('mild','moderate','severe','critical')", 'YES', 'moderate'],
      ['status', 'enum', "enum('active','resolved','chronic','in_remission')", 'YES', 'active'],
      ['notes', 'text', 'text', 'YES', null],
      ['diagnosed_by', 'varchar', 'varchar(36)', 'NO', null],
      ['created_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['updated_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP', 'on update CURRENT_TIMESTAMP'],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_patient', ['patient_id'], false],
      ['idx_condition', ['condition_name'], false],
      ['idx_status', ['status'], false],
      ['idx_icd_code', ['icd_10_code'], false],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
      ['visit_id', 'visits', 'id', 'SET NULL'],
      ['diagnosed_by', 'users', 'id', 'CASCADE'],
    ],
  },
  prescriptions: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['doctor_id', 'varchar', 'varchar(36)', 'NO', null],
      ['visit_id', 'varchar', 'varchar(36)', 'YES', null],
      ['medication_name', 'varchar', 'varchar(255)', 'NO', null],
      ['dosage', 'varchar', 'varchar(100)', 'NO', null],
      ['frequency', 'varchar', 'varchar(100)', 'NO', null],
      ['duration', 'varchar', 'varchar(100)', 'YES', null],
      ['quantity_prescribed', 'int', 'int', 'YES', null],
      ['refills_remaining', 'int', 'int', 'YES', '0'],
      ['instructions', 'text', 'text', 'YES', null],
      ['indication', 'varchar', 'varchar(255)', 'YES', null],
      ['status', 'enum', "enum('active','completed','cancelled','expired')", 'YES', 'active'],
      ['prescribed_date', 'date', 'date', 'NO', null],
      ['start_date', 'date', 'date', 'YES', null],
      ['end_date', 'date', 'date', 'YES', null],
      ['pharmacy_notes', 'text', 'text', 'YES', null],
      ['created_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['updated_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP', 'on update CURRENT_TIMESTAMP'],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_patient', ['patient_id'], false],
      ['idx_doctor', ['doctor_id'], false],
      ['idx_medication', ['medication_name'], false],
      ['idx_status', ['status'], false],
      ['idx_prescribed_date', ['prescribed_date'], false],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
      ['doctor_id', 'users', 'id', 'CASCADE'],
      ['visit_id', 'visits', 'id', 'SET NULL'],
    ],
  },
  vitals: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['visit_id', 'varchar', 'varchar(36)', 'YES', null],
      ['recorded_by', 'varchar', 'varchar(36)', 'NO', null],
      ['recorded_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['systolic_bp', 'int', 'int', 'YES', null],
      ['diastolic_bp', 'int', 'int', 'YES', null],
      ['heart_rate', 'int', 'int', 'YES', null],
      ['respiratory_rate', 'int', 'int', 'YES', null],
      ['temperature', 'decimal', 'decimal(4,1)', 'YES', null],
      ['temperature_unit', 'enum', "enum('F','C')", 'YES', 'F'],
      ['oxygen_saturation', 'int', 'int', 'YES', null],
      ['weight', 'decimal', 'decimal(5,2)', 'YES', null],
      ['weight_unit', 'enum', "enum('lbs','kg')", 'YES', 'lbs'],
      ['height_feet', 'int', 'int', 'YES', null],
      ['height_inches', 'int', 'int', 'YES', null],
      ['height_cm', 'int', 'int', 'YES', null],
      ['bmi', 'decimal', 'decimal(4,1)', 'YES', null],
      ['pain_scale', 'int', 'int', 'YES', null],
      ['notes', 'text', 'text', 'YES', null],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_patient', ['patient_id'], false],
      ['idx_visit', ['visit_id'], false],
      ['idx_recorded_at', ['recorded_at'], false],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
      ['visit_id', 'visits', 'id', 'SET NULL'],
      ['recorded_by', 'users', 'id', 'CASCADE'],
    ],
  },
  lab_results: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['visit_id', 'varchar', 'varchar(36)', 'YES', null],
      ['ordered_by', 'varchar', 'varchar(36)', 'NO', null],
      ['test_name', 'varchar', 'varchar(255)', 'NO', null],
      ['test_code', 'varchar', 'varchar(50)', 'YES', null],
      ['test_category', 'enum', "enum('blood','urine','imaging','pathology','microbiology','other')", 'NO', null],
      ['result_value', 'varchar', 'varchar(255)', 'YES', null],
      ['result_unit', 'varchar', 'varchar(50)', 'YES', null],
      ['reference_range', 'varchar', 'varchar(100)', 'YES', null],
      ['status', 'enum', "enum('ordered','in_progress','completed','cancelled')", 'YES', 'ordered'],
      ['abnormal_flag', 'enum', "enum('normal','low','high','critical')", 'YES', 'normal'],
      ['ordered_date', 'date', 'date', 'NO', null],
      ['collection_date', 'date', 'date', 'YES', null],
      ['result_date', 'date', 'date', 'YES', null],
      ['lab_comments', 'text', 'text', 'YES', null],
      ['interpretation', 'text', 'text', 'YES', null],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_patient', ['patient_id'], false],
      ['idx_test_name', ['test_name'], false],
      ['idx_status', ['status'], false],
      ['idx_ordered_date', ['ordered_date'], false],
      ['idx_abnormal_flag', ['abnormal_flag'], false],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
      ['visit_id', 'visits', 'id', 'SET NULL'],
      ['ordered_by', 'users', 'id', 'CASCADE'],
    ],
  },
  billing: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['visit_id', 'varchar', 'varchar(36)', 'YES', null],
      ['appointment_id', 'varchar', 'varchar(36)', 'YES', null],
      ['invoice_number', 'varchar', 'varchar(100)', 'NO', null],
      ['service_date', 'date', 'date', 'NO', null],
      ['service_description', 'text', 'text', 'NO', null],
      ['procedure_codes', 'text', 'text', 'YES', null],
      ['diagnosis_codes', 'text', 'text', 'YES', null],
      ['amount_charged', 'decimal', 'decimal(10,2)', 'NO', null],
      ['amount_paid', 'decimal', 'decimal(10,2)', 'YES', '0.00'],
      ['amount_due', 'decimal', 'decimal(10,2)', 'YES', null, 'STORED GENERATED'],
      ['payment_status', 'enum', "enum('pending','partial','paid','overdue','written_off')", 'YES', 'pending'],
      ['billing_date', 'date', 'date', 'NO', null],
      ['due_date', 'date', 'date', 'NO', null],
      ['payment_date', 'date', 'date', 'YES', null],
      ['payment_method', 'enum', "enum('cash','check','credit_card','insurance','other')", 'YES', null],
      ['notes', 'text', 'text', 'YES', null],
      ['created_by', 'varchar', 'varchar(36)', 'NO', null],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['invoice_number', ['invoice_number'], true],
      ['idx_patient', ['patient_id'], false],
      ['idx_invoice', ['invoice_number'], false],
      ['idx_payment_status', ['payment_status'], false],
      ['idx_due_date', ['due_date'], false],
      ['idx_service_date', ['service_date'], false],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
      ['visit_id', 'visits', 'id', 'SET NULL'],
      ['appointment_id', 'appointments', 'id', 'SET NULL'],
      ['created_by', 'users', 'id', 'CASCADE'],
    ],
  },
  insurance: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['patient_id', 'varchar', 'varchar(36)', 'NO', null],
      ['insurance_company', 'varchar', 'varchar(255)', 'NO', null],
      ['policy_number', 'varchar', 'varchar(100)', 'NO', null],
      ['group_number', 'varchar', 'varchar(100)', 'YES', null],
      ['policy_holder_name', 'varchar', 'varchar(255)', 'NO', null],
      ['relationship_to_patient', 'enum', "enum('self','spouse','child','parent','other')", 'NO', null],
      ['coverage_type', 'enum', "enum('primary','secondary','tertiary')", 'NO', null],
      ['effective_date', 'date', 'date', 'NO', null],
      ['expiration_date', 'date', 'date', 'YES', null],
      ['copay_amount', 'decimal', 'decimal(6,2)', 'YES', null],
      ['deductible_amount', 'decimal', 'decimal(8,2)', 'YES', null],
      ['deductible_met', 'decimal', 'decimal(8,2)', 'YES', '0.00'],
      ['status', 'enum', "enum('active','inactive','expired')", 'YES', 'active'],
      ['pre_auth_required', 'tinyint', 'tinyint(1)', 'YES', '0'],
      ['notes', 'text', 'text', 'YES', null],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_patient', ['patient_id'], false],
      ['idx_policy', ['policy_number'], false],
      ['idx_coverage_type', ['coverage_type'], false],
      ['idx_status', ['status'], false],
      ['unique_patient_coverage', ['patient_id', 'coverage_type'], true],
    ],
    foreignKeys: [
      ['patient_id', 'patients', 'id', 'CASCADE'],
    ],
  },
  security_logs: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['user_id', 'varchar', 'varchar(36)', 'YES', null],
      ['action', 'varchar', 'varchar(100)', 'NO', null],
      ['resource_type', 'varchar', 'varchar(50)', 'YES', null],
      ['resource_id', 'varchar', 'varchar(36)', 'YES', null],
      ['ip_address', 'varchar', 'varchar(45)', 'YES', null],
      ['user_agent', 'text', 'text', 'YES', null],
      ['timestamp', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['success', 'tinyint', 'tinyint(1)', 'NO', null],
      ['failure_reason', 'text', 'text', 'YES', null],
      ['additional_data', 'json', 'json', 'YES', null],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['idx_user', ['user_id'], false],
      ['idx_action', ['action'], false],
      ['idx_timestamp', ['timestamp'], false],
      ['idx_success', ['success'], false],
      ['idx_resource', ['resource_type', 'resource_id'], false],
    ],
    foreignKeys: [
      ['user_id', 'users', 'id', 'SET NULL'],
    ],
  },
  user_sessions: {
    columns: [
      ['id', 'varchar', 'varchar(36)', 'NO', null],
      ['user_id', 'varchar', 'varchar(36)', 'NO', null],
      ['session_token', 'varchar', 'varchar(255)', 'NO', null],
      ['ip_address', 'varchar', 'varchar(45)', 'YES', null],
      ['user_agent', 'text', 'text', 'YES', null],
      ['created_at', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP'],
      ['expires_at', 'timestamp', 'timestamp', 'NO', null],
      ['last_activity', 'timestamp', 'timestamp', 'YES', 'CURRENT_TIMESTAMP', 'on update CURRENT_TIMESTAMP'],
      ['is_active', 'tinyint', 'tinyint(1)', 'YES', '1'],
    ],
    indexes: [
      ['PRIMARY', ['id'], true],
      ['session_token', ['session_token'], true],
      ['idx_user', ['user_id'], false],
      ['idx_token', ['session_token'], false],
      ['idx_expires', ['expires_at'], false],
      ['idx_active', ['is_active'], false],
    ],
    foreignKeys: [
      ['user_id', 'users', 'id', 'CASCADE'],
    ],
  },
};

/** `vitals.pain_scale INT CHECK (pain_scale BETWEEN 0 AND 10)`, normalised with normSql. */
const PAIN_SCALE_CHECK = 'pain_scale between 0 and 10';
/** `billing.amount_due ... GENERATED ALWAYS AS (amount_charged - amount_paid) STORED`, normalised. */
const AMOUNT_DUE_EXPRESSION = 'amount_charged - amount_paid';

const TABLES = Object.keys(SEED);

/** Lower case, no backticks/quotes around identifiers, no parentheses, single spaces. */
function normSql(sql: string): string {
  return sql.toLowerCase().replace(/[`"()]/g, '').replace(/\s+/g, ' ').trim();
}

/** Default as canonical text: MariaDB quotes literals ('active') and writes current_timestamp(). */
function canonicalDefault(value: string | number | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const v = String(value);
  if (v === 'NULL') return null; // MariaDB: nullable column with DEFAULT NULL
  if (/^current_timestamp(\(\))?$/i.test(v)) return 'CURRENT_TIMESTAMP';
  const quoted = /^'(.*)'$/s.exec(v);
  return quoted ? quoted[1]!.replace(/''/g, "'") : v;
}

/** Numbers compared by value (SQLite keeps knex's `'0'` where MySQL shows `0.00`). */
function numericDefault(value: string | null): string | null {
  return value !== null && value !== '' && Number.isFinite(Number(value)) ? String(Number(value)) : value;
}

/** ON UPDATE left unspecified: MariaDB reports RESTRICT, MySQL 8 and SQLite NO ACTION. */
function canonicalRule(rule: string): string {
  const r = rule.toUpperCase();
  return r === 'NO ACTION' ? 'RESTRICT' : r;
}

function enumValues(columnType: string): string | undefined {
  return /^enum\((.*)\)$/.exec(columnType)?.[1];
}

/** Rows of a raw query on either dialect (mysql2 answers [rows, fields]). */
async function query<T>(db: Knex, sql: string, bindings: readonly Knex.RawBinding[] = []): Promise<T[]> {
  const res: unknown = await db.raw(sql, bindings);
  return (dialectOf(db) === 'mysql' ? (res as [T[]])[0] : res) as T[];
}

const inList = (names: readonly string[]) => names.map(() => '?').join(', ');

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

interface MysqlColumnRow {
  TABLE_NAME: string;
  COLUMN_NAME: string;
  DATA_TYPE: string;
  COLUMN_TYPE: string;
  IS_NULLABLE: string;
  COLUMN_DEFAULT: string | null;
  EXTRA: string;
  GENERATION_EXPRESSION: string | null;
}

async function checkMysql(t: Test, db: Knex): Promise<void> {
  const columns = await query<MysqlColumnRow>(
    db,
    `SELECT TABLE_NAME AS TABLE_NAME, COLUMN_NAME AS COLUMN_NAME, DATA_TYPE AS DATA_TYPE,
            COLUMN_TYPE AS COLUMN_TYPE, IS_NULLABLE AS IS_NULLABLE, COLUMN_DEFAULT AS COLUMN_DEFAULT,
            EXTRA AS EXTRA, GENERATION_EXPRESSION AS GENERATION_EXPRESSION
       FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${inList(TABLES)})
      ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    TABLES,
  );
  const statistics = await query<{ TABLE_NAME: string; INDEX_NAME: string; NON_UNIQUE: number | string; COLUMN_NAME: string }>(
    db,
    `SELECT TABLE_NAME AS TABLE_NAME, INDEX_NAME AS INDEX_NAME, NON_UNIQUE AS NON_UNIQUE, COLUMN_NAME AS COLUMN_NAME
       FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${inList(TABLES)})
      ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    TABLES,
  );
  const foreignKeys = await query<{
    TABLE_NAME: string;
    COLUMN_NAME: string;
    REFERENCED_TABLE_NAME: string;
    REFERENCED_COLUMN_NAME: string;
    DELETE_RULE: string;
    UPDATE_RULE: string;
  }>(
    db,
    `SELECT k.TABLE_NAME AS TABLE_NAME, k.COLUMN_NAME AS COLUMN_NAME,
            k.REFERENCED_TABLE_NAME AS REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME AS REFERENCED_COLUMN_NAME,
            r.DELETE_RULE AS DELETE_RULE, r.UPDATE_RULE AS UPDATE_RULE
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS r
         ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
      WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME IN (${inList(TABLES)}) AND k.REFERENCED_TABLE_NAME IS NOT NULL`,
    TABLES,
  );
  // MariaDB's CHECK_CONSTRAINTS has TABLE_NAME (and column-level names are only unique per
  // table); MySQL 8's has not, but there names are unique per schema and TABLE_CONSTRAINTS maps them.
  const checkRows = await query<{ CONSTRAINT_NAME: string; CHECK_CLAUSE: string; TABLE_NAME?: string }>(
    db,
    'SELECT * FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()',
  );
  const checkTables = await query<{ TABLE_NAME: string; CONSTRAINT_NAME: string }>(
    db,
    `SELECT TABLE_NAME AS TABLE_NAME, CONSTRAINT_NAME AS CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS
      WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_TYPE = 'CHECK'`,
  );
  const checks = checkRows.map((row) => ({
    table: row.TABLE_NAME ?? checkTables.find((c) => c.CONSTRAINT_NAME === row.CONSTRAINT_NAME)?.TABLE_NAME,
    clause: normSql(row.CHECK_CLAUSE),
  }));
  const tables = await query<{ TABLE_NAME: string; ENGINE: string; TABLE_COLLATION: string }>(
    db,
    `SELECT TABLE_NAME AS TABLE_NAME, ENGINE AS ENGINE, TABLE_COLLATION AS TABLE_COLLATION
       FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${inList(TABLES)})`,
    TABLES,
  );

  for (const [table, spec] of Object.entries(SEED)) {
    await t.test(table, async (t) => {
      t.same(
        tables.find((r) => r.TABLE_NAME === table),
        { TABLE_NAME: table, ENGINE: 'InnoDB', TABLE_COLLATION: 'utf8mb4_unicode_ci' },
        `${table} is an InnoDB utf8mb4_unicode_ci table`,
      );
      const tableChecks = checks.filter((c) => c.table === table).map((c) => c.clause);
      const actual = new Map(columns.filter((c) => c.TABLE_NAME === table).map((c) => [c.COLUMN_NAME, c]));
      for (const [name, dataType, columnType, isNullable, columnDefault, extra] of spec.columns) {
        const row = actual.get(name);
        if (!row) {
          t.fail(`${table}.${name} is missing`);
          continue;
        }
        // MariaDB: JSON is LONGTEXT with CHECK (json_valid(col)).
        const isJson = row.DATA_TYPE === 'json' || (row.DATA_TYPE === 'longtext' && tableChecks.includes(`json_valid${name}`));
        t.same(
          {
            DATA_TYPE: isJson ? 'json' : row.DATA_TYPE,
            COLUMN_TYPE: isJson ? 'json' : row.COLUMN_TYPE.replace(/^(smallint|mediumint|int|bigint)\(\d+\)/, '$1'),
            IS_NULLABLE: row.IS_NULLABLE,
            COLUMN_DEFAULT: canonicalDefault(row.COLUMN_DEFAULT),
            EXTRA: row.EXTRA.replace(/DEFAULT_GENERATED/i, '')
              .replace(/current_timestamp\(\)/gi, 'CURRENT_TIMESTAMP')
              .replace(/\s+/g, ' ')
              .trim(),
          },
          { DATA_TYPE: dataType, COLUMN_TYPE: columnType, IS_NULLABLE: isNullable, COLUMN_DEFAULT: columnDefault, EXTRA: extra ?? '' },
          `${table}.${name}`,
        );
      }
      const seedNames = spec.columns.map(([name]) => name);
      t.same(
        [...actual.keys()].filter((name) => seedNames.includes(name)),
        seedNames,
        `${table}: seed columns in the seed's order (other columns ignored)`,
      );

      const indexes = new Map<string, { columns: string[]; unique: boolean }>();
      for (const row of statistics.filter((s) => s.TABLE_NAME === table)) {
        const index = indexes.get(row.INDEX_NAME) ?? { columns: [], unique: Number(row.NON_UNIQUE) === 0 };
        index.columns.push(row.COLUMN_NAME);
        indexes.set(row.INDEX_NAME, index);
      }
      for (const [name, cols, unique] of spec.indexes) {
        t.same(indexes.get(name) ?? null, { columns: cols, unique }, `${table} index ${name}`);
      }

      for (const [column, refTable, refColumn, onDelete] of spec.foreignKeys) {
        t.same(
          foreignKeys
            .filter((fk) => fk.TABLE_NAME === table && fk.COLUMN_NAME === column)
            .map((fk) => ({
              references: `${fk.REFERENCED_TABLE_NAME}.${fk.REFERENCED_COLUMN_NAME}`,
              onDelete: fk.DELETE_RULE,
              onUpdate: canonicalRule(fk.UPDATE_RULE),
            })),
          [{ references: `${refTable}.${refColumn}`, onDelete, onUpdate: 'RESTRICT' }],
          `${table}.${column} foreign key`,
        );
      }

      if (table === 'vitals') {
        t.ok(tableChecks.includes(PAIN_SCALE_CHECK), `vitals CHECK (${PAIN_SCALE_CHECK}); found ${JSON.stringify(tableChecks)}`);
      }
      if (table === 'billing') {
        const expression = normSql(actual.get('amount_due')?.GENERATION_EXPRESSION ?? '');
        t.equal(expression, AMOUNT_DUE_EXPRESSION, 'billing.amount_due generation expression');
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// SQLite

/** What knex's SQLite column compiler declares for each seed type. */
function sqliteType([, dataType, columnType, , , extra]: ColumnSpec): string {
  if (extra === 'STORED GENERATED') return columnType; // specificType, declared as written
  switch (dataType) {
    case 'enum':
      return 'text'; // + CHECK (col IN (...)), asserted separately
    case 'timestamp':
      return 'datetime';
    case 'int':
      return 'integer';
    case 'decimal':
      return 'float';
    case 'tinyint':
      return 'boolean';
    default:
      return columnType; // varchar(n), text, date, time, json
  }
}

interface XInfoRow {
  name: string;
  type: string;
  notnull: number;
  dflt_value: string | null;
  pk: number;
  hidden: number;
}

async function checkSqlite(t: Test, db: Knex): Promise<void> {
  for (const [table, spec] of Object.entries(SEED)) {
    await t.test(table, async (t) => {
      const [master] = await query<{ sql: string }>(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]);
      const createSql = normSql(master?.sql ?? '').replace(/,\s*/g, ',');
      const info = await query<XInfoRow>(db, 'SELECT * FROM pragma_table_xinfo(?)', [table]);
      const actual = new Map(info.map((c) => [c.name, c]));
      const primary = spec.indexes.find(([name]) => name === 'PRIMARY')?.[1] ?? [];
      for (const col of spec.columns) {
        const [name, , columnType, isNullable, columnDefault, extra] = col;
        const row = actual.get(name);
        if (!row) {
          t.fail(`${table}.${name} is missing`);
          continue;
        }
        t.same(
          {
            type: row.type.toLowerCase(),
            notnull: row.notnull,
            pk: row.pk > 0,
            default: numericDefault(canonicalDefault(row.dflt_value)),
            generated: row.hidden === 3 ? 'STORED GENERATED' : row.hidden === 2 ? 'VIRTUAL GENERATED' : '',
          },
          {
            type: sqliteType(col).toLowerCase(),
            notnull: isNullable === 'NO' ? 1 : 0,
            pk: primary.includes(name),
            default: numericDefault(columnDefault),
            // SQLite has no ON UPDATE CURRENT_TIMESTAMP.
            generated: extra === 'STORED GENERATED' ? extra : '',
          },
          `${table}.${name}`,
        );
        const values = enumValues(columnType);
        if (values) t.ok(createSql.includes(`${name} in ${values}`.toLowerCase()), `${table}.${name} CHECK IN ${values}`);
      }
      const seedNames = spec.columns.map(([name]) => name);
      t.same(
        [...actual.keys()].filter((name) => seedNames.includes(name)),
        seedNames,
        `${table}: seed columns in the seed's order (other columns ignored)`,
      );

      const indexList = await query<{ name: string; unique: number; origin: string }>(db, 'SELECT * FROM pragma_index_list(?)', [table]);
      for (const [name, cols, unique] of spec.indexes) {
        // SQLite index names are per database: the migrations prefix them with the table name.
        const index = name === 'PRIMARY' ? indexList.find((i) => i.origin === 'pk') : indexList.find((i) => i.name === `${table}_${name}`);
        const indexCols = index
          ? (await query<{ name: string }>(db, 'SELECT name FROM pragma_index_info(?) ORDER BY seqno', [index.name])).map((c) => c.name)
          : [];
        t.same(index ? { columns: indexCols, unique: index.unique === 1 } : null, { columns: cols, unique }, `${table} index ${name}`);
      }

      const fks = await query<{ table: string; from: string; to: string; on_delete: string; on_update: string }>(
        db,
        'SELECT * FROM pragma_foreign_key_list(?)',
        [table],
      );
      for (const [column, refTable, refColumn, onDelete] of spec.foreignKeys) {
        t.same(
          fks
            .filter((fk) => fk.from === column)
            .map((fk) => ({ references: `${fk.table}.${fk.to}`, onDelete: fk.on_delete, onUpdate: canonicalRule(fk.on_update) })),
          [{ references: `${refTable}.${refColumn}`, onDelete, onUpdate: 'RESTRICT' }],
          `${table}.${column} foreign key`,
        );
      }

      if (table === 'vitals') t.ok(createSql.includes(`check ${PAIN_SCALE_CHECK}`), `vitals CHECK (${PAIN_SCALE_CHECK})`);
      if (table === 'billing') {
        t.ok(createSql.includes(`generated always as ${AMOUNT_DUE_EXPRESSION} stored`), 'billing.amount_due generation expression');
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Behaviour (both dialects)

/**
 * Later migrations may add NOT NULL columns without a default; give those a placeholder so the
 * seed-shaped rows below still insert.
 */
async function withRequired(db: Knex, table: string, row: Record<string, unknown>): Promise<Record<string, unknown>> {
  const info = (await db(table).columnInfo()) as unknown as Record<string, Knex.ColumnInfo>;
  const out = { ...row };
  for (const [name, col] of Object.entries(info)) {
    if (name in out || col.nullable || col.defaultValue !== null) continue;
    const type = col.type.toLowerCase();
    out[name] = /int|dec|float|double|real|num|bool/.test(type)
      ? 0
      : type === 'date'
        ? '2000-01-01'
        : type === 'time'
          ? '00:00:00'
          : /date|time/.test(type)
            ? '2000-01-01 00:00:00'
            : /json/.test(type)
              ? '{}'
              : 'x';
  }
  return out;
}

async function checkBehaviour(t: Test, db: Knex): Promise<void> {
  const trx = await db.transaction();
  try {
    const userId = randomUUID();
    const patientId = randomUUID();
    await trx('users').insert(
      await withRequired(trx, 'users', {
        id: userId,
        email: `seed-schema-${userId}@example.test`,
        password_hash: 'x',
        name: 'Seed Schema Test',
        role: 'doctor',
      }),
    );
    const user = await trx('users').where({ id: userId }).first();
    t.equal(user?.status, 'active', "users.status defaults to 'active'");
    t.ok(user?.created_at, 'users.created_at defaults to CURRENT_TIMESTAMP');
    t.equal(user?.last_login, null, 'users.last_login defaults to NULL');

    await trx('patients').insert(
      await withRequired(trx, 'patients', {
        id: patientId,
        first_name: 'Ada',
        last_name: 'Test',
        date_of_birth: '1980-02-03',
        gender: 'female',
        primary_doctor_id: userId,
      }),
    );
    t.equal((await trx('patients').where({ id: patientId }).first())?.country, 'USA', "patients.country defaults to 'USA'");

    const billingId = randomUUID();
    await trx('billing').insert(
      await withRequired(trx, 'billing', {
        id: billingId,
        patient_id: patientId,
        invoice_number: `INV-${billingId}`,
        service_date: '2024-05-01',
        service_description: 'Consultation',
        amount_charged: 150,
        amount_paid: 40.25,
        billing_date: '2024-05-01',
        due_date: '2024-06-01',
        created_by: userId,
      }),
    );
    const amountDue = async () => Number((await trx('billing').where({ id: billingId }).first())?.amount_due);
    t.equal(await amountDue(), 109.75, 'billing.amount_due = amount_charged - amount_paid on insert');
    await trx('billing').where({ id: billingId }).update({ amount_paid: 150 });
    t.equal(await amountDue(), 0, 'billing.amount_due recomputed on update');

    const vitals = async (pain: number) => {
      const row = await withRequired(trx, 'vitals', { id: randomUUID(), patient_id: patientId, recorded_by: userId, pain_scale: pain });
      // A savepoint, so a rejected insert leaves the outer transaction usable.
      await trx.transaction(async (sp) => {
        await sp('vitals').insert(row);
      });
    };
    await t.resolves(vitals(0), 'vitals.pain_scale 0 accepted');
    await t.resolves(vitals(10), 'vitals.pain_scale 10 accepted');
    await t.rejects(vitals(11), /constraint/i, 'vitals.pain_scale 11 rejected by the CHECK');
    await t.rejects(vitals(-1), /constraint/i, 'vitals.pain_scale -1 rejected by the CHECK');
  } finally {
    await trx.rollback();
  }
}

// ---------------------------------------------------------------------------------------------

let dataDir: string | undefined;
const config = process.env.DATABASE_URL
  ? loadConfig(process.env)
  : loadConfig(process.env, { HMS_DATA_DIR: (dataDir = mkdtempSync(join(tmpdir(), 'hms-seed-schema-'))) });
const db = createDb(config);
t.teardown(async () => {
  await db.destroy();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

await migrateLatest(db);
const dialect = dialectOf(db);

await t.test(`seed schema (${dialect})`, (t) => (dialect === 'mysql' ? checkMysql(t, db) : checkSqlite(t, db)));
await t.test(`seed behaviour (${dialect})`, (t) => checkBehaviour(t, db));
