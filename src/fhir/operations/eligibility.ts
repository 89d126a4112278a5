/**
 * Insurers' eligibility checks: a CoverageEligibilityRequest is answered with a
 * CoverageEligibilityResponse computed from the insurance table (the coverages of the patient in
 * force on the date of service, primary before secondary, with copay, deductible, deductible met and
 * pre-authorisation). Request and response are generic-store resources, written in one transaction.
 * https://hl7.org/fhir/R4/coverageeligibilityrequest.html docs/eligibility.md
 */
import type { FhirContext } from '../context.js';
import type { Resource, Reference, CodeableConcept } from '../types.js';
import type { WriteEffectsContext } from '../registry.js';
import { Access } from '../access.js';
import { badRequest, unprocessable } from '../outcome.js';
import { createResource } from '../interactions.js';
import { definitionOf, present } from '../resource-view.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import { matchingIds } from '../search/execute.js';
import { inTransaction } from '../../db/transactions.js';
import { currentQuery, readCurrent, type Row } from '../../db/resource-repository.js';
import { HMS_CANONICAL, referenceId } from '../../mappers/datatypes.js';
import { ORDERS } from '../../mappers/coverage-mapper.js';
import { CURRENCY } from '../../mappers/invoice-mapper.js';

export const REQUEST = 'CoverageEligibilityRequest';
export const RESPONSE = 'CoverageEligibilityResponse';
const BENEFIT_TYPE = 'http://terminology.hl7.org/CodeSystem/benefit-type';
const BENEFIT_CATEGORY = 'http://terminology.hl7.org/CodeSystem/ex-benefitcategory';
export const ELIGIBILITY_ERROR = `${HMS_CANONICAL}/CodeSystem/eligibility-error`;

interface RequestItem { category?: CodeableConcept; productOrService?: CodeableConcept; modifier?: CodeableConcept[]; provider?: Reference }
interface EligibilityRequest extends Resource {
  purpose?: string[]; patient?: Reference; servicedDate?: string; servicedPeriod?: { start?: string; end?: string };
  provider?: Reference; insurer?: Reference; insurance?: { coverage?: Reference }[]; item?: RequestItem[];
}

/** The days asked about, YYYY-MM-DD: a partial date is every day it covers; an open period has no last day. */
export interface ServiceDays { first: string; last?: string }

function lastDayOf(date: string): string {
  const [y, m, d] = date.slice(0, 10).split('-');
  if (d) return `${y}-${m}-${d}`;
  const month = m ? Number(m) : 12;
  return new Date(Date.UTC(Number(y), month, 0)).toISOString().slice(0, 10);
}
const firstDayOf = (date: string): string => { const [y, m = '01', d = '01'] = date.slice(0, 10).split('-'); return `${y}-${m}-${d}`; };

/** The service days of a request (default: today, UTC). 422 for dates that do not exist or a period that ends before it starts. */
export function serviceDays(req: EligibilityRequest, today: string): ServiceDays {
  if (req.servicedDate) {
    checkRealDate(req.servicedDate, `${REQUEST}.servicedDate`);
    return { first: firstDayOf(req.servicedDate), last: lastDayOf(req.servicedDate) };
  }
  const p = req.servicedPeriod;
  if (p) {
    if (!p.start) throw unprocessable(`${REQUEST}.servicedPeriod needs a start`, `${REQUEST}.servicedPeriod.start`, 'required');
    checkRealDate(p.start, `${REQUEST}.servicedPeriod.start`);
    checkRealDate(p.end, `${REQUEST}.servicedPeriod.end`);
    checkPeriod(p.start, p.end, `${REQUEST}.servicedPeriod`);
    return { first: firstDayOf(p.start), ...(p.end ? { last: lastDayOf(p.end) } : {}) };
  }
  return { first: today, last: today };
}

/** Whether an insurance row is in force on every day asked about (status active, effective to expiration inclusive). */
export function inForce(row: Row, days: ServiceDays): boolean {
  if (row.status !== 'active' || String(row.effective_date) > days.first) return false;
  const end = row.expiration_date === null || row.expiration_date === undefined ? undefined : String(row.expiration_date);
  return end === undefined || (days.last !== undefined && days.last <= end);
}

const money = (v: unknown) => ({ value: Number(v), currency: CURRENCY });
const present0 = (v: unknown): boolean => v !== null && v !== undefined;

/** The benefits of one requested item under a coverage row: the plan's copay and deductible (allowed, used = met). */
function benefitsOf(row: Row): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if (present0(row.copay_amount)) out.push({ type: { coding: [{ system: BENEFIT_TYPE, code: 'copay', display: 'Copayment per service' }] }, allowedMoney: money(row.copay_amount) });
  if (present0(row.deductible_amount) || Number(row.deductible_met ?? 0) > 0) {
    out.push({
      type: { coding: [{ system: BENEFIT_TYPE, code: 'deductible', display: 'Deductible' }] },
      ...(present0(row.deductible_amount) ? { allowedMoney: money(row.deductible_amount) } : {}),
      usedMoney: money(row.deductible_met ?? 0),
    });
  }
  return out;
}

/** The items asked about: each as category or product (ces-1: one, not both); none asked: the plan as a whole. */
function requestedItems(req: EligibilityRequest): RequestItem[] {
  if (!req.item?.length) return [{ category: { coding: [{ system: BENEFIT_CATEGORY, code: '30', display: 'Health Benefit Plan Coverage' }] } }];
  return req.item.map((it, i) => {
    if (!it.category && !it.productOrService) throw unprocessable(`${REQUEST}.item[${i}] needs a category or a productOrService`, `${REQUEST}.item[${i}]`, 'required');
    return {
      ...(it.productOrService ? { productOrService: it.productOrService } : { category: it.category }),
      ...(it.modifier ? { modifier: it.modifier } : {}), ...(it.provider ? { provider: it.provider } : {}),
    };
  });
}

const rank = (row: Row): number => ORDERS.indexOf(String(row.coverage_type) as never);

/**
 * The response to a request given the patient's insurance rows (pure). Coverages in force come
 * first, each group in the table's order (primary, secondary, tertiary); items (benefits and
 * pre-authorisation) are given for coverages in force when the purpose asks for benefits or
 * authorisation requirements. No coverage in force (none on file, or none on the date): outcome
 * error with an error entry (no-coverage, not-in-force).
 */
export function eligibilityResponse(req: EligibilityRequest & { id: string }, rows: Row[], now: Date): Resource {
  const today = now.toISOString().slice(0, 10);
  const days = serviceDays(req, today);
  const purpose = req.purpose ?? [];
  const wantsItems = purpose.includes('benefits') || purpose.includes('auth-requirements');
  const items = wantsItems ? requestedItems(req) : [];
  const rated = rows.map((row) => ({ row, inforce: inForce(row, days) }))
    .sort((a, b) => Number(b.inforce) - Number(a.inforce) || rank(a.row) - rank(b.row));
  const insurance = rated.map(({ row, inforce }) => ({
    coverage: { reference: `Coverage/${String(row.id)}`, display: `${String(row.insurance_company)} (${String(row.coverage_type)})` },
    inforce,
    benefitPeriod: { start: String(row.effective_date), ...(present0(row.expiration_date) ? { end: String(row.expiration_date) } : {}) },
    ...(inforce && items.length ? {
      item: items.map((it) => ({
        ...it,
        ...(purpose.includes('benefits') ? { benefit: benefitsOf(row) } : {}),
        authorizationRequired: Boolean(Number(row.pre_auth_required ?? 0)),
      })).map((it) => (it.benefit?.length === 0 ? (({ benefit: _b, ...rest }) => rest)(it) : it)),
    } : {}),
  }));
  const on = days.last === days.first ? `on ${days.first}` : `from ${days.first}${days.last ? ` to ${days.last}` : ' on'}`;
  const active = rated.filter((r) => r.inforce);
  const disposition = rows.length === 0 ? 'No coverage of the patient is on file'
    : active.length === 0 ? `No coverage in force ${on} (${rows.length} on file)`
      : `In force ${on}: ${active.map((r) => `${String(r.row.coverage_type)} ${String(r.row.insurance_company)}`).join(', ')}`;
  return {
    resourceType: RESPONSE,
    status: 'active',
    purpose,
    patient: req.patient,
    ...(req.servicedPeriod ? { servicedPeriod: req.servicedPeriod } : { servicedDate: req.servicedDate ?? today }),
    created: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...(req.provider ? { requestor: req.provider } : {}),
    request: { reference: `${REQUEST}/${req.id}` },
    outcome: active.length === 0 ? 'error' : 'complete',
    disposition,
    insurer: req.insurer,
    ...(insurance.length ? { insurance } : {}),
    ...(active.length === 0 ? { error: [{ code: { coding: [rows.length === 0
      ? { system: ELIGIBILITY_ERROR, code: 'no-coverage', display: 'No coverage of the patient on file' }
      : { system: ELIGIBILITY_ERROR, code: 'not-in-force', display: 'No coverage of the patient in force on the date of service' }] } }] } : {}),
  };
}

/** The server itself: the response is its answer, written under its authority (audited as the caller's request). */
const SERVER = new Access();

/** The stored response of a request, if it has been answered (inside ctx.db, the write's transaction). */
async function storedResponse(ctx: FhirContext, requestId: string): Promise<Resource | undefined> {
  const def = definitionOf(RESPONSE);
  const [id] = await matchingIds({ ...ctx, strict: true }, def, { request: [`${REQUEST}/${requestId}`] }, 1, SERVER.scope('read'));
  const stored = id ? await readCurrent(ctx.db, def, id) : undefined;
  return stored ? present(def, stored) : undefined;
}

/**
 * Answers a stored request once: its response if it has one, else the one computed and stored now.
 * ctx.db must be the transaction that wrote the request.
 */
export async function answerRequest(ctx: FhirContext, request: EligibilityRequest & { id: string }): Promise<Resource> {
  const server: FhirContext = { ...ctx, access: SERVER };
  const existing = await storedResponse(server, request.id);
  if (existing) return existing;
  const patientId = referenceId(request.patient, 'Patient');
  if (!patientId) throw unprocessable(`${REQUEST}.patient must refer to a stored Patient (Patient/<id>)`, `${REQUEST}.patient`, 'required');
  let rows = (await currentQuery(ctx.db, definitionOf('Coverage')).where('t.patient_id', patientId)) as Row[];
  const named = (request.insurance ?? []).map((i) => referenceId(i.coverage, 'Coverage'));
  if (named.length) {
    const bad = named.findIndex((id) => !id || !rows.some((r) => String(r.id) === id));
    if (bad >= 0) throw unprocessable(`${REQUEST}.insurance[${bad}].coverage is not a Coverage of the patient`, `${REQUEST}.insurance[${bad}].coverage`, 'business-rule');
    rows = rows.filter((r) => named.includes(String(r.id)));
  }
  return (await createResource(server, RESPONSE, eligibilityResponse(request, rows, new Date()))).resource;
}

/** The write effect of CoverageEligibilityRequest: a request is answered as it is created (an update does not ask again). */
export async function answerCreatedRequest(effects: WriteEffectsContext): Promise<void> {
  if (effects.before || !effects.after) return;
  const request = JSON.parse(String(effects.after.resource)) as EligibilityRequest;
  await answerRequest(effects.fhir as FhirContext, { ...request, id: effects.id });
}

/** The request a $submit body carries: the resource itself, or Parameters with it as `resource`. */
function requestOf(body: unknown): unknown {
  const b = body as { resourceType?: unknown; parameter?: { name?: string; resource?: unknown }[] } | null;
  const inner = b?.resourceType === 'Parameters' ? b.parameter?.find((p) => p.name === 'resource')?.resource : body;
  if ((inner as { resourceType?: unknown } | undefined)?.resourceType !== REQUEST) throw badRequest(`$submit expects a ${REQUEST} (or Parameters with it as parameter 'resource')`);
  return inner;
}

/**
 * CoverageEligibilityRequest/$submit: stores the request and its response in one transaction and
 * returns the response. Needs create on the request and read on the response.
 */
export async function submitEligibility(ctx: FhirContext, body: unknown): Promise<Resource> {
  ctx.access.require(definitionOf(REQUEST), 'create');
  const readRule = ctx.access.require(definitionOf(RESPONSE), 'read');
  const pending: (() => Promise<void>)[] = [];
  const response = await inTransaction(ctx.db, async (trx) => {
    pending.length = 0;
    const inner: FhirContext = { ...ctx, db: trx, deferred: pending };
    const created = await createResource(inner, REQUEST, requestOf(body));
    return answerRequest(inner, created.resource as EligibilityRequest & { id: string });
  });
  if (ctx.deferred) ctx.deferred.push(...pending);
  else for (const fn of pending) await fn();
  return ctx.access.view(definitionOf(RESPONSE), readRule, response);
}
