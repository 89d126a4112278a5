/**
 * Break-glass (emergency) access: Patient/{id}/$break-glass with a reason opens an unassigned
 * patient's record to a doctor or nurse for HMS_BREAK_GLASS_MINUTES; every access under it is
 * flagged in the security log; admins review grants at GET /admin/break-glass. Real app, real database.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { bodies, buildWorld, type Principal } from '../helpers/access-world.js';
import { buildApp } from '../../src/api/app.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const reason = (text: unknown) => ({ resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: text }] });

t.test('break-glass', async (t) => {
  const h = await testApp(t, { HMS_SESSION_CACHE: 5, HMS_BREAK_GLASS_MINUTES: 30 });
  const w = await buildWorld(h);
  const who = (name: string): Principal => w.principals.find((p) => p.name === name)!;
  const doctor = who('unassigned doctor');
  const nurse = who('unassigned nurse');
  const condition = `/fhir/Condition/${w.of.Condition!.B}`;
  const glass = (p: Principal, patient: string, body: unknown) => w.inject(p, { method: 'POST', url: `/fhir/Patient/${patient}/$break-glass`, payload: body });

  t.test('refused without a reason, to other roles, and for a patient that does not exist', async (t) => {
    for (const body of [reason(''), reason('   '), { resourceType: 'Parameters' }, { resourceType: 'Patient' }]) {
      const res = await glass(doctor, w.B, body);
      t.equal(res.statusCode, 400, JSON.stringify(body));
      t.equal(res.json().resourceType, 'OperationOutcome');
    }
    for (const name of ['patient A', 'finance', 'admin', 'lab client']) {
      const res = await glass(who(name), w.B, reason('curious'));
      t.equal(res.statusCode, 403, name);
      t.equal(res.json().issue[0].code, 'forbidden');
    }
    t.equal((await glass(doctor, randomUUID(), reason('unconscious in the ER'))).statusCode, 404);
    t.equal((await h.db('break_glass_grants').where({ user_id: doctor.userId })).length, 0, 'no grant was recorded');
  });

  t.test('a grant opens the record at once, flagged in the security log, for the configured time', async (t) => {
    t.equal((await w.inject(doctor, { method: 'GET', url: condition })).statusCode, 404, 'unassigned: not found');
    // the doctor's session is cached by this process: the grant must still count on the next request
    const granted = await glass(doctor, w.B, reason('Patient unconscious in the emergency room'));
    t.equal(granted.statusCode, 201, granted.body);
    const params = Object.fromEntries((granted.json().parameter as J[]).map((p) => [p.name, p]));
    const minutes = (Date.parse(params.expires.valueInstant) - Date.now()) / 60_000;
    t.ok(minutes > 29 && minutes <= 30, `expires in ${minutes.toFixed(1)} minutes`);
    const read = await w.inject(doctor, { method: 'GET', url: condition });
    t.equal(read.statusCode, 200, 'the record opens on the next request');
    const search = await w.inject(doctor, { method: 'GET', url: `/fhir/Observation?patient=${w.B}` });
    t.ok(search.json().entry.length >= 2);
    // the refused attempts before the grant are on B's record too (success 0); these are the accesses
    const rows = await h.db('security_logs').where({ user_id: doctor.userId, patient_id: w.B, success: true }).orderBy('seq');
    t.same(rows.map((r) => r.action), ['break-glass', 'read', 'search']);
    t.ok(rows.every((r) => Number(r.break_glass) === 1), 'every access under the grant is flagged');
    const a = await w.inject(doctor, { method: 'GET', url: `/fhir/Condition?patient=${w.A},${w.B}` });
    t.equal(a.statusCode, 200);
    t.notOk((a.json().entry as J[]).some((e) => e.resource.subject?.reference === `Patient/${w.A}`), 'only the patient of the grant opens');
    const write = await w.inject(doctor, { method: 'POST', url: '/fhir/Condition', payload: bodies.Condition(w.B, doctor.userId!) });
    t.equal(write.statusCode, 201, 'the doctor may treat the patient');
    t.equal(Number((await h.db('security_logs').where({ action: 'create', resource_id: write.json().id }).first()).break_glass), 1);
    // a grant does not let its holder assign themselves: no appointment, encounter, care team or primary doctor
    const selfAssign = [
      ['Appointment', bodies.Appointment(w.B, doctor.userId!)],
      ['Encounter', bodies.Encounter(w.B, doctor.userId!)],
      ['CareTeam', bodies.CareTeam(w.B, doctor.userId!)],
    ] as const;
    for (const [type, body] of selfAssign) {
      t.equal((await w.inject(doctor, { method: 'POST', url: `/fhir/${type}`, payload: body })).statusCode, 422, `no ${type} under a grant`);
    }
    const team = (await h.fhir({ method: 'GET', url: `/fhir/CareTeam/${w.of.CareTeam!.B}` })).json() as J;
    const edit = await w.inject(doctor, { method: 'PUT', url: `/fhir/CareTeam/${team.id}`, payload: { ...team, participant: [{ member: { reference: `Practitioner/${doctor.userId}` } }] } });
    t.equal(edit.statusCode, 404, "nor change the patient's care team");
    const patient = (await w.inject(doctor, { method: 'GET', url: `/fhir/Patient/${w.B}` })).json() as J;
    t.equal((await w.inject(doctor, { method: 'PUT', url: `/fhir/Patient/${w.B}`, payload: { ...patient, generalPractitioner: [{ reference: `Practitioner/${doctor.userId}` }] } })).statusCode, 404, 'nor make themselves its primary doctor');
    t.equal((await h.db('patient_assignments').where({ user_id: doctor.userId, patient_id: w.B })).length, 0, 'no assignment was made');
    // other accesses are not flagged
    await w.inject(doctor, { method: 'GET', url: `/fhir/Practitioner/${w.doctorA}` });
    t.equal(Number((await h.db('security_logs').where({ user_id: doctor.userId, resource_id: w.doctorA }).first()).break_glass), 0);
  });

  t.test('a grant made on one process counts on another that had the session cached', async (t) => {
    const other = await buildApp({ config: h.config, db: h.db, logger: false });
    t.teardown(() => other.close());
    const url = `/fhir/Condition/${w.of.Condition!.B}`;
    const read = (app: typeof other) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${nurse.token}` } });
    t.equal((await read(other)).statusCode, 404, 'the other process caches the nurse session');
    t.equal((await glass(nurse, w.B, reason('rapid response call'))).statusCode, 201);
    // the embedded default is one process (SQLite): a second app there has its own in-process bus
    if (!process.env.DATABASE_URL || !process.env.REDIS_URL) return;
    const deadline = Date.now() + 2000;
    let status = 0;
    while (Date.now() < deadline && (status = (await read(other)).statusCode) !== 200) await new Promise((r) => setTimeout(r, 20));
    t.equal(status, 200, 'the other process sees the grant (revocation bus)');
  });

  t.test('an expired grant closes the record again', async (t) => {
    await h.db('break_glass_grants').where({ user_id: doctor.userId }).update({ expires_at: '2000-01-01 00:00:00' });
    // the process drops the doctor's cached session when told (as an admin change would)
    await h.app.revocations.publish(`user:${doctor.userId}`);
    t.equal((await w.inject(doctor, { method: 'GET', url: condition })).statusCode, 404);
  });

  t.test('admins review grants', async (t) => {
    const list = await h.app.inject({ method: 'GET', url: `/admin/break-glass?patient=${w.B}`, headers: { authorization: `Bearer ${h.token}` } });
    t.equal(list.statusCode, 200);
    const grants = list.json().grants as J[];
    t.ok(grants.length >= 2);
    t.match(grants.find((g) => g.user === doctor.userId), { patient: `Patient/${w.B}`, reason: 'Patient unconscious in the emergency room', active: false });
    const active = (await h.app.inject({ method: 'GET', url: `/admin/break-glass?active=true&user=${nurse.userId}`, headers: { authorization: `Bearer ${h.token}` } })).json();
    t.equal(active.grants.length, 1);
    const page = (await h.app.inject({ method: 'GET', url: `/admin/break-glass?patient=${w.B}&limit=1`, headers: { authorization: `Bearer ${h.token}` } })).json();
    t.equal(page.grants.length, 1);
    const rest = (await h.app.inject({ method: 'GET', url: `/admin/break-glass?patient=${w.B}&limit=1&cursor=${page.next}`, headers: { authorization: `Bearer ${h.token}` } })).json();
    t.not(rest.grants[0].id, page.grants[0].id);
    const refused = await h.app.inject({ method: 'GET', url: '/admin/break-glass', headers: { authorization: `Bearer ${doctor.token}` } });
    t.equal(refused.statusCode, 403);
    t.equal(refused.json().resourceType, 'OperationOutcome');
    t.ok(await h.db('security_logs').where({ user_id: h.userId, action: 'break-glass-review' }).first(), 'the review is audited');
  });
});
