/**
 * Every HL7 v2 sample message (test/fixtures/hl7v2) pushed over HTTP, as each content type and
 * segment ending a lab may use, and processed: the patient matched by PID-3, one Observation per
 * result, one DiagnosticReport per OBR, abnormal flags, critical alerts, notes.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testApp, type TestApp } from '../helpers/app.js';
import { clientToken, makePractitioner, SCOPES } from '../helpers/access-world.js';
import { dropQueuesAtTeardown, processMessage, testPrefix } from '../helpers/jobs.js';
import { parseLabMessage } from '../../src/ingest/hl7.js';
import { unique } from '../helpers/world.js';

const DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'hl7v2');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.hl7')).sort();

let h: TestApp;
let lab: { clientId: string; token: string };
let doctor: string;

t.before(async () => {
  h = await testApp(t, { HMS_QUEUE_PREFIX: testPrefix() });
  dropQueuesAtTeardown(t, h);
  doctor = await makePractitioner(h);
  lab = await clientToken(h, SCOPES['lab client']);
});

/** A patient holding the message's first PID-3 identifier (its value: labs' assigning authorities are not FHIR systems). */
async function patientFor(text: string): Promise<string> {
  const msg = parseLabMessage(text);
  const p = msg.patient;
  // samples share patients (LAB-ORU-1 and -2): one patient per identifier
  const found = await h.fhir({ method: 'GET', url: `/fhir/Patient?identifier=${encodeURIComponent(p.identifiers[0]!.value)}` });
  if (found.json().entry?.length) return found.json().entry[0].resource.id;
  const res = await h.fhir({
    method: 'POST', url: '/fhir/Patient',
    payload: {
      resourceType: 'Patient', identifier: [{ system: 'urn:test:lab-mrn', value: p.identifiers[0]!.value }],
      name: [{ family: p.family ?? 'Unknown', given: p.given?.length ? p.given : ['Unknown'] }], gender: p.gender ?? 'unknown',
      birthDate: p.birthDate && p.birthDate.length === 10 ? p.birthDate : '1970-01-01', generalPractitioner: [{ reference: `Practitioner/${doctor}` }],
    },
  });
  if (res.statusCode !== 201) throw new Error(res.body);
  return res.json().id;
}

const RUN = unique();

/**
 * The message with this run's own patient: every PID-2 / PID-3 identifier gets a suffix (a
 * MariaDB test database keeps the patients of earlier runs and other tests).
 */
function ownPatient(text: string, suffix = RUN): string {
  return text.replace(/^(\uFEFF?)?PID\|[^\r\n]*/m, (pid) => {
    const f = pid.split('|');
    for (const n of [2, 3]) if (f[n]) f[n] = f[n]!.split('~').map((rep) => rep.replace(/^([^^]+)/, `$1-${suffix}`)).join('~');
    return f.join('|');
  });
}

/** The message with another MSH-10. */
function withControlId(text: string, id: string): string {
  return text.replace(/^(\uFEFF?MSH(?:\|[^|\r\n]*){8}\|)[^|\r\n]*/, `$1${id}`);
}

async function push(body: string | Buffer, contentType = 'x-application/hl7-v2+er7') {
  return h.fhir({ method: 'POST', url: '/ingest/lab-results', token: lab.token, headers: { 'content-type': contentType }, payload: body });
}

for (const file of FILES) {
  t.test(file, async (t) => {
    const text = ownPatient(readFileSync(join(DIR, file), 'utf8'));
    const raw = Buffer.from(text, 'utf8');
    const msg = parseLabMessage(text);
    const patient = await patientFor(text);
    let res = await push(raw);
    if (res.statusCode === 200) {
      // two pairs of samples share sending application, facility and control id (hl7.message.2 and .4: 2;
      // ORU-multiline-short-mixed and -short: MSGID00231): to HMS the second is a resend of the first
      t.ok(['hl7.message.4.ORU_R01.hl7', 'ORU-multiline-short.hl7'].includes(file), 'only the samples that repeat another\'s MSH-3/4/10');
      res = await push(withControlId(text, `${msg.controlId}-${file}`));
    }
    t.equal(res.statusCode, 202, res.body);
    const status = await processMessage(h, res.json().id, lab.token);
    t.equal(status.status, 'done', JSON.stringify(status.outcome));
    const result = (status.result ?? {}) as Record<string, string[]>;
    t.equal(result.DiagnosticReport?.length, msg.reports.length, 'one DiagnosticReport per OBR');
    for (const id of result.Observation ?? []) {
      const obs = (await h.fhir({ method: 'GET', url: `/fhir/Observation/${id}` })).json();
      t.equal(obs.subject.reference, `Patient/${patient}`);
    }
    const reports = await h.db('diagnostic_reports').whereIn('id', result.DiagnosticReport ?? []);
    t.ok(reports.every((r) => r.patient_id === patient));
  });
}

t.test('ORU-R01-RMGEAD: a glucose of 182 mg/dl flagged H lands in lab_results as high', async (t) => {
  const text = ownPatient(readFileSync(join(DIR, 'ORU-R01-RMGEAD.hl7'), 'utf8').replace('CNTRL-3456', 'CNTRL-3456-B'), `${RUN}-b`);
  const patient = await patientFor(text);
  const res = await push(text);
  const status = await processMessage(h, res.json().id, lab.token);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const rows = await h.db('lab_results').where({ patient_id: patient });
  t.equal(rows.length, 1);
  t.equal(rows[0].abnormal_flag, 'high');
  t.equal(String(rows[0].result_value), '182');
  t.equal(rows[0].status, 'completed');
});

t.test('LRI CBC: four HH results make four critical alerts', async (t) => {
  const text = ownPatient(readFileSync(join(DIR, 'LRI_2.0-NG_CBC_Typ_Message.hl7'), 'utf8').replace('NIST-LRI-NG-002.00', 'NIST-LRI-NG-002.01'), `${RUN}-c`);
  const patient = await patientFor(text);
  const status = await processMessage(h, (await push(text)).json().id, lab.token);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const alerts = await h.db('lab_alerts').where({ patient_id: patient });
  t.equal(alerts.length, 4);
  t.same([...new Set(alerts.map((a) => a.flag))], ['HH']);
  t.equal(Number((await h.db('lab_results').where({ patient_id: patient, abnormal_flag: 'critical' }).count({ n: '*' }))[0]!.n), 4);
});

t.test('the same message as text/plain, application/hl7-v2, with LF or CRLF endings: one message', async (t) => {
  const base = ownPatient(readFileSync(join(DIR, 'ORU-R01-RMGEAD.hl7'), 'utf8').replace('CNTRL-3456', 'CNTRL-ENDINGS'), `${RUN}-d`);
  await patientFor(base);
  const segments = base.split(/\r\n|\r|\n/).filter(Boolean);
  const first = await push(segments.join('\r'), 'text/plain');
  t.equal(first.statusCode, 202);
  const second = await push(segments.join('\n'), 'application/hl7-v2');
  t.equal(second.statusCode, 200, 'a resend, whatever the endings');
  t.equal(second.json().id, first.json().id);
  const third = await push(`\uFEFF${segments.join('\r\n')}\r\n`);
  t.equal(third.statusCode, 200);
});

t.test('a message too large to parse at the door is checked by its header, then parsed and processed by the worker', async (t) => {
  const base = ownPatient(readFileSync(join(DIR, 'ORU-R01-RMGEAD.hl7'), 'utf8').replace('CNTRL-3456', 'CNTRL-LARGE'), `${RUN}-e`);
  await patientFor(base);
  const notes = Array.from({ length: 1500 }, (_, i) => `NTE|${i + 1}||Line ${i + 1} of a long comment from the laboratory about this specimen.`);
  const large = `${base.trim().split(/\r\n|\r|\n/).join('\r')}\r${notes.join('\r')}`;
  t.ok(Buffer.byteLength(large) > 64 * 1024);
  const res = await push(large);
  t.equal(res.statusCode, 202, res.body);
  const status = await processMessage(h, res.json().id, lab.token);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const obs = (await h.fhir({ method: 'GET', url: `/fhir/Observation/${(status.result as Record<string, string[]>).Observation![0]}` })).json();
  t.match(obs.note?.[0]?.text ?? '', /Line 1500 of a long comment/, 'its notes kept');
  // and one whose body is not an ORU is still refused at the door, however large
  const adt = await push(large.replace('ORU^R01', 'ADT^A01'));
  t.equal(adt.statusCode, 400);
});

t.test('refused at the door: not ORU^R01, an unsupported version, junk (400), nothing stored', async (t) => {
  const base = readFileSync(join(DIR, 'ORU-R01-RMGEAD.hl7'), 'utf8');
  const before = Number((await h.db('ingest_messages').count({ n: '*' }))[0]!.n);
  const adt = await push(base.replace('ORU^R01', 'ADT^A01'));
  t.equal(adt.statusCode, 400);
  t.match(adt.json().issue[0].diagnostics, /ORU\^R01/);
  t.equal((await push(base.replace('|2.4|', '|2.8|'))).statusCode, 400);
  t.equal((await push(Buffer.from([0, 1, 2, 3, 255]))).statusCode, 400);
  t.equal(Number((await h.db('ingest_messages').count({ n: '*' }))[0]!.n), before);
});
