/**
 * A small hospital for authorization tests: patients A and B, the principals of the issue's
 * matrix (admin, an assigned and an unassigned doctor and nurse, patients A and B, finance, a lab,
 * an insurer and a narrow-scoped client), and one resource of every type of each patient. Built
 * through the API (as admin) on the real database; assignment as docs/security.md defines it:
 * the doctor is A's primary doctor, the nurse a member of A's care team; B is assigned to nobody
 * among the principals (its doctor is not one of them).
 */
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import type { TestApp } from './app.js';
import { makePatient, unique } from './world.js';
import { startSession } from '../../src/auth/sessions.js';
import { clientKey, registerClient, signAssertion, tokenEndpoint, tokenForm, tokenRequest } from './smart.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const NOTES_EXTENSION = 'http://hms.example.org/fhir/StructureDefinition/encounter-notes';

export type PrincipalName =
  | 'admin' | 'assigned doctor' | 'unassigned doctor' | 'assigned nurse' | 'unassigned nurse' | 'patient A' | 'patient B' | 'finance'
  | 'lab client' | 'insurer client' | 'narrow client';

export interface Principal {
  name: PrincipalName;
  token: string;
  /** Users: the role; clients: undefined. */
  role?: 'admin' | 'doctor' | 'nurse' | 'patient' | 'finance';
  userId?: string;
  /** Clients: the granted scope. */
  scope?: string;
  /** Role patient: its own record. */
  patientId?: string;
  /** Clinicians: assigned to patient A. */
  assignedToA?: boolean;
}

export const SCOPES = {
  'lab client': 'system/Patient.rs system/ServiceRequest.rs system/Observation.cru system/DiagnosticReport.cru',
  'insurer client': 'system/Patient.rs system/Coverage.rs system/Invoice.rs',
  'narrow client': 'system/Observation.r',
} as const;

/** A far-future slot no other appointment of the doctor takes (the double-booking rule). */
function slot(): { start: string; end: string } {
  const day = 1 + Math.floor(Math.random() * 27);
  const minute = Math.floor(Math.random() * 600);
  const start = new Date(Date.UTC(2035 + Math.floor(Math.random() * 60), Math.floor(Math.random() * 12), day, 7, 0) + minute * 60_000);
  return { start: start.toISOString().replace('.000', ''), end: new Date(start.getTime() + 15 * 60_000).toISOString().replace('.000', '') };
}

/** Bodies of each kind of resource for a patient and its doctor. */
export const bodies = {
  Appointment: (patient: string, doctor: string): J => ({
    resourceType: 'Appointment', status: 'booked', ...slot(), description: 'Consultation about the cough', comment: 'bring results',
    participant: [{ actor: { reference: `Patient/${patient}` }, status: 'accepted' }, { actor: { reference: `Practitioner/${doctor}` }, status: 'accepted' }],
  }),
  Encounter: (patient: string, doctor: string): J => ({
    resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: { reference: `Patient/${patient}` }, participant: [{ individual: { reference: `Practitioner/${doctor}` } }],
    period: { start: '2024-03-01T10:00:00Z' }, reasonCode: [{ text: 'persistent cough' }],
    extension: [{ url: NOTES_EXTENSION, valueString: 'first notes' }],
  }),
  Condition: (patient: string, doctor: string): J => ({
    resourceType: 'Condition', subject: { reference: `Patient/${patient}` }, recorder: { reference: `Practitioner/${doctor}` }, onsetDateTime: '2024-03-01',
    code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'J45.909', display: 'Unspecified asthma' }] },
  }),
  MedicationRequest: (patient: string, doctor: string): J => ({
    resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${patient}` }, requester: { reference: `Practitioner/${doctor}` },
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '308182', display: 'Amoxicillin 250 MG Oral Capsule' }] },
    dosageInstruction: [{ doseAndRate: [{ doseQuantity: { value: 250, unit: 'mg', system: UCUM, code: 'mg' } }], timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd' } } }],
  }),
  'Observation (vital sign)': (patient: string, doctor: string): J => ({
    resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: CATEGORY, code: 'vital-signs' }] }],
    code: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }] }, subject: { reference: `Patient/${patient}` },
    performer: [{ reference: `Practitioner/${doctor}` }],
    effectiveDateTime: '2024-03-01T10:05:00Z', valueQuantity: { value: 72, unit: 'beats/minute', system: UCUM, code: '/min' },
  }),
  'Observation (laboratory)': (patient: string, doctor: string): J => ({
    resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: CATEGORY, code: 'laboratory' }] }],
    code: { coding: [{ system: LOINC, code: '15074-8', display: 'Glucose [Moles/volume] in Blood' }] }, subject: { reference: `Patient/${patient}` },
    performer: [{ reference: `Practitioner/${doctor}` }],
    effectiveDateTime: '2024-03-01T10:05:00Z', valueQuantity: { value: 6.3, unit: 'mmol/l', system: UCUM, code: 'mmol/L' },
  }),
  DiagnosticReport: (patient: string): J => ({
    resourceType: 'DiagnosticReport', status: 'final', code: { coding: [{ system: LOINC, code: '24323-8', display: 'Metabolic panel' }] },
    subject: { reference: `Patient/${patient}` }, effectiveDateTime: '2024-03-01T10:05:00Z', conclusion: 'normal',
  }),
  Invoice: (patient: string): J => ({
    resourceType: 'Invoice', status: 'issued', identifier: [{ system: 'urn:hms:test', value: `INV-${randomUUID()}` }], subject: { reference: `Patient/${patient}` },
    date: '2024-02-10', totalGross: { value: 150, currency: 'USD' },
  }),
  Coverage: (patient: string, _doctor: string, order = 1): J => ({
    resourceType: 'Coverage', status: 'active', identifier: [{ system: 'urn:hms:policy', value: `POL-${unique()}` }], beneficiary: { reference: `Patient/${patient}` },
    payor: [{ display: 'Insurer' }], relationship: { coding: [{ code: 'self' }] }, period: { start: '2024-01-01' }, order,
  }),
  CareTeam: (patient: string, doctor: string): J => ({
    resourceType: 'CareTeam', status: 'active', name: 'Team', subject: { reference: `Patient/${patient}` },
    participant: [{ member: { reference: `Practitioner/${doctor}` } }],
  }),
};

export interface World {
  h: TestApp;
  /** Patient ids. */
  A: string;
  B: string;
  /** The doctors of A (a principal) and of B (not one). */
  doctorA: string;
  doctorB: string;
  principals: Principal[];
  /** The resources of each kind of A and B (ids). */
  of: Record<string, { A: string; B: string }>;
  /** POST as admin; the created resource. */
  post(type: string, body: J): Promise<J>;
  inject(p: Principal | string, opts: { method: string; url: string; payload?: unknown }): Promise<LightMyRequestResponse>;
}

const ROLE_EXTENSION = 'http://hms.example.org/fhir/StructureDefinition/practitioner-role';

/** A doctor or nurse created through the API (so its version 1 is in the history), as admin. */
export async function makePractitioner(h: TestApp, role: 'doctor' | 'nurse' = 'doctor'): Promise<string> {
  const res = await h.fhir({
    method: 'POST', url: '/fhir/Practitioner',
    payload: {
      resourceType: 'Practitioner', name: [{ family: `Dr${unique()}` }], telecom: [{ system: 'email', value: `${role}-${unique()}@test.example.org` }],
      extension: [{ url: ROLE_EXTENSION, valueCode: role }],
    },
  });
  if (res.statusCode !== 201) throw new Error(`practitioner create failed ${res.statusCode}: ${res.body}`);
  return String(res.json().id);
}

async function userSession(h: TestApp, role: 'doctor' | 'nurse' | 'patient' | 'finance', extra: J = {}): Promise<{ id: string; token: string }> {
  const id = role === 'doctor' || role === 'nurse' ? await makePractitioner(h, role) : randomUUID();
  if (role === 'patient' || role === 'finance') {
    await h.db('users').insert({ id, email: `${role}-${unique()}@test.example.org`, password_hash: '!', name: `${role} ${unique()}`, role, ...extra });
  }
  return { id, token: await startSession(h.db, id, { ttlSeconds: 3600 }) };
}

/** A client registered through the admin API with `scope`, and a token from POST /auth/token. */
export async function clientToken(h: TestApp, scope: string, kind = 'lab'): Promise<{ clientId: string; token: string; scope: string }> {
  const key = await clientKey('ES384');
  const clientId = await registerClient(h, { kind, scope, jwks: { keys: [key.jwk] } });
  const res = await tokenRequest(h.app, tokenForm(await signAssertion(key, clientId, await tokenEndpoint(h.app)), scope));
  if (res.statusCode !== 200) throw new Error(`token failed: ${res.statusCode} ${res.body}`);
  return { clientId, token: res.json().access_token as string, scope: res.json().scope as string };
}

/** Builds the world on a test app. */
export async function buildWorld(h: TestApp): Promise<World> {
  const inject = (p: Principal | string, opts: { method: string; url: string; payload?: unknown }) => h.fhir({
    method: opts.method as 'GET', url: opts.url, token: typeof p === 'string' ? p : p.token,
    ...(opts.payload !== undefined ? { payload: opts.payload as J } : {}),
  });
  const post = async (type: string, body: J): Promise<J> => {
    const res = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: body });
    if (res.statusCode !== 201) throw new Error(`${type} create failed ${res.statusCode}: ${res.body}`);
    return res.json();
  };
  const doctorA = await userSession(h, 'doctor');
  const doctorB = await makePractitioner(h, 'doctor');
  const A = await makePatient(h, `MatrixA${unique()}`, { generalPractitioner: [{ reference: `Practitioner/${doctorA.id}` }] });
  const B = await makePatient(h, `MatrixB${unique()}`, { generalPractitioner: [{ reference: `Practitioner/${doctorB}` }] });
  const nurseA = await userSession(h, 'nurse');
  await post('CareTeam', { resourceType: 'CareTeam', status: 'active', subject: { reference: `Patient/${A}` }, participant: [{ member: { reference: `Practitioner/${nurseA.id}` } }] });
  const doctorU = await userSession(h, 'doctor');
  const nurseU = await userSession(h, 'nurse');
  const patientA = await userSession(h, 'patient');
  const patientB = await userSession(h, 'patient');
  await h.db('patients').where({ id: A }).update({ user_id: patientA.id });
  await h.db('patients').where({ id: B }).update({ user_id: patientB.id });
  const finance = await userSession(h, 'finance');
  const principals: Principal[] = [
    { name: 'admin', token: h.token, role: 'admin', userId: h.userId },
    { name: 'assigned doctor', token: doctorA.token, role: 'doctor', userId: doctorA.id, assignedToA: true },
    { name: 'unassigned doctor', token: doctorU.token, role: 'doctor', userId: doctorU.id },
    { name: 'assigned nurse', token: nurseA.token, role: 'nurse', userId: nurseA.id, assignedToA: true },
    { name: 'unassigned nurse', token: nurseU.token, role: 'nurse', userId: nurseU.id },
    { name: 'patient A', token: patientA.token, role: 'patient', userId: patientA.id, patientId: A },
    { name: 'patient B', token: patientB.token, role: 'patient', userId: patientB.id, patientId: B },
    { name: 'finance', token: finance.token, role: 'finance', userId: finance.id },
  ];
  for (const name of ['lab client', 'insurer client', 'narrow client'] as const) {
    const c = await clientToken(h, SCOPES[name], name === 'insurer client' ? 'insurer' : 'lab');
    principals.push({ name, token: c.token, scope: c.scope });
  }

  const of: Record<string, { A: string; B: string }> = {
    Patient: { A, B },
    Practitioner: { A: doctorA.id, B: doctorB },
    PractitionerRole: { A: doctorA.id, B: doctorB },
  };
  for (const [kind, make] of Object.entries(bodies)) {
    const type = kind.split(' ')[0]!;
    const ids = { A: '', B: '' };
    for (const [key, patient, doctor] of [['A', A, doctorA.id], ['B', B, doctorB]] as const) ids[key] = String((await post(type, make(patient, doctor))).id);
    of[kind] = ids;
  }
  // the lab order behind each laboratory Observation
  const labOrder = async (obs: string) => String((await h.db('observations').where({ id: obs }).first('source_id')).source_id);
  of.ServiceRequest = { A: await labOrder(of['Observation (laboratory)']!.A), B: await labOrder(of['Observation (laboratory)']!.B) };
  // a security log row about each patient (an admin read of its record)
  const auditRow = async (patient: string) => {
    await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}` });
    const row = await h.db('security_logs').where({ patient_id: patient, action: 'read' }).orderBy('seq', 'desc').first('id');
    return String(row.id);
  };
  of.AuditEvent = { A: await auditRow(A), B: await auditRow(B) };
  return { h, A, B, doctorA: doctorA.id, doctorB, principals, of, post, inject };
}
