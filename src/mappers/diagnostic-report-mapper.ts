/**
 * DiagnosticReport <-> diagnostic_reports row (migration 0108). The row holds what searches
 * compare (patient, visit, status, code, dates); result references and everything else are kept.
 * https://hl7.org/fhir/R4/diagnosticreport.html · Pure, no I/O.
 */
import type { CodeableConcept, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, resourceFromColumns, type ColumnField, type Row } from './column-map.js';
import { dateTimeToSql } from './datatypes.js';
import { pathField, referenceField } from './fields.js';
import { codingsOf, effectiveField, primaryCoding, type Observation } from './observation-mapper.js';

export interface DiagnosticReport extends Resource {
  resourceType: 'DiagnosticReport';
  status?: string;
  category?: CodeableConcept[];
  code?: CodeableConcept;
  subject?: Reference;
  encounter?: Reference;
  effectiveDateTime?: string;
  effectivePeriod?: { start?: string; end?: string };
  issued?: string;
  result?: Reference[];
}

const asObs = (f: ColumnField<Observation>): ColumnField<DiagnosticReport> => f as unknown as ColumnField<DiagnosticReport>;

export const diagnosticReportFields: ColumnField<DiagnosticReport>[] = [
  pathField('status', 'status'),
  referenceField('patient_id', 'subject', 'Patient'),
  referenceField('visit_id', 'encounter', 'Encounter'),
  asObs(effectiveField('effective_at')),
  pathField('issued', 'issued', { toColumn: (v) => dateTimeToSql(String(v)), fromColumn: (v) => `${String(v).replace(' ', 'T').slice(0, 19)}Z` }),
];

/** The columns a DiagnosticReport implies (code and category are derived, not read back). */
export function diagnosticReportToRow(r: DiagnosticReport): Row {
  const coding = primaryCoding(r.code);
  return {
    ...columnsFromResource(diagnosticReportFields, r),
    category: (r.category ?? []).flatMap((c) => codingsOf(c))[0]?.code?.slice(0, 64) ?? null,
    code_system: coding?.system?.slice(0, 255) ?? null,
    code: coding?.code?.slice(0, 64) ?? null,
  };
}

export function diagnosticReportFromRow(row: Row, kept?: DiagnosticReport): DiagnosticReport {
  const base: DiagnosticReport = kept ? structuredClone(kept) : { resourceType: 'DiagnosticReport', code: { coding: [{ system: String(row.code_system ?? ''), code: String(row.code ?? '') }] } };
  base.resourceType = 'DiagnosticReport';
  base.id = String(row.id);
  return resourceFromColumns(diagnosticReportFields, row, base);
}
