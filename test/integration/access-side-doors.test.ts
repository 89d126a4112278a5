/**
 * No side doors: the narrowing of docs/security.md holds for _include, _revinclude, :iterate,
 * chains, _total, _summary=count, replayed paging links, $everything, history, _elements,
 * conditional create criteria, error messages and reference checks; writes are checked before and
 * after; views hide what they hide; assignment is evaluated at request time. Real app, real database.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { testApp } from '../helpers/app.js';
import { bodies, buildWorld, clientToken, makePractitioner, NOTES_EXTENSION, type Principal } from '../helpers/access-world.js';
import { makePatient, unique } from '../helpers/world.js';
import { startSession } from '../../src/auth/sessions.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ids = (bundle: J): string[] => ((bundle.entry ?? []) as J[]).filter((e) => e.search?.mode !== 'outcome').map((e) => `${e.resource.resourceType}/${e.resource.id}`);

/** The statements a request runs (knex 'query' events), to compare two requests' work. */
async function statements(db: Knex, run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (q: { sql: string }) => seen.push(q.sql.replace(/\s+/g, ' '));
  db.on('query', listener);
  try { await run(); } finally { db.off('query', listener); }
  // the security log's own append (its transaction, chain head and parent-row locks) is left aside
  return seen.filter((sql) => !/security_logs|audit_chain|users.*LOCK IN SHARE MODE|^(BEGIN|COMMIT|ROLLBACK|SET TRANSACTION)/i.test(sql.trim()));
}

t.test('no side doors', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const { A, B } = w;
  const who = (name: string): Principal => w.principals.find((p) => p.name === name)!;
  const doctor = who('assigned doctor');
  const stranger = who('unassigned doctor');
  const nurse = who('assigned nurse');
  const finance = who('finance');
  const get = async (p: Principal, url: string) => w.inject(p, { method: 'GET', url });
  const bFamily = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${B}` })).json().name[0].family as string;

  // an Observation of A whose performer is B (a patient may perform an observation of another)
  const crossing = await w.post('Observation', { ...bodies['Observation (laboratory)'](A, w.doctorA), performer: [{ reference: `Patient/${B}` }] });

  t.test('_include does not bring in a resource out of reach', async (t) => {
    const url = `/fhir/Observation?_id=${crossing.id}&_include=Observation:performer`;
    t.ok(ids((await get(who('admin'), url)).json()).includes(`Patient/${B}`), 'admin sees the included patient');
    const res = await get(doctor, url);
    t.equal(res.statusCode, 200);
    t.same(ids(res.json()), [`Observation/${crossing.id}`], 'the doctor gets the match only');
  });

  t.test('_revinclude and :iterate return only what the caller reaches', async (t) => {
    const url = `/fhir/Practitioner?_id=${w.doctorB}&_revinclude=Encounter:practitioner`;
    t.ok(ids((await get(who('admin'), url)).json()).includes(`Encounter/${w.of.Encounter!.B}`), "admin sees B's encounter");
    t.same(ids((await get(doctor, url)).json()), [`Practitioner/${w.doctorB}`]);
    const obs = await w.post('Observation', bodies['Observation (laboratory)'](A, w.doctorB));
    const iterate = `/fhir/Observation?_id=${obs.id}&_include=Observation:performer&_revinclude:iterate=Encounter:practitioner`;
    t.ok(ids((await get(who('admin'), iterate)).json()).includes(`Encounter/${w.of.Encounter!.B}`));
    t.same(ids((await get(doctor, iterate)).json()).sort(), [`Observation/${obs.id}`, `Practitioner/${w.doctorB}`].sort(), "the iterating round stops at B's data");
  });

  t.test('an _include of a type the caller may not search is left out, and said so', async (t) => {
    const res = await get(finance, `/fhir/Invoice?_id=${w.of.Invoice!.A}&_revinclude=Condition:patient&_include=Invoice:patient`);
    t.equal(res.statusCode, 200);
    const bundle = res.json();
    t.same(ids(bundle).sort(), [`Invoice/${w.of.Invoice!.A}`, `Patient/${A}`].sort());
    t.match(JSON.stringify(bundle.entry.find((e: J) => e.search.mode === 'outcome')), /Condition not permitted/);
  });

  t.test('chained parameters are narrowed inside the chain', async (t) => {
    const url = `/fhir/Observation?_id=${crossing.id}&performer:Patient.family=${encodeURIComponent(bFamily)}`;
    t.same(ids((await get(who('admin'), url)).json()), [`Observation/${crossing.id}`], "admin can filter on B's name");
    t.same(ids((await get(doctor, url)).json()), [], "the doctor cannot use B's name to filter A's data");
    t.same(ids((await get(doctor, `/fhir/Encounter?patient.family=${encodeURIComponent(bFamily)}`)).json()), []);
    t.equal((await get(finance, `/fhir/Coverage?patient.name=x&_id=${w.of.Coverage!.A}`)).statusCode, 200, 'finance may chain into patients');
    const intoForbidden = await get(who('lab client'), `/fhir/Observation?encounter.status=finished`);
    t.equal(intoForbidden.statusCode, 403, 'a chain into a type the caller may not search is refused (by role or scope, never by data)');
    t.equal(intoForbidden.json().issue[0].code, 'forbidden');
  });

  t.test('_total and _summary=count count only what the caller may see', async (t) => {
    const count = async (p: Principal, qs: string) => (await get(p, `/fhir/Condition?${qs}`)).json().total as number;
    t.equal(await count(who('admin'), `patient=${B}&_summary=count`), 1);
    t.equal(await count(doctor, `patient=${B}&_summary=count`), 0);
    t.equal(await count(doctor, `patient=${A}&_summary=count`), 1);
    t.equal(await count(stranger, `_summary=count`), 0);
    t.equal((await get(doctor, `/fhir/Patient?family=${encodeURIComponent(bFamily)}&_total=accurate`)).json().total, 0);
  });

  t.test('a next link replayed with another token is authorized as that caller', async (t) => {
    const res = await get(doctor, `/fhir/Condition?patient=${A},${B}&_count=1&_sort=_id`);
    t.same(ids(res.json()).length, 1);
    const extra = await w.post('Condition', bodies.Condition(A, w.doctorA));
    const first = await get(doctor, `/fhir/Condition?patient=${A}&_count=1&_sort=_id`);
    const next = first.json().link.find((l: J) => l.relation === 'next')?.url as string;
    t.ok(next, 'the doctor has a second page');
    const path = next.slice(next.indexOf('/fhir/'));
    t.ok(ids((await get(doctor, path)).json()).length === 1, 'the doctor reads it');
    const replay = await get(stranger, path);
    t.equal(replay.statusCode, 200);
    t.same(ids(replay.json()), [], 'the same link gives another doctor nothing');
    await w.inject(h.token, { method: 'DELETE', url: `/fhir/Condition/${extra.id}` });
  });

  t.test('$everything: out of reach is 404 as for a missing patient; within reach only the reached', async (t) => {
    const ghost = randomUUID();
    const out = await get(doctor, `/fhir/Patient/${B}/$everything`);
    const missing = await get(doctor, `/fhir/Patient/${ghost}/$everything`);
    t.equal(out.statusCode, 404);
    t.equal(out.body, missing.body.split(ghost).join(B));
    const mine = ids((await get(doctor, `/fhir/Patient/${A}/$everything`)).json());
    t.ok(mine.includes(`Condition/${w.of.Condition!.A}`));
    t.notOk(mine.some((r) => Object.values(w.of).some((o) => r.endsWith(`/${o.B}`) && !r.startsWith('Practitioner'))), "nothing of B's");
    const fin = (await get(finance, `/fhir/Patient/${A}/$everything`)).json();
    const types = new Set(ids(fin).map((r) => r.split('/')[0]));
    t.notOk(types.has('Condition') || types.has('Observation') || types.has('MedicationRequest') || types.has('DiagnosticReport'), 'no clinical detail for finance');
    const enc = fin.entry.find((e: J) => e.resource.resourceType === 'Encounter').resource;
    t.notOk(enc.reasonCode || enc.extension, 'the encounter is the administrative view');
  });

  t.test('history and vread leave out versions that belonged to a patient out of reach', async (t) => {
    const moved = await w.post('Observation', bodies['Observation (vital sign)'](B, w.doctorB));
    const put = await h.fhir({ method: 'PUT', url: `/fhir/Observation/${moved.id}`, payload: { ...bodies['Observation (vital sign)'](A, w.doctorA), id: moved.id } });
    t.equal(put.statusCode, 200);
    const hist = (await get(doctor, `/fhir/Observation/${moved.id}/_history`)).json();
    t.same(hist.entry.map((e: J) => e.response.etag), ['W/"2"'], "version 1 (B's) is not shown");
    t.equal((await get(doctor, `/fhir/Observation/${moved.id}/_history/1`)).statusCode, 404);
    t.equal((await get(doctor, `/fhir/Observation/${moved.id}/_history/2`)).statusCode, 200);
    t.equal((await get(who('admin'), `/fhir/Observation/${moved.id}/_history`)).json().entry.length, 2);
  });

  t.test('_elements and _summary cannot reach what a view hides', async (t) => {
    for (const q of ['_elements=reasonCode,extension,text', '_summary=false', '_summary=data']) {
      const res = (await get(finance, `/fhir/Encounter?_id=${w.of.Encounter!.A}&${q}`)).json();
      const enc = res.entry[0].resource;
      t.notOk(enc.reasonCode || enc.extension || enc.text, q);
    }
    const read = (await get(finance, `/fhir/Encounter/${w.of.Encounter!.A}`)).json();
    t.match(read.meta.security, [{ code: 'REDACTED' }]);
    t.same(Object.keys(read).filter((k) => ['reasonCode', 'extension', 'hospitalization', 'diagnosis'].includes(k)), []);
    t.ok(read.period && read.status && read.class && read.participant, 'period, status, class, participant stay');
    const appt = (await get(finance, `/fhir/Appointment/${w.of.Appointment!.A}`)).json();
    t.notOk(appt.description || appt.comment, 'no clinical text on the appointment');
    t.ok(appt.start && appt.participant);
    t.equal((await get(finance, `/fhir/Encounter/${w.of.Encounter!.A}/_history/1`)).json().reasonCode, undefined, 'vread is masked too');
  });

  t.test('conditional create criteria are matched only among what the caller may read', async (t) => {
    const system = `urn:cond:${unique()}`;
    const patient = await makePatient(h, undefined, { identifier: [{ system, value: 'X1' }], generalPractitioner: [{ reference: `Practitioner/${w.doctorB}` }] });
    const body = { resourceType: 'Patient', identifier: [{ system, value: 'X1' }], name: [{ family: 'Other' }], gender: 'male', birthDate: '1990-01-01' };
    const res = await h.app.inject({ method: 'POST', url: '/fhir/Patient', headers: { authorization: `Bearer ${doctor.token}`, 'content-type': 'application/fhir+json', 'if-none-exist': `identifier=${system}|X1` }, payload: body });
    t.equal(res.statusCode, 201, 'a patient out of reach is not matched (and not disclosed)');
    t.not(res.json().id, patient);
  });

  t.test('a reference to a patient out of reach answers exactly like one to a missing patient', async (t) => {
    const ghost = randomUUID();
    const out = await w.inject(doctor, { method: 'POST', url: '/fhir/Condition', payload: bodies.Condition(B, w.doctorA) });
    const missing = await w.inject(doctor, { method: 'POST', url: '/fhir/Condition', payload: bodies.Condition(ghost, w.doctorA) });
    t.equal(out.statusCode, 422);
    t.equal(out.body, missing.body.split(ghost).join(B));
    const report = await w.inject(doctor, { method: 'POST', url: '/fhir/DiagnosticReport', payload: { ...bodies.DiagnosticReport(A), result: [{ reference: `Observation/${w.of['Observation (laboratory)']!.B}` }] } });
    const reportMissing = await w.inject(doctor, { method: 'POST', url: '/fhir/DiagnosticReport', payload: { ...bodies.DiagnosticReport(A), result: [{ reference: `Observation/${ghost}` }] } });
    t.equal(report.statusCode, 422, "a result that is B's Observation is refused");
    t.equal(report.body, reportMissing.body.split(ghost).join(w.of['Observation (laboratory)']!.B));
  });

  t.test('an out-of-reach id costs the same statements as a missing one (no timing difference)', async (t) => {
    for (const [type, id] of [['Condition', w.of.Condition!.B], ['Patient', B]] as const) {
      const ghost = randomUUID();
      const out = await statements(h.db, () => get(doctor, `/fhir/${type}/${id}`));
      const missing = await statements(h.db, () => get(doctor, `/fhir/${type}/${ghost}`));
      t.same(out, missing, `${type}: the same statements`);
    }
    const forbidden = await statements(h.db, () => get(finance, `/fhir/Condition/${w.of.Condition!.A}`));
    t.same(forbidden, [], 'a 403 runs no statement at all: it depends on the role only');
  });

  t.test('writes are checked before and after', async (t) => {
    const obs = (await get(doctor, `/fhir/Observation/${w.of['Observation (vital sign)']!.A}`)).json();
    const repoint = await w.inject(doctor, { method: 'PUT', url: `/fhir/Observation/${obs.id}`, payload: { ...obs, subject: { reference: `Patient/${B}` } } });
    t.equal(repoint.statusCode, 422, 'cannot move an Observation to a patient out of reach');
    // a patient the doctor reaches only as its primary doctor
    const only = await makePatient(h, undefined, { generalPractitioner: [{ reference: `Practitioner/${w.doctorA}` }] });
    const p = (await get(doctor, `/fhir/Patient/${only}`)).json();
    const away = await w.inject(doctor, { method: 'PUT', url: `/fhir/Patient/${only}`, payload: { ...p, generalPractitioner: [{ reference: `Practitioner/${w.doctorB}` }] } });
    t.equal(away.statusCode, 403, 'cannot take the patient out of its own reach');
    t.equal((await h.db('patients').where({ id: only }).first('primary_doctor_id')).primary_doctor_id, w.doctorA, 'nothing was written');
    const enc = (await get(nurse, `/fhir/Encounter/${w.of.Encounter!.A}`)).json();
    const notes = await w.inject(nurse, { method: 'PUT', url: `/fhir/Encounter/${enc.id}`, payload: { ...enc, extension: [{ url: NOTES_EXTENSION, valueString: 'checked in' }] } });
    t.equal(notes.statusCode, 200, 'the nurse writes the notes');
    const status = await w.inject(nurse, { method: 'PUT', url: `/fhir/Encounter/${enc.id}`, payload: { ...(notes.json() as J), status: 'cancelled' } });
    t.equal(status.statusCode, 403, 'but not the status');
    t.same(status.json().issue[0].expression, ['Encounter.status']);
    const lab = await w.inject(nurse, { method: 'POST', url: '/fhir/Observation', payload: bodies['Observation (laboratory)'](A, w.doctorA) });
    t.equal(lab.statusCode, 403, 'a nurse writes vital signs only');
    const vital = (await get(nurse, `/fhir/Observation/${w.of['Observation (vital sign)']!.A}`)).json();
    const toLab = await w.inject(nurse, { method: 'PUT', url: `/fhir/Observation/${vital.id}`, payload: { ...bodies['Observation (laboratory)'](A, w.doctorA), id: vital.id } });
    t.equal(toLab.statusCode, 403, 'nor turns one into a lab result');
    const upsert = await w.inject(doctor, { method: 'PUT', url: `/fhir/Condition/${randomUUID()}`, payload: bodies.Condition(A, w.doctorA) });
    t.equal(upsert.statusCode, 400, 'the body must carry the id');
  });

  t.test('a patient reads their own record, the clinicians it names, and the accesses to it', async (t) => {
    const me = who('patient A');
    t.equal((await get(me, `/fhir/Patient/${A}`)).statusCode, 200);
    t.equal((await get(me, `/fhir/Practitioner/${w.doctorA}`)).statusCode, 200, 'my doctor');
    t.equal((await get(me, `/fhir/Practitioner/${await makePractitioner(h)}`)).statusCode, 404, 'not one my record does not name');
    const log = (await get(me, `/fhir/AuditEvent?patient=${A}&_count=50`)).json();
    t.ok(log.entry.length > 0, 'the accounting of disclosures');
    for (const e of log.entry as J[]) {
      t.notOk(e.resource.agent.some((a: J) => a.network || a.extension), 'no network address or user agent');
      t.match(e.resource.meta.security, [{ code: 'REDACTED' }]);
    }
    t.same(ids((await get(me, `/fhir/AuditEvent?patient=${B}`)).json()), [], "nothing of B's");
    const byAddress = await get(me, `/fhir/AuditEvent?patient=${A}&address=10`);
    t.equal(byAddress.statusCode, 403, 'nor a filter on the network address the view hides');
    t.equal((await get(who('admin'), `/fhir/AuditEvent?patient=${A}&address=10`)).statusCode, 200);
    t.equal((await w.inject(me, { method: 'POST', url: '/fhir/Condition', payload: bodies.Condition(A, w.doctorA) })).statusCode, 403, 'writes nothing');
  });

  t.test('assignment is evaluated at request time', async (t) => {
    const url = `/fhir/Condition/${w.of.Condition!.B}`;
    t.equal((await get(stranger, url)).statusCode, 404);
    const appt = await w.post('Appointment', bodies.Appointment(B, stranger.userId!));
    t.equal((await get(stranger, url)).statusCode, 200, 'an appointment with the patient assigns the doctor');
    const cancel = (await h.fhir({ method: 'GET', url: `/fhir/Appointment/${appt.id}` })).json();
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/Appointment/${appt.id}`, payload: { ...cancel, status: 'cancelled' } })).statusCode, 200);
    t.equal((await get(stranger, url)).statusCode, 404, 'a cancelled one no longer does');
    const team = await w.post('CareTeam', { resourceType: 'CareTeam', status: 'active', subject: { reference: `Patient/${B}` }, participant: [{ member: { reference: `Practitioner/${stranger.userId}` }, period: { end: '2001-01-01' } }] });
    t.equal((await get(stranger, url)).statusCode, 404, 'a membership that ended assigns no one');
    const current = (await h.fhir({ method: 'GET', url: `/fhir/CareTeam/${team.id}` })).json();
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/CareTeam/${team.id}`, payload: { ...current, participant: [{ member: { reference: `Practitioner/${stranger.userId}` } }] } })).statusCode, 200);
    t.equal((await get(stranger, url)).statusCode, 200, 'an open membership does');
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/CareTeam/${team.id}` })).statusCode, 204);
    t.equal((await get(stranger, url)).statusCode, 404);
  });

  t.test('a doctor who creates a patient joins its care team; a nurse creates no patient', async (t) => {
    const created = await w.inject(stranger, { method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', name: [{ family: `New${unique()}` }], gender: 'female', birthDate: '1999-09-09' } });
    t.equal(created.statusCode, 201);
    const id = created.json().id as string;
    t.equal((await get(stranger, `/fhir/Patient/${id}`)).statusCode, 200);
    const teams = (await get(stranger, `/fhir/CareTeam?patient=${id}`)).json();
    t.equal(teams.entry.length, 1);
    t.match(teams.entry[0].resource, { status: 'active', participant: [{ member: { reference: `Practitioner/${stranger.userId}` } }] });
    t.equal((await get(who('unassigned nurse'), `/fhir/Patient/${id}`)).statusCode, 404);
    const byNurse = await w.inject(nurse, { method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', name: [{ family: 'N' }], gender: 'female', birthDate: '1999-09-09' } });
    t.equal(byNurse.statusCode, 403);
    const newDoctor = await makePractitioner(h);
    t.ok(newDoctor);
  });

  t.test('a Practitioner written through FHIR is a login: status, role and deletion end its sessions; systems do not write it', async (t) => {
    const doctorId = await makePractitioner(h);
    const login = async () => startSession(h.db, doctorId, { ttlSeconds: 600 });
    const probe = async (token: string) => (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${doctorId}`, token })).statusCode;
    const current = async () => { const r = (await h.fhir({ method: 'GET', url: `/fhir/Practitioner/${doctorId}` })).json() as J; delete r.meta; return r; };
    const put = async (body: J) => h.fhir({ method: 'PUT', url: `/fhir/Practitioner/${doctorId}`, payload: body });
    const token = await login();
    t.equal(await probe(token), 200);
    t.equal((await put({ ...(await current()), active: false })).statusCode, 200);
    t.equal(await probe(token), 401, 'deactivated: its session ends at once');
    t.equal((await put({ ...(await current()), active: true })).statusCode, 200);
    t.equal(await probe(token), 401, 'reactivated: the old session stays ended');
    const changes = (await h.db('security_logs').where({ action: 'privilege-change', resource_id: doctorId }).orderBy('seq')) as J[];
    t.equal(changes.length, 1, 'the deactivation is recorded as a privilege change');
    const again = await login();
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Practitioner/${doctorId}` })).statusCode, 204);
    t.equal(await probe(again), 401, 'deleted: its session ends');
    const revived = await put({ resourceType: 'Practitioner', id: doctorId, name: [{ family: 'Back' }], telecom: [{ system: 'email', value: `back-${unique()}@test.example.org` }] });
    t.equal(revived.statusCode, 201);
    t.equal((await h.db('users').where({ id: doctorId }).first('password_hash')).password_hash, '!', 'revived without its old password');
    t.equal(await probe(again), 401);
    // a client whose scopes name every interaction on every type still does not write the staff directory
    const wide = await clientToken(h, 'system/*.cruds', 'ehr');
    const lab: Principal = { name: 'lab client', token: wide.token, scope: wide.scope };
    t.equal((await w.inject(lab, { method: 'GET', url: `/fhir/Practitioner/${doctorId}` })).statusCode, 200, 'it reads it');
    for (const [method, url] of [['PUT', `/fhir/Practitioner/${doctorId}`], ['POST', '/fhir/Practitioner'], ['DELETE', `/fhir/Practitioner/${doctorId}`]] as const) {
      const res = await w.inject(lab, { method, url, payload: method === 'DELETE' ? undefined : { ...(await current()), active: false } });
      t.equal(res.statusCode, 403, `a system may not ${method} a Practitioner`);
    }
  });

  t.test('double-booking names the clashing appointment only to those who may read it', async (t) => {
    const booked = await w.post('Appointment', bodies.Appointment(B, w.doctorB));
    const clash = await w.inject(doctor, { method: 'POST', url: '/fhir/Appointment', payload: { ...bodies.Appointment(A, w.doctorB), start: booked.start, end: booked.end } });
    t.equal(clash.statusCode, 409);
    t.notMatch(clash.body, booked.id, "B's appointment is not named to A's doctor");
    const byAdmin = await h.fhir({ method: 'POST', url: '/fhir/Appointment', payload: { ...bodies.Appointment(A, w.doctorB), start: booked.start, end: booked.end } });
    t.match(byAdmin.body, booked.id);
  });
});
