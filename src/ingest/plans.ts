/**
 * From a stored lab message to its write plan: an HL7 v2 ORU^R01 (each OBR a DiagnosticReport,
 * each OBX an Observation, src/ingest/lab-fhir.ts) or a FHIR Bundle / Observation as sent, with
 * the patient matched and the practitioner filled in where the sender named none.
 */
import type { Knex } from 'knex';
import type { FhirContext } from '../fhir/context.js';
import type { Resource } from '../fhir/types.js';
import { parseLabMessage } from './hl7.js';
import { labReportToFhir } from './lab-fhir.js';
import { matchFailure, matchPatient, matchPractitioner, primaryDoctor } from './matching.js';
import type { PlannedObservation, PlannedReport, WritePlan } from './write-plan.js';

const codesOf = (r: Resource): string[] =>
  ((r.code as { coding?: { code?: string }[] } | undefined)?.coding ?? []).map((c) => c.code ?? '').filter(Boolean);

/** The practitioner a result is for: the one the message names, else the patient's primary doctor. */
async function performerFor(server: FhirContext, db: Knex, patientId: string, named?: string): Promise<string | undefined> {
  return (await matchPractitioner(server, named)) ?? (await primaryDoctor(db, patientId));
}

export async function hl7Plan(server: FhirContext, db: Knex, body: string): Promise<WritePlan> {
  const msg = parseLabMessage(body);
  const patientId = await matchPatient(server, msg.patient, 'PID-3');
  const plan: WritePlan = { observations: [], reports: [] };
  for (const [i, report] of msg.reports.entries()) {
    const performer = await performerFor(server, db, patientId, report.orderingProvider?.id);
    const mapped = labReportToFhir(report, msg, { patient: `Patient/${patientId}`, performer: performer ? `Practitioner/${performer}` : undefined });
    const keys = mapped.observations.map((o, j) => {
      const key = `${i}:${j}`;
      plan.observations.push({ key, resource: o as Resource, patientId, codes: codesOf(o as Resource) });
      return key;
    });
    if (mapped.report) plan.reports.push({ resource: { ...(mapped.report as Resource), result: undefined }, results: keys });
  }
  return plan;
}

/** The patient a FHIR resource's subject names: a Patient reference, or a logical reference by identifier. */
async function subjectPatient(server: FhirContext, r: Resource, where: string): Promise<string> {
  const subject = r.subject as { reference?: string; identifier?: { system?: string; value?: string } } | undefined;
  const ref = subject?.reference && /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(subject.reference);
  if (ref) return matchPatient(server, { identifiers: [{ value: ref[1]! }] }, `${where}.subject`);
  if (subject?.identifier?.value) return matchPatient(server, { identifiers: [{ value: subject.identifier.value, system: subject.identifier.system }] }, `${where}.subject.identifier`);
  throw matchFailure(`${where}.subject must name the patient: a Patient reference or an identifier`, `${where}.subject`);
}

/**
 * The fullUrl of the Bundle entry a reference names: the reference itself (urn:uuid:, absolute),
 * or a relative one resolved against the referring entry's base (https://hl7.org/fhir/R4/bundle.html#references).
 */
function entryKey(reference: string, referrer: string | undefined, keys: Set<string>): string | undefined {
  if (keys.has(reference)) return reference;
  const base = referrer && /^(https?:\/\/.*\/)[A-Za-z]+\/[^/]+$/.exec(referrer)?.[1];
  return base && keys.has(base + reference) ? base + reference : undefined;
}

export async function fhirPlan(server: FhirContext, db: Knex, body: string): Promise<WritePlan> {
  const parsed = JSON.parse(body) as Resource & { entry?: { fullUrl?: string; resource: Resource }[] };
  const entries = parsed.resourceType === 'Bundle' ? (parsed.entry ?? []).map((e, i) => ({ ...e, where: `Bundle.entry[${i}].resource` })) : [{ resource: parsed, fullUrl: undefined, where: 'Observation' }];
  const plan: WritePlan = { observations: [], reports: [] };
  const keys = new Set(entries.map((e) => e.fullUrl).filter((u): u is string => !!u));
  for (const [i, e] of entries.entries()) {
    const { id: _id, meta: _meta, ...resource } = e.resource;
    const patientId = await subjectPatient(server, resource as Resource, e.where);
    resource.subject = { reference: `Patient/${patientId}` };
    if (resource.resourceType === 'Observation') {
      // lab_results.ordered_by is a Practitioner: without one named, the patient's primary doctor
      const performers = (resource.performer as { reference?: string }[] | undefined) ?? [];
      if (!performers.some((p) => /^Practitioner\//.test(p.reference ?? ''))) {
        const doctor = await primaryDoctor(db, patientId);
        if (doctor) resource.performer = [...performers, { reference: `Practitioner/${doctor}` }];
      }
      plan.observations.push({ key: e.fullUrl ?? `#${i}`, resource: resource as Resource, patientId, codes: codesOf(resource as Resource) });
    } else {
      const results = ((resource.result as { reference?: string }[] | undefined) ?? []);
      const key = (r: { reference?: string }) => (r.reference ? entryKey(r.reference, e.fullUrl, keys) : undefined);
      const inBundle = results.map(key).filter((k): k is string => k !== undefined);
      const rest = results.filter((r) => key(r) === undefined);
      const report: PlannedReport = { resource: { ...(resource as Resource), result: rest.length ? rest : undefined }, results: inBundle };
      plan.reports.push(report);
    }
  }
  return plan;
}

export type { PlannedObservation };
