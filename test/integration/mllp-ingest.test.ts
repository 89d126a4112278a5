/**
 * Lab messages over MLLP end to end: a real TCP connection to the listener `hms worker --mllp`
 * starts, each message answered with an HL7 ACK once stored (AA), refused (AR) or not storable
 * (AE), attributed to HMS_MLLP_CLIENT, then processed like any other.
 */
import t from 'tap';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testApp } from '../helpers/app.js';
import { clientToken, makePractitioner, SCOPES } from '../helpers/access-world.js';
import { dropQueuesAtTeardown, processMessage, silentLog, testPrefix } from '../helpers/jobs.js';
import { startMllp } from '../../src/workers/worker.js';
import { unique } from '../helpers/world.js';

const DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'hl7v2');
const SAMPLE = readFileSync(join(DIR, 'ORU-R01-RMGEAD.hl7'), 'utf8');

/** Sends MLLP frames on one connection and resolves with the ACK of each, in order. */
function exchange(port: number, messages: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const acks: string[] = [];
    let buf = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(messages.map((m) => `\x0b${m}\x1c\r`).join('')));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let end;
      while ((end = buf.indexOf('\x1c\r')) >= 0) {
        acks.push(buf.slice(buf.indexOf('\x0b') + 1, end));
        buf = buf.slice(end + 2);
      }
      if (acks.length === messages.length) { socket.end(); resolve(acks); }
    });
    socket.on('error', reject);
    socket.setTimeout(20_000, () => { socket.destroy(); reject(new Error(`timeout after ${acks.length} ACKs`)); });
  });
}

const field = (ack: string, seg: string, n: number) => ack.split('\r').find((s) => s.startsWith(seg))?.split('|')[n];

t.test('MLLP: AA once stored, the message processed like any other; AR for junk and unaccepted facilities', async (t) => {
  const h = await testApp(t, { HMS_QUEUE_PREFIX: testPrefix() });
  dropQueuesAtTeardown(t, h);
  const doctor = await makePractitioner(h);
  // a patient identifier of this test's own (the database may hold other tests' patients)
  const mrn = `555-${unique()}`;
  const sample = SAMPLE.replaceAll('555-44-4444', mrn);
  const lab = await clientToken(h, SCOPES['lab client']);
  const patient = await h.fhir({
    method: 'POST', url: '/fhir/Patient',
    payload: { resourceType: 'Patient', identifier: [{ system: 'urn:test:mrn', value: mrn }], name: [{ family: 'Everywoman', given: ['Eve'] }], gender: 'female', birthDate: '1962-03-20', generalPractitioner: [{ reference: `Practitioner/${doctor}` }] },
  });
  t.equal(patient.statusCode, 201);
  const config = { ...h.config, HMS_MLLP_CLIENT: lab.clientId };
  const mllp = await startMllp({ db: h.db, config, log: silentLog, auditLog: h.app.auditLog, queues: h.app.jobs, port: 0 });
  t.teardown(() => mllp.close());

  const [ack, again, junk] = await exchange(mllp.port, [sample.trim().replace(/\n/g, '\r'), sample.trim().replace(/\n/g, '\r'), 'MSH|^~\\&|X|Y|||20200101||ADT^A01|J1|P|2.5']);
  t.equal(field(ack!, 'MSH', 8), 'ACK^R01^ACK', 'an ACK');
  t.equal(field(ack!, 'MSA', 1), 'AA');
  t.equal(field(ack!, 'MSA', 2), 'CNTRL-3456', 'naming the message it acknowledges');
  const id = /Stored as ([0-9a-f-]{36})/.exec(field(ack!, 'MSA', 3) ?? '')?.[1];
  t.ok(id, 'MSA-3 names the stored message');
  t.equal(field(again!, 'MSA', 1), 'AA', 'a resend is acknowledged');
  t.match(field(again!, 'MSA', 3), new RegExp(`Received before as ${id}`));
  t.equal(field(junk!, 'MSA', 1), 'AR', 'an ADT is refused');
  t.equal(field(junk!, 'MSA', 2), 'J1');

  const stored = await h.db('ingest_messages').where({ id }).first();
  t.equal(stored.channel, 'mllp');
  t.equal(stored.client_id, lab.clientId);
  t.equal(Number((await h.db('ingest_messages').where({ source: `client:${lab.clientId}` }).count({ n: '*' }))[0]!.n), 1, 'the refused one is not stored');
  const status = await processMessage(h, id!);
  t.equal(status.status, 'done', JSON.stringify(status.outcome));
  const audit = await h.db('security_logs').where({ client_id: lab.clientId, action: 'ingest-accept', resource_id: id });
  t.equal(audit.length, 1);
  t.equal(audit[0].ip_address, '127.0.0.1');

  // only the facilities configured
  const strict = await startMllp({ db: h.db, config: { ...config, HMS_LAB_FACILITIES: 'OTHER-LAB' }, log: silentLog, auditLog: h.app.auditLog, queues: h.app.jobs, port: 0 });
  t.teardown(() => strict.close());
  const [refused] = await exchange(strict.port, [sample.trim().replace(/\n/g, '\r').replace('CNTRL-3456', 'CNTRL-9')]);
  t.equal(field(refused!, 'MSA', 1), 'AR');
  t.match(refused, /ELAB-3/);
});

t.test('the listener refuses to start for a client that cannot send lab results', async (t) => {
  const h = await testApp(t, { HMS_QUEUE_PREFIX: testPrefix() });
  const insurer = await clientToken(h, 'system/Coverage.rs', 'insurer');
  await t.rejects(startMllp({ db: h.db, config: { ...h.config, HMS_MLLP_CLIENT: insurer.clientId }, log: silentLog, auditLog: h.app.auditLog, queues: h.app.jobs, port: 0 }), /not a lab/);
  await t.rejects(startMllp({ db: h.db, config: { ...h.config, HMS_MLLP_CLIENT: undefined }, log: silentLog, auditLog: h.app.auditLog, queues: h.app.jobs, port: 0 }), /HMS_MLLP_CLIENT/);
});
