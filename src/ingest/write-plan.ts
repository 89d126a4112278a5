/**
 * What a lab message writes, whatever its format: Observations (each fulfilling an open order of
 * the patient for its code when there is one, else created) and DiagnosticReports naming them,
 * all through the API's write path in the caller's transaction, so versions, history, search
 * index, access rules and audit rows are the API's own. Critical results get a lab_alerts row.
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { FhirContext } from '../fhir/context.js';
import { createResource, readResource, updateResource } from '../fhir/interactions.js';
import type { Resource } from '../fhir/types.js';
import { openOrder } from './matching.js';
import type { MessageResult } from './messages.js';

export interface PlannedObservation {
  /** How the message's reports name it (a fullUrl, or the report's index). */
  key: string;
  resource: Resource;
  patientId: string;
  /** Test codes an open order may carry for it (lab_results.test_code). */
  codes: string[];
}

export interface PlannedReport {
  resource: Resource;
  /** Keys of its Observations in this message, in order (appended to any result it names already). */
  results: string[];
}

export interface WritePlan {
  observations: PlannedObservation[];
  reports: PlannedReport[];
}

/** Interpretation codes that make a result critical (lab_results.abnormal_flag critical). */
const CRITICAL = new Set(['HH', 'LL', 'AA', 'HU', 'LU', '<', '>']);

/** The critical interpretation of an Observation (a v3 code), if any. */
export function criticalFlag(o: Resource): string | undefined {
  const interp = (o.interpretation as { coding?: { code?: string }[] }[] | undefined) ?? [];
  for (const c of interp.flatMap((i) => i.coding ?? [])) if (c.code && CRITICAL.has(c.code)) return c.code;
  return undefined;
}

/** A resource as JSON would carry it (no undefined members). */
const asJson = (r: Resource): Resource => JSON.parse(JSON.stringify(r)) as Resource;

/** Writes a plan; returns the ids written, by type (also which orders were fulfilled). */
export async function writePlan(ctx: FhirContext, server: FhirContext, trx: Knex.Transaction, messageId: string, plan: WritePlan): Promise<MessageResult> {
  const result: MessageResult = { Observation: [], DiagnosticReport: [], fulfilledOrders: [], alerts: [] };
  const idOf = new Map<string, string>();
  const taken = new Set<string>();
  for (const p of plan.observations) {
    const order = await openOrder(trx, p.patientId, p.codes, taken);
    let id: string;
    if (order) {
      taken.add(order.labResultId);
      const current = await readResource(server, 'Observation', order.observationId);
      // the order's own links stay: its encounter, what it was based on, who ordered it (when the message names no one)
      const merged: Resource = { ...p.resource, id: order.observationId };
      for (const k of ['encounter', 'basedOn', 'identifier'] as const) if (current[k] !== undefined && merged[k] === undefined) merged[k] = current[k];
      if (merged.performer === undefined && current.performer !== undefined) merged.performer = current.performer;
      await updateResource(ctx, 'Observation', order.observationId, asJson(merged));
      id = order.observationId;
      result.fulfilledOrders!.push(`ServiceRequest/${order.labResultId}`);
    } else {
      id = String((await createResource(ctx, 'Observation', asJson(p.resource))).resource.id);
    }
    idOf.set(p.key, id);
    result.Observation!.push(id);
    const flag = criticalFlag(p.resource);
    if (flag) {
      const alertId = uuidv7();
      await trx('lab_alerts').insert({ id: alertId, patient_id: p.patientId, observation_id: id, message_id: messageId, code: codeOf(p.resource), flag });
      result.alerts!.push(alertId);
    }
  }
  for (const r of plan.reports) {
    const refs = r.results.map((k) => idOf.get(k)).filter((x): x is string => x !== undefined).map((id) => ({ reference: `Observation/${id}` }));
    const kept = (r.resource.result as unknown[] | undefined) ?? [];
    const report: Resource = { ...r.resource, ...(refs.length || kept.length ? { result: [...kept, ...refs] } : {}) };
    result.DiagnosticReport!.push(String((await createResource(ctx, 'DiagnosticReport', asJson(report))).resource.id));
  }
  for (const k of Object.keys(result)) if (result[k]!.length === 0) delete result[k];
  return result;
}

function codeOf(o: Resource): string | null {
  const c = (o.code as { coding?: { code?: string }[] } | undefined)?.coding?.[0]?.code;
  return c ? c.slice(0, 100) : null;
}
