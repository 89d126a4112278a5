/**
 * Lab results pushed as FHIR over HTTP (POST /ingest/lab-results), processed by the lab-ingest
 * processor run directly: patient matching, open orders, DiagnosticReports, critical alerts,
 * resends, refusals, access and audit. HL7 v2 messages: lab-ingest-hl7.test.ts; real workers:
 * jobs-bullmq.test.ts.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testApp, type TestApp } from '../helpers/app.js';
import { clientToken, makePractitioner, SCOPES } from '../helpers/access-world.js';
import { unique } from '../helpers/world.js';
import { dropQueuesAtTeardown, processMessage, testPrefix } from '../helpers/jobs.js';

const LOINC = 'http://loinc.org';
const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'r4');
const MRN = 'http://hospital.example.org/mrn';

interface Setup { h: TestApp; lab: { clientId: string; token: string }; doctor: string; patient: string; mrn: string }

async function setup(): Promise<Setup> {
  const h = await testApp(t, { HMS_QUEUE_PREFIX: testPrefix() });
  dropQueuesAtTeardown(t, h);
  const doctor = await makePractitioner(h);
  const mrn = `MRN-${unique()}`;
  const res = await h.fhir({
    method: 'POST', url: '/fhir/Patient',
    payload: { resourceType: 'Patient', identifier: [{ system: MRN, value: mrn }], name: [{ family: `Lab${unique()}`, given: ['Ada'] }], gender: 'female', birthDate: '1961-06-15', generalPractitioner: [{ reference: `Practitioner/${doctor}` }] },
  });
  t.equal(res.statusCode, 201, res.body);
  const lab = await clientToken(h, SCOPES['lab client']);
  return { h, lab, doctor, patient: res.json().id, mrn };
}

const glucose = (subject: Record<string, unknown>, value = 182, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation', status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  code: { coding: [{ system: LOINC, code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' }] },
  subject, effectiveDateTime: '2026-11-30T08:00:00Z', valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' }, ...extra,
});

const post = (s: Setup, payload: unknown, token = s.lab.token, contentType = 'application/fhir+json') =>
  s.h.fhir({ method: 'POST', url: '/ingest/lab-results', token, headers: { 'content-type': contentType }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });

t.test('an Observation is stored, answered 202, processed once, and readable with what it wrote', async (t) => {
  const s = await setup();
  const res = await post(s, glucose({ identifier: { system: MRN, value: s.mrn } }));
  t.equal(res.statusCode, 202, res.body);
  const id = res.json().id as string;
  t.equal(res.headers.location, `/ingest/messages/${id}`);
  t.equal(res.json().status, 'queued');
  const status = await processMessage(s.h, id, s.lab.token);
  t.equal(status.status, 'done', JSON.stringify(status));
  const [obsId] = (status.result as Record<string, string[]>).Observation!;
  const obs = (await s.h.fhir({ method: 'GET', url: `/fhir/Observation/${obsId}` })).json();
  t.equal(obs.subject.reference, `Patient/${s.patient}`, 'matched by identifier');
  t.equal(obs.valueQuantity.value, 182);
  t.same(obs.performer, [{ reference: `Practitioner/${s.doctor}` }], "the patient's primary doctor receives an unsolicited result");
  const rows = await s.h.db('security_logs').where({ client_id: s.lab.clientId, action: 'create', resource_id: obsId });
  t.equal(rows.length, 1, 'the write is audited as the lab client');
  t.equal(rows[0].patient_id, s.patient);

  // run again (a duplicate job): nothing more is written
  const again = await processMessage(s.h, id, s.lab.token);
  t.same(again.result, status.result);
  t.equal(Number((await s.h.db('observations').where({ patient_id: s.patient }).count({ n: '*' }))[0]!.n), 1);

  // the same message sent again answers with the first
  const resend = await post(s, glucose({ identifier: { system: MRN, value: s.mrn } }));
  t.equal(resend.statusCode, 200);
  t.equal(resend.json().id, id);
  t.equal(resend.json().status, 'done');
});

t.test('a Bundle of Observations and a DiagnosticReport: references by urn:uuid become the new ids', async (t) => {
  const s = await setup();
  const subject = { reference: `Patient/${s.patient}` };
  const bundle = {
    resourceType: 'Bundle', type: 'collection', identifier: { system: 'urn:lab', value: `B-${unique()}` },
    entry: [
      { fullUrl: 'urn:uuid:6b1a4f3e-0000-4000-8000-000000000001', resource: glucose(subject, 95) },
      { fullUrl: 'urn:uuid:6b1a4f3e-0000-4000-8000-000000000002', resource: { ...glucose(subject, 5.4), code: { coding: [{ system: LOINC, code: '2823-3', display: 'Potassium' }] }, valueQuantity: { value: 5.4, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' } } },
      {
        fullUrl: 'urn:uuid:6b1a4f3e-0000-4000-8000-000000000003',
        resource: {
          resourceType: 'DiagnosticReport', status: 'final', code: { coding: [{ system: LOINC, code: '24323-8', display: 'Comprehensive metabolic panel' }] }, subject,
          result: [{ reference: 'urn:uuid:6b1a4f3e-0000-4000-8000-000000000001' }, { reference: 'urn:uuid:6b1a4f3e-0000-4000-8000-000000000002' }],
        },
      },
    ],
  };
  const res = await post(s, bundle);
  t.equal(res.statusCode, 202, res.body);
  const status = await processMessage(s.h, res.json().id, s.lab.token);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const result = status.result as Record<string, string[]>;
  t.equal(result.Observation!.length, 2);
  const report = (await s.h.fhir({ method: 'GET', url: `/fhir/DiagnosticReport/${result.DiagnosticReport![0]}` })).json();
  t.same(report.result.map((r: { reference: string }) => r.reference), result.Observation!.map((id) => `Observation/${id}`));
});

t.test('an open order of the patient for the code is fulfilled, not duplicated', async (t) => {
  const s = await setup();
  const order = await s.h.fhir({
    method: 'POST', url: '/fhir/Observation',
    payload: { resourceType: 'Observation', status: 'registered', code: { coding: [{ system: LOINC, code: '2345-7', display: 'Glucose' }] }, subject: { reference: `Patient/${s.patient}` }, performer: [{ reference: `Practitioner/${s.doctor}` }] },
  });
  t.equal(order.statusCode, 201, order.body);
  const orderId = order.json().id as string;
  const res = await post(s, glucose({ reference: `Patient/${s.patient}` }, 140));
  const status = await processMessage(s.h, res.json().id, s.lab.token);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  t.same((status.result as Record<string, string[]>).Observation, [orderId], 'the order itself carries the result');
  const obs = (await s.h.fhir({ method: 'GET', url: `/fhir/Observation/${orderId}` })).json();
  t.equal(obs.status, 'final');
  t.equal(obs.meta.versionId, '2');
  t.equal(obs.valueQuantity.value, 140);
  const lab = await s.h.db('lab_results').where({ patient_id: s.patient });
  t.equal(lab.length, 1);
  t.equal(lab[0].status, 'completed');
});

t.test('a critical result makes an alert row', async (t) => {
  const s = await setup();
  const interpretation = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'HH' }] }];
  const res = await post(s, glucose({ reference: `Patient/${s.patient}` }, 600, { interpretation }));
  const status = await processMessage(s.h, res.json().id, s.lab.token);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const alerts = await s.h.db('lab_alerts').where({ patient_id: s.patient });
  t.equal(alerts.length, 1);
  t.equal(alerts[0].flag, 'HH');
  t.equal(alerts[0].observation_id, (status.result as Record<string, string[]>).Observation![0]);
  const lab = await s.h.db('lab_results').where({ patient_id: s.patient }).first();
  t.equal(lab.abnormal_flag, 'critical');
});

t.test('a message naming no single patient fails alone, with its outcome and no writes', async (t) => {
  const s = await setup();
  const bad = await post(s, glucose({ identifier: { system: MRN, value: 'nobody' } }));
  const good = await post(s, glucose({ reference: `Patient/${s.patient}` }, 101));
  const badStatus = await processMessage(s.h, bad.json().id, s.lab.token);
  t.equal(badStatus.status, 'failed');
  t.match(JSON.stringify(badStatus.outcome), /No patient matches/);
  t.equal(badStatus.result, undefined);
  const goodStatus = await processMessage(s.h, good.json().id, s.lab.token);
  t.equal(goodStatus.status, 'done');
  // an Observation the write path refuses (a vital sign out of range is not the case here: an effective period ending before it starts)
  const invalid = await post(s, glucose({ reference: `Patient/${s.patient}` }, 99, { effectiveDateTime: undefined, effectivePeriod: { start: '2026-11-30T10:00:00Z', end: '2026-11-30T09:00:00Z' } }));
  const invalidStatus = await processMessage(s.h, invalid.json().id, s.lab.token);
  t.equal(invalidStatus.status, 'failed');
  t.match(JSON.stringify(invalidStatus.outcome), /effectivePeriod/);
  const outbox = await s.h.db('job_outbox').whereIn('id', [bad.json().id, good.json().id, invalid.json().id]).orderBy('id');
  t.same(outbox.map((r) => r.status).sort(), ['done', 'failed', 'failed']);
});

t.test('refusals at the door: 400 / 415 / 422 with an OperationOutcome, nothing stored', async (t) => {
  const s = await setup();
  const before = Number((await s.h.db('ingest_messages').count({ n: '*' }))[0]!.n);
  const notJson = await post(s, '{"resourceType": "Observation",');
  t.equal(notJson.statusCode, 400);
  t.equal(notJson.json().resourceType, 'OperationOutcome');
  const patient = await post(s, { resourceType: 'Patient' });
  t.equal(patient.statusCode, 422);
  const mixed = await post(s, { resourceType: 'Bundle', type: 'batch', entry: [{ resource: { resourceType: 'Patient' } }] });
  t.equal(mixed.statusCode, 422);
  t.match(mixed.json().issue[0].expression[0], 'Bundle.entry[0]');
  const hl7junk = await post(s, 'this is not HL7', s.lab.token, 'x-application/hl7-v2+er7');
  t.equal(hl7junk.statusCode, 400);
  const xml = await post(s, '<Observation/>', s.lab.token, 'application/fhir+xml');
  t.equal(xml.statusCode, 415);
  t.equal(Number((await s.h.db('ingest_messages').count({ n: '*' }))[0]!.n), before);
});

t.test('who may push and read: lab clients with Observation create, admins; nobody else', async (t) => {
  const s = await setup();
  const doctorToken = await import('../../src/auth/sessions.js').then((m) => m.startSession(s.h.db, s.doctor, { ttlSeconds: 600 }));
  t.equal((await post(s, glucose({ reference: `Patient/${s.patient}` }), doctorToken)).statusCode, 403);
  const narrow = await clientToken(s.h, SCOPES['narrow client']);
  t.equal((await post(s, glucose({ reference: `Patient/${s.patient}` }), narrow.token)).statusCode, 403);
  const insurer = await clientToken(s.h, 'system/Observation.c', 'insurer');
  t.equal((await post(s, glucose({ reference: `Patient/${s.patient}` }), insurer.token)).statusCode, 403, 'not a lab');
  t.equal((await s.h.fhir({ method: 'POST', url: '/ingest/lab-results', token: null, payload: glucose({}) })).statusCode, 401);

  const mine = await post(s, glucose({ reference: `Patient/${s.patient}` }));
  const other = await clientToken(s.h, SCOPES['lab client']);
  t.equal((await s.h.fhir({ method: 'GET', url: `/ingest/messages/${mine.json().id}`, token: other.token })).statusCode, 404, "another lab's message reads as missing");
  t.equal((await s.h.fhir({ method: 'GET', url: `/ingest/messages/${mine.json().id}` })).statusCode, 200, 'an admin reads it');
  t.equal((await s.h.fhir({ method: 'GET', url: '/ingest/messages/nope' })).statusCode, 404);
  const admin = await post(s, glucose({ reference: `Patient/${s.patient}` }, 77), s.h.token);
  t.equal(admin.statusCode, 202, 'an admin may push');
  const status = await processMessage(s.h, admin.json().id);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const rows = await s.h.db('security_logs').where({ action: 'ingest-accept', resource_id: mine.json().id });
  t.equal(rows.length, 1);
  t.equal(rows[0].client_id, s.lab.clientId);
});

t.test('the official lipid report Bundle (R4 example): relative references between entries resolve against their fullUrls', async (t) => {
  const s = await setup();
  const bundle = JSON.parse(readFileSync(join(FIXTURES, 'Bundle-lipids.json'), 'utf8'));
  for (const e of bundle.entry) {
    // the example's patient and performers live elsewhere: the lab names our patient by identifier
    e.resource.subject = { identifier: { system: MRN, value: s.mrn } };
    delete e.resource.performer;
  }
  const res = await post(s, bundle);
  t.equal(res.statusCode, 202, res.body);
  const status = await processMessage(s.h, res.json().id, s.lab.token);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const result = status.result as Record<string, string[]>;
  t.equal(result.Observation!.length, 4);
  const report = (await s.h.fhir({ method: 'GET', url: `/fhir/DiagnosticReport/${result.DiagnosticReport![0]}` })).json();
  t.same(report.result.map((r: { reference: string }) => r.reference), result.Observation!.map((id) => `Observation/${id}`), 'in the order of the report');
  t.equal(report.subject.reference, `Patient/${s.patient}`);
  const values = await Promise.all(result.Observation!.map(async (id) => (await s.h.fhir({ method: 'GET', url: `/fhir/Observation/${id}` })).json().valueQuantity.value));
  const sent = bundle.entry.filter((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'Observation').map((e: { resource: { valueQuantity: { value: number } } }) => e.resource.valueQuantity.value);
  t.same(values.sort(), sent.sort(), 'the values as sent');
});
