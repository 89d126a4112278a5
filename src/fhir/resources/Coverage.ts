/** Coverage, over the insurance table. https://hl7.org/fhir/R4/coverage.html (docs/resources/Coverage.md) */
import type { Knex } from 'knex';
import { defineResource, type TokenValue } from '../registry.js';
import {
  COVERAGE_EXTENSIONS, coverageFromRow, coverageToRow, coverageTypeOf, ORDERS, payorNameOf, policyHolderNameOf, type Coverage, statusToColumns,
} from '../../mappers/coverage-mapper.js';
import { extensionValue, referenceId } from '../../mappers/datatypes.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import { conflict, unprocessable } from '../outcome.js';
import { ALL_INTERACTIONS, checkUnique, literalRefs, statusParam } from './common.js';
import { dbErrorCode } from '../../db/transactions.js';
import type { Row } from '../../mappers/column-map.js';

const today = (): string => new Date().toISOString().slice(0, 10);

function checkCoverage(c: Coverage): void {
  if (!referenceId(c.beneficiary, 'Patient')) throw unprocessable('Coverage.beneficiary must refer to a Patient (insurance.patient_id)', 'Coverage.beneficiary', 'required');
  if (!payorNameOf(c)) throw unprocessable('Coverage.payor needs a display, reference or identifier (insurance.insurance_company)', 'Coverage.payor', 'required');
  if (!c.identifier?.some((i) => i.value) && !c.subscriberId) {
    throw unprocessable('Coverage.identifier (or subscriberId) is required: it is the policy number (insurance.policy_number)', 'Coverage.identifier', 'required');
  }
  if (!policyHolderNameOf(c)) {
    throw unprocessable('The policy holder needs a name: Coverage.policyHolder.display or Coverage.subscriber.display (unless the relationship is self)', 'Coverage.policyHolder', 'required');
  }
  if (!coverageTypeOf(c)) throw unprocessable(`Coverage.order ${String(c.order)} is not supported: 1 (primary), 2 (secondary) or 3 (tertiary)`, 'Coverage.order', 'business-rule');
  checkRealDate(c.period?.start, 'Coverage.period.start');
  checkRealDate(c.period?.end, 'Coverage.period.end');
  // an absent start is stored as the day the coverage is recorded
  checkPeriod(c.period?.start ?? today(), c.period?.end, 'Coverage.period');
  const met = (extensionValue(c, COVERAGE_EXTENSIONS.deductibleMet, 'valueMoney') as { value?: number } | undefined)?.value;
  if (met !== undefined && met < 0) throw unprocessable('The deductible met must not be negative', `Coverage.extension('${COVERAGE_EXTENSIONS.deductibleMet}')`, 'business-rule');
}

const orderTaken = (order: unknown): string =>
  `The patient already has a ${String(order)} coverage (Coverage.order ${ORDERS.indexOf(order as never) + 1}): only one per order`;

/** A write that hit unique_patient_coverage (a concurrent write of the same order): 409, never 500. */
async function guarded(row: Row, write: () => Promise<unknown>): Promise<void> {
  try {
    await write();
  } catch (err) {
    const code = dbErrorCode(err) ?? '';
    const message = String((err as Error).message ?? '');
    if ((code === 'ER_DUP_ENTRY' && message.includes('unique_patient_coverage')) || (code === 'SQLITE_CONSTRAINT_UNIQUE' && message.includes('insurance.coverage_type'))) {
      throw conflict(orderTaken(row.coverage_type));
    }
    throw err;
  }
}

const beneficiary = (name: string, description: string) => ({
  name, source: 'column' as const, type: 'reference' as const, column: 'patient_id', targets: ['Patient'], expression: 'Coverage.beneficiary', description,
});

export const CoverageDefinition = defineResource<Coverage>({
  type: 'Coverage',
  table: 'insurance',
  profile: 'http://hl7.org/fhir/StructureDefinition/Coverage',
  description: 'Insurance coverage of a patient (insurance table)',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  toRow: (c, ctx) => coverageToRow(c, { userId: ctx.userId, now: ctx.now }),
  fromRow: coverageFromRow,
  check: checkCoverage,
  async checkStored(_c, ctx) {
    const { patient_id: patient, coverage_type: order } = ctx.columns;
    await checkUnique(ctx, 'insurance', { patient_id: patient, coverage_type: order }, orderTaken(order));
  },
  storage: {
    insertRow: (trx: Knex, _id: string, row: Row) => guarded(row, () => trx('insurance').insert(row)),
    updateRow: (trx: Knex, id: string, row: Row) => guarded(row, () => trx('insurance').where({ id }).update(row)),
  },
  references: [
    { column: 'patient_id', expression: 'Coverage.beneficiary', targetType: 'Patient', table: 'patients', softDelete: true },
  ],
  // isSummary in R4, plus class: not summary itself, but its type, value and name are (the plan / group
  // a summary reader needs), and a top-level pick cannot take only the children
  summaryElements: ['identifier', 'status', 'type', 'policyHolder', 'subscriber', 'subscriberId', 'beneficiary', 'dependent', 'period', 'payor', 'class', 'order', 'network'],
  // the R4 Patient CompartmentDefinition's parameters HMS can search (OR-ed by Patient/$everything)
  compartment: ['patient', 'policy-holder', 'subscriber', 'payor'],
  searchParams: [
    beneficiary('patient', 'The patient covered (Coverage.beneficiary)'),
    beneficiary('beneficiary', 'The patient covered'),
    {
      name: 'identifier', source: 'column', type: 'token', column: 'policy_number', expression: 'Coverage.identifier',
      description: 'The policy number (the system is not compared)', sort: ['policy_number'],
      tokenToColumn: (_system, code) => [code],
    },
    {
      name: 'payor', source: 'index', type: 'reference', expression: 'Coverage.payor', targets: ['Organization', 'Patient', 'RelatedPerson'],
      description: 'A payor (literal references of Coverage.payor)', extract: (r) => literalRefs((r as Coverage).payor ?? []),
    },
    {
      name: 'subscriber', source: 'index', type: 'reference', expression: 'Coverage.subscriber', targets: ['Patient', 'RelatedPerson'],
      description: 'The subscriber', extract: (r) => literalRefs([(r as Coverage).subscriber]),
    },
    {
      name: 'policy-holder', source: 'index', type: 'reference', expression: 'Coverage.policyHolder', targets: ['Patient', 'RelatedPerson', 'Organization'],
      description: 'The policy holder', extract: (r) => literalRefs([(r as Coverage).policyHolder]),
    },
    statusParam('Coverage', 'http://hl7.org/fhir/fm-status', 'The status as stated: active | cancelled | draft | entered-in-error', 'status', statusToColumns),
    {
      name: 'type', source: 'index', type: 'token', expression: 'Coverage.type', description: 'The kind of coverage (a coding of Coverage.type)',
      extract: (r) => ((r as Coverage).type?.coding ?? []).filter((c) => c.code).map((c): TokenValue => ({ system: c.system, code: c.code! })),
    },
  ],
});
