/**
 * Who and what a lab message is about (docs/lab-ingestion.md): the patient (an identifier of
 * PID-3 / Observation.subject.identifier, else exact name and birth date; no match or several is
 * a failure, never a guess), the practitioner the result is for, and the open lab order it
 * fulfils. Matching is the server's own lookup, whatever the sender may read.
 */
import type { Knex } from 'knex';
import type { FhirContext } from '../fhir/context.js';
import { resourceDefinition } from '../fhir/registry.js';
import { matchingIds } from '../fhir/search/execute.js';
import { PermanentJobError } from '../workers/jobs.js';
import { operationOutcome } from '../fhir/outcome.js';

export interface PatientKeys {
  identifiers: { value: string; system?: string; type?: string }[];
  family?: string;
  given?: string[];
  birthDate?: string;
}

/** A permanent failure of matching, with an OperationOutcome at `expression`. */
export function matchFailure(message: string, expression: string): PermanentJobError {
  return new PermanentJobError(message, operationOutcome([{ severity: 'error', code: 'not-found', diagnostics: message, expression: [expression] }]));
}

async function search(ctx: FhirContext, type: string, query: Record<string, string[]>): Promise<string[]> {
  const def = resourceDefinition(type)!;
  return matchingIds({ ...ctx, strict: true }, def, query, 2, ctx.access.scope('read'));
}

const tokenValue = (v: string): string => v.replace(/[\\,|$]/g, (c) => `\\${c}`);

/**
 * The one patient a message names. Identifiers are tried in order (medical record numbers, MR or MRN, first):
 * an HMS Patient id, else Patient.identifier (any system: assigning authorities of HL7 v2 are not
 * FHIR systems). When no identifier matches, the exact family and given name with the birth date.
 */
export async function matchPatient(ctx: FhirContext, keys: PatientKeys, where: string): Promise<string> {
  const isMrn = (type?: string) => type === 'MR' || type === 'MRN';
  const ordered = [...keys.identifiers].sort((a, b) => Number(isMrn(b.type)) - Number(isMrn(a.type)));
  for (const ident of ordered) {
    const value = ident.value.trim();
    if (!value) continue;
    if (/^[A-Za-z0-9\-.]{1,36}$/.test(value)) {
      const byId = await search(ctx, 'Patient', { _id: [value] });
      if (byId.length === 1) return byId[0]!;
    }
    const matches = await search(ctx, 'Patient', { identifier: [ident.system ? `${tokenValue(ident.system)}|${tokenValue(value)}` : tokenValue(value)] });
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw matchFailure(`More than one patient has the identifier given in ${where}: the message names no single patient`, where);
    if (ident.system) {
      const any = await search(ctx, 'Patient', { identifier: [tokenValue(value)] });
      if (any.length === 1) return any[0]!;
      if (any.length > 1) throw matchFailure(`More than one patient has the identifier given in ${where}: the message names no single patient`, where);
    }
  }
  const given = keys.given?.[0];
  if (keys.family && given && keys.birthDate) {
    const matches = await search(ctx, 'Patient', { 'family:exact': [keys.family], 'given:exact': [given], birthdate: [keys.birthDate] });
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw matchFailure('Several patients match the message\'s name and birth date and none its identifiers: it names no single patient', where);
  }
  throw matchFailure(`No patient matches the identifiers of ${where}${keys.family && keys.birthDate ? ', nor the name and birth date' : ''}`, where);
}

/** The practitioner an ordering provider identifier names (one match), if any. */
export async function matchPractitioner(ctx: FhirContext, id: string | undefined): Promise<string | undefined> {
  if (!id?.trim()) return undefined;
  const matches = await search(ctx, 'Practitioner', { identifier: [tokenValue(id.trim())] });
  return matches.length === 1 ? matches[0] : undefined;
}

/** The patient's primary doctor (patients.primary_doctor_id), to whom an unsolicited result goes. */
export async function primaryDoctor(db: Knex, patientId: string): Promise<string | undefined> {
  const r = await db('patients').where({ id: patientId }).first('primary_doctor_id');
  return r?.primary_doctor_id ? String(r.primary_doctor_id) : undefined;
}

/**
 * The oldest open order (lab_results with status ordered) of the patient for one of the test
 * codes, not yet taken by this message, locked; returned as its Observation's id.
 */
export async function openOrder(trx: Knex, patientId: string, codes: string[], taken: Set<string>): Promise<{ labResultId: string; observationId: string } | undefined> {
  const wanted = codes.filter(Boolean);
  if (!wanted.length) return undefined;
  const q = trx('lab_results as l').join('observations as o', function () { this.on('o.source_id', '=', 'l.id').andOnVal('o.source', '=', 'lab'); })
    .where('l.patient_id', patientId).andWhere('l.status', 'ordered').whereIn('l.test_code', wanted)
    .orderBy('l.ordered_date').orderBy('l.id').select('l.id as lab', 'o.id as obs').limit(10).forUpdate();
  if (taken.size) q.whereNotIn('l.id', [...taken]);
  const r = (await q)[0] as { lab: string; obs: string } | undefined;
  return r ? { labResultId: String(r.lab), observationId: String(r.obs) } : undefined;
}
