import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { makeClinician, makePatient } from '../helpers/world.js';
import { startSession } from '../../src/auth/sessions.js';
import {
  AUDIT_ACTION_SYSTEM, AUDIT_ROLE_SYSTEM, BREAK_GLASS_PURPOSE, CLIENT_ID_SYSTEM, REQUEST_ID_DETAIL, USER_ID_SYSTEM,
} from '../../src/mappers/audit-event-mapper.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('AuditEvent over security_logs', async (t) => {
  const h = await testApp(t);
  const doctor = await makeClinician(h);
  const doctorToken = await startSession(h.db, doctor, { ttlSeconds: 3600 });
  const agent = `hms-audit-test/${randomUUID()}`;
  const as = (token: string, opts: J) => h.fhir({ ...opts, token, headers: { 'user-agent': agent, ...(opts.headers ?? {}) } } as never);

  // some requests the server audits (the doctor is the patient's primary doctor: assigned)
  const gp = [{ reference: `Practitioner/${doctor}` }];
  const patient = await makePatient(h, undefined, { generalPractitioner: gp });
  const put = await as(h.token, { method: 'PUT', url: `/fhir/Patient/${patient}`, payload: { resourceType: 'Patient', id: patient, name: [{ family: 'Audited' }], gender: 'male', generalPractitioner: gp } });
  t.equal(put.statusCode, 200, put.body);
  t.equal((await as(doctorToken, { method: 'GET', url: `/fhir/Patient/${patient}` })).statusCode, 200);
  t.equal((await as(h.token, { method: 'GET', url: `/fhir/Patient/${randomUUID()}` })).statusCode, 404);
  t.equal((await as(h.token, { method: 'GET', url: `/fhir/Patient?_id=${patient}` })).statusCode, 200);
  await h.app.auditLog.settle();

  // reading the log is audited too (one row per patient whose events were returned): those rows are left out here
  const aboutAuditEvents = (e: J): boolean => e.entity?.[0]?.what?.type === 'AuditEvent' || /^AuditEvent\//.test(e.entity?.[0]?.what?.reference ?? '');
  const search = async (qs: string): Promise<J[]> => {
    const r = await h.fhir({ method: 'GET', url: `/fhir/AuditEvent?${qs}&_count=100` });
    t.equal(r.statusCode, 200, `${qs}: ${r.statusCode}`);
    return (r.json().entry ?? []).filter((e: J) => e.search?.mode !== 'outcome').map((e: J) => e.resource).filter((e: J) => !aboutAuditEvents(e));
  };
  const subtypes = (events: J[]) => events.map((e) => e.subtype[0].code).sort();

  t.test('the events of a patient, with agent, action, outcome and entity', async (t) => {
    const events = await search(`patient=${patient}`);
    t.same(subtypes(events), ['create', 'read', 'search', 'update'], 'every access to the patient, including the search that returned them');
    const read = events.find((e) => e.subtype[0].code === 'read')!;
    t.match(read, {
      resourceType: 'AuditEvent', action: 'R', outcome: '0', type: { code: 'rest' },
      agent: [{ requestor: true, who: { reference: `Practitioner/${doctor}` }, role: [{ coding: [{ system: AUDIT_ROLE_SYSTEM, code: 'doctor' }] }], extension: [{ valueString: agent }] }],
      entity: [{ what: { reference: `Patient/${patient}` } }],
    });
    t.ok(read.agent[0].network.address, 'the ip address');
    t.ok(read.entity[0].detail.some((d: J) => d.type === REQUEST_ID_DETAIL && d.valueString), 'the request id');
    t.equal(read.entity.length, 1, 'no separate patient entity when the resource is the patient');
    t.notOk(read.purposeOfEvent, 'no break-glass');
    const update = events.find((e) => e.subtype[0].code === 'update')!;
    t.equal(update.action, 'U');
    t.same(update.agent[0].who, { identifier: { system: USER_ID_SYSTEM, value: h.userId }, display: 'HMS user (admin)' }, 'the admin is no Practitioner');
    t.ok(update.entity[0].detail.some((d: J) => d.type === 'version' && d.valueString === '2'));
    const again = await h.fhir({ method: 'GET', url: `/fhir/AuditEvent/${read.id}` });
    t.equal(again.statusCode, 200);
    t.same({ ...again.json(), meta: undefined }, { ...read, meta: undefined });
    t.equal(again.json().meta.lastUpdated, read.recorded);
  });

  t.test('every search parameter', async (t) => {
    t.same(subtypes(await search(`agent=${doctor}&patient=${patient}`)), ['read']);
    t.same(subtypes(await search(`agent=Practitioner/${doctor}&entity=Patient/${patient}`)), ['read']);
    t.same(subtypes(await search(`entity=${patient}`)), ['create', 'read', 'update']);
    t.same(subtypes(await search(`patient=${patient}&action=C,U`)), ['create', 'update']);
    t.same(subtypes(await search(`patient=${patient}&action:not=R`)), ['create', 'update']);
    t.same(subtypes(await search(`patient=${patient}&subtype=${AUDIT_ACTION_SYSTEM}|read`)), ['read']);
    t.same(subtypes(await search(`patient=${patient}&subtype=http://other|read`)), []);
    t.same(subtypes(await search(`patient=${patient}&type=rest`)), ['create', 'read', 'search', 'update']);
    t.same(subtypes(await search(`patient=${patient}&outcome=4`)), []);
    t.same(subtypes(await search(`patient=${patient}&agent-role=doctor`)), ['read']);
    t.same(subtypes(await search(`patient=${patient}&agent-role=${AUDIT_ROLE_SYSTEM}|admin&subtype=create,update`)), ['create', 'update']);
    t.same(subtypes(await search(`patient=${patient}&agent-role=http://other|admin`)), []);
    const refused = await search(`agent=${h.userId}&outcome=4&subtype=refused&_sort=-date`);
    t.ok(refused.length >= 1);
    t.match(refused[0], { action: 'E', outcome: '4', outcomeDesc: /^404/ });
    const today = new Date().toISOString().slice(0, 10);
    t.same(subtypes(await search(`patient=${patient}&date=ge${today}T00:00:00Z`)).length, 4);
    t.same(await search(`patient=${patient}&date=lt2000-01-01`), []);
    t.ok((await search(`subtype=search&agent=${h.userId}&address=1`)).length >= 1, 'address (prefix)');
    const sorted = await search(`patient=${patient}&_sort=date`);
    t.same(sorted.map((e) => e.recorded), [...sorted.map((e) => e.recorded)].sort());
  });

  t.test('a login is a DICOM user authentication event', async (t) => {
    const email = `nurse-${randomUUID()}@test.example.org`;
    const nurse = await makeClinician(h, 'nurse', { email });
    const res = await h.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'wrong password!' }, headers: { 'user-agent': agent } });
    t.ok(res.statusCode >= 400);
    await h.app.auditLog.settle();
    const events = await search(`agent=${nurse}&type=http://dicom.nema.org/resources/ontology/DCM|110114`);
    t.equal(events.length, 1);
    t.match(events[0], { subtype: [{ code: 'login' }], action: 'E', outcome: '4', agent: [{ who: { reference: `Practitioner/${nurse}` } }] });
  });

  t.test("a system client's break-glass-free access and a clinician's break-glass access to the patient's other data", async (t) => {
    const client = randomUUID();
    const observation = randomUUID();
    await h.app.auditLog.record([
      { clientId: client, role: 'system', action: 'read', resourceType: 'Observation', resourceId: observation, patientId: patient, success: true, requestId: 'req-client-1', ipAddress: '10.1.2.3' },
      { userId: doctor, role: 'doctor', action: 'vread', resourceType: 'Observation', resourceId: observation, patientId: patient, success: true, breakGlass: true, requestId: 'req-bg-1' },
    ]);
    const byClient = await search(`client=${client}`);
    t.equal(byClient.length, 1);
    t.match(byClient[0], {
      agent: [{ who: { identifier: { system: CLIENT_ID_SYSTEM, value: client }, display: 'HMS client' }, role: [{ coding: [{ system: AUDIT_ROLE_SYSTEM, code: 'system' }], text: 'system' }] }],
      entity: [
        { what: { reference: `Observation/${observation}` }, detail: [{ type: REQUEST_ID_DETAIL, valueString: 'req-client-1' }] },
        { what: { reference: `Patient/${patient}` }, type: { code: '1' }, role: { code: '1' } },
      ],
    });
    t.notOk(byClient[0]!.purposeOfEvent);
    t.same((await search(`client=${CLIENT_ID_SYSTEM}|${client}`)).map((e) => e.id), [byClient[0]!.id], 'with the system');
    t.same(await search(`client=http://other|${client}`), []);
    t.same((await search(`agent-role=system&patient=${patient}`)).map((e) => e.id), [byClient[0]!.id]);

    const [glass] = await search(`patient=${patient}&subtype=vread&agent=${doctor}`);
    t.same(glass!.purposeOfEvent, [BREAK_GLASS_PURPOSE]);
    t.same(glass!.agent[0].purposeOfUse, [BREAK_GLASS_PURPOSE]);
    t.same(glass!.entity.map((e: J) => e.what.reference), [`Observation/${observation}`, `Patient/${patient}`]);
    t.ok((await search(`entity=Observation/${observation}`)).length === 2, 'both are about the observation');
    t.same(subtypes(await search(`patient=${patient}&entity=Observation/${observation}`)), ['read', 'vread'], "and in the patient's accounting");
  });

  t.test('never writable: POST, PUT and DELETE answer 405 and write nothing', async (t) => {
    const [event] = await search(`patient=${patient}&subtype=read`);
    const count = async () => Number(((await h.db('security_logs').where({ id: event!.id }).count({ n: '*' })) as J[])[0]!.n);
    for (const req of [
      { method: 'POST', url: '/fhir/AuditEvent', payload: { ...event, id: undefined } },
      { method: 'PUT', url: `/fhir/AuditEvent/${event!.id}`, payload: { ...event, outcome: '8' } },
      { method: 'DELETE', url: `/fhir/AuditEvent/${event!.id}` },
      { method: 'GET', url: `/fhir/AuditEvent/${event!.id}/_history` },
    ]) {
      const res = await h.fhir(req as never);
      t.equal(res.statusCode, 405, `${req.method} ${req.url}`);
      t.equal(res.json().resourceType, 'OperationOutcome');
    }
    t.equal(await count(), 1);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/AuditEvent/${event!.id}` })).json().outcome, '0', 'unchanged');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/AuditEvent/${randomUUID()}` })).statusCode, 404);
  });
});
