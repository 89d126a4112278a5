/**
 * DiagnosticReport over its own table (diagnostic_reports, migration 0108): create, read, update,
 * delete and search; result references must point at stored Observations.
 * https://hl7.org/fhir/R4/diagnosticreport.html · docs/resources/DiagnosticReport.md
 */
import { appendRows } from '../../db/write-buffer.js';
import { defineResource, type TokenValue } from '../registry.js';
import { ALL_INTERACTIONS, literalRefs } from './common.js';
import { unprocessable } from '../outcome.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import type { CodeableConcept, Reference } from '../types.js';
import { referenceId } from '../../mappers/datatypes.js';
import { diagnosticReportFromRow, diagnosticReportToRow, type DiagnosticReport } from '../../mappers/diagnostic-report-mapper.js';

const TABLE = 'diagnostic_reports';
const codings = (cc: CodeableConcept | undefined): TokenValue[] => (cc?.coding ?? []).filter((c) => c.code).map((c) => ({ system: c.system, code: c.code! }));
const refs = (list: Reference[] | undefined): string[] => literalRefs(list ?? []);
const dr = (r: unknown): DiagnosticReport => r as DiagnosticReport;

export const DiagnosticReportDefinition = defineResource<DiagnosticReport>({
  type: 'DiagnosticReport',
  table: TABLE,
  profile: 'http://hl7.org/fhir/StructureDefinition/DiagnosticReport',
  description: 'Diagnostic reports grouping Observations (diagnostic_reports table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  storage: {
    async insertRow(trx, id, row) { await appendRows(trx, TABLE, [{ ...row, id }]); },
    async updateRow(trx, id, row) { await trx(TABLE).where({ id }).update(row); },
    async deleteRow(trx, id) { await trx(TABLE).where({ id }).delete(); },
  },
  toRow: (r) => diagnosticReportToRow(r),
  fromRow: diagnosticReportFromRow,
  check(r) {
    if (!referenceId(r.subject, 'Patient')) throw unprocessable('DiagnosticReport.subject must refer to a Patient of this server', 'DiagnosticReport.subject', 'required');
    checkRealDate(r.effectiveDateTime, 'DiagnosticReport.effectiveDateTime');
    checkPeriod(r.effectivePeriod?.start, r.effectivePeriod?.end, 'DiagnosticReport.effectivePeriod');
  },
  async checkStored(r, { visible }) {
    const list = r.result ?? [];
    // results must be Observations the writer may read: one out of reach answers like a missing one
    const ids = list.map((x) => referenceId(x, 'Observation')).filter((x): x is string => !!x);
    const found = await visible('Observation', ids);
    for (let i = 0; i < list.length; i++) {
      const ref = list[i]!.reference;
      if (!ref) continue;
      const id = referenceId(list[i], 'Observation');
      if (!id || !found.has(id)) throw unprocessable(`DiagnosticReport.result[${i}] refers to ${ref}, which is not a stored Observation`, `DiagnosticReport.result[${i}]`, 'not-found');
    }
  },
  references: [
    { column: 'patient_id', expression: 'DiagnosticReport.subject', targetType: 'Patient', table: 'patients', softDelete: true },
    { column: 'visit_id', expression: 'DiagnosticReport.encounter', targetType: 'Encounter', table: 'visits', softDelete: false },
  ],
  // isSummary in R4 (basedOn, result and conclusionCode are not)
  summaryElements: [
    'identifier', 'status', 'category', 'code', 'subject', 'encounter', 'effectiveDateTime', 'effectivePeriod', 'issued', 'performer',
    'resultsInterpreter', 'media',
  ],
  compartment: ['patient'],
  searchParams: [
    { name: 'patient', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'], expression: 'DiagnosticReport.subject.where(resolve() is Patient)', description: 'The patient of the report' },
    { name: 'subject', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'], expression: 'DiagnosticReport.subject', description: 'The subject of the report (a Patient)' },
    { name: 'encounter', source: 'column', type: 'reference', column: 'visit_id', targets: ['Encounter'], expression: 'DiagnosticReport.encounter', description: 'The visit of the report' },
    {
      name: 'status', source: 'column', type: 'token', column: 'status', expression: 'DiagnosticReport.status', description: 'registered | partial | preliminary | final ...',
      tokenToColumn: (system, code) => (system && system !== 'http://hl7.org/fhir/diagnostic-report-status' ? undefined : [code]),
    },
    { name: 'date', source: 'column', type: 'date', column: 'effective_at', dateKind: 'timestamp', expression: 'DiagnosticReport.effective', description: 'The clinically relevant time (start of effective[x])', sort: ['effective_at'] },
    { name: 'issued', source: 'column', type: 'date', column: 'issued', dateKind: 'timestamp', expression: 'DiagnosticReport.issued', description: 'When the report was issued', sort: ['issued'] },
    { name: 'code', source: 'index', type: 'token', expression: 'DiagnosticReport.code', description: 'Any coding of the report code', extract: (r) => codings(dr(r).code) },
    { name: 'category', source: 'index', type: 'token', expression: 'DiagnosticReport.category', description: 'Any coding of a category', extract: (r) => (dr(r).category ?? []).flatMap(codings) },
    { name: 'result', source: 'index', type: 'reference', targets: ['Observation'], expression: 'DiagnosticReport.result', description: 'A result Observation', extract: (r) => refs(dr(r).result) },
  ],
});
