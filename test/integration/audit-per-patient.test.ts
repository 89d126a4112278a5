/**
 * Every access to patient data is on record before the answer, one security_logs row per patient
 * whose data was returned (so a patient's accounting of disclosures is a query on their id), with
 * the actor, role, request id and no search values; refusals are recorded too.
 */
import t from 'tap';
import { testApp } from '../helpers/app.js';
import { bodies, buildWorld, type Principal } from '../helpers/access-world.js';
import { hashToken, startSession } from '../../src/auth/sessions.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('audit rows per patient', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const { A, B } = w;
  const who = (name: string): Principal => w.principals.find((p) => p.name === name)!;
  const rowsOf = async (requestId: string) => (await h.db('security_logs').where({ request_id: requestId }).orderBy('seq')) as J[];
  const family = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${A}` })).json().name[0].family as string;

  t.test('a search that returns two patients writes one row for each, in its request', async (t) => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?_id=${A},${B}` });
    t.equal(res.json().entry.length, 2);
    const last = (await h.db('security_logs').where({ action: 'search', resource_type: 'Patient', user_id: h.userId }).orderBy('seq', 'desc').first()) as J;
    const byPatient = await rowsOf(String(last.request_id));
    t.same(byPatient.map((r) => r.patient_id).sort(), [A, B].sort());
    t.equal(new Set(byPatient.map((r) => r.request_id)).size, 1, 'one request id');
    t.ok(byPatient.every((r) => r.role === 'admin' && r.user_id === h.userId && Number(r.success) === 1));
  });

  t.test('includes count: the included resources of another patient give that patient a row', async (t) => {
    const obs = await w.post('Observation', { ...bodies['Observation (laboratory)'](A, w.doctorA), performer: [{ reference: `Patient/${B}` }] });
    await h.fhir({ method: 'GET', url: `/fhir/Observation?_id=${obs.id}&_include=Observation:performer` });
    const rows = (await h.db('security_logs').where({ action: 'search', resource_type: 'Observation', user_id: h.userId }).orderBy('seq', 'desc').limit(2)) as J[];
    t.same(rows.map((r) => r.patient_id).sort(), [A, B].sort());
    const data = (r: J) => (typeof r.additional_data === 'string' ? JSON.parse(r.additional_data) : r.additional_data) as J;
    t.same(data(rows.find((r) => r.patient_id === B)!).resources, [`Patient/${B}`]);
    t.same(data(rows.find((r) => r.patient_id === A)!).resources, [`Observation/${obs.id}`]);
  });

  t.test('reads, vreads, history and $everything name their patient; search values are not kept', async (t) => {
    const doctor = who('assigned doctor');
    await w.inject(doctor, { method: 'GET', url: `/fhir/Condition/${w.of.Condition!.A}` });
    await w.inject(doctor, { method: 'GET', url: `/fhir/Condition/${w.of.Condition!.A}/_history/1` });
    await w.inject(doctor, { method: 'GET', url: `/fhir/Condition/${w.of.Condition!.A}/_history` });
    await w.inject(doctor, { method: 'GET', url: `/fhir/Patient/${A}/$everything` });
    await w.inject(doctor, { method: 'GET', url: `/fhir/Patient?family=${encodeURIComponent(family)}` });
    const rows = (await h.db('security_logs').where({ user_id: doctor.userId }).orderBy('seq', 'desc').limit(5)) as J[];
    t.same(rows.map((r) => r.action).reverse(), ['read', 'vread', 'history', 'everything', 'search']);
    t.ok(rows.every((r) => r.patient_id === A && r.role === 'doctor'), 'each names patient A');
    t.notOk(rows.some((r) => String(r.additional_data).includes(family)), 'the family name searched for is not stored');
  });

  t.test('versions of a resource that moved are audited under the patient they belonged to', async (t) => {
    const obs = await w.post('Observation', bodies['Observation (vital sign)'](B, w.doctorB));
    const moved = await h.fhir({ method: 'PUT', url: `/fhir/Observation/${obs.id}`, payload: { ...bodies['Observation (vital sign)'](A, w.doctorA), id: obs.id } });
    t.equal(moved.statusCode, 200);
    const v1 = await h.fhir({ method: 'GET', url: `/fhir/Observation/${obs.id}/_history/1` });
    t.equal(v1.json().subject.reference, `Patient/${B}`);
    const vread = (await h.db('security_logs').where({ action: 'vread', resource_id: obs.id }).orderBy('seq', 'desc').first()) as J;
    t.equal(vread.patient_id, B, "vread of B's version names B");
    await h.fhir({ method: 'GET', url: `/fhir/Observation/${obs.id}/_history` });
    const last = (await h.db('security_logs').where({ action: 'history', resource_id: obs.id }).orderBy('seq', 'desc').first()) as J;
    const history = (await h.db('security_logs').where({ request_id: last.request_id })) as J[];
    t.same(history.map((r) => r.patient_id).sort(), [A, B].sort(), 'history names both patients');
  });

  t.test('a search that returns nothing still leaves one row (no patient)', async (t) => {
    const stranger = who('unassigned doctor');
    await w.inject(stranger, { method: 'GET', url: `/fhir/Condition?patient=${B}` });
    const row = (await h.db('security_logs').where({ user_id: stranger.userId, action: 'search' }).orderBy('seq', 'desc').first()) as J;
    t.equal(row.patient_id, null);
    t.match(typeof row.additional_data === 'string' ? JSON.parse(row.additional_data) : row.additional_data, { returned: 0 });
  });

  t.test('refusals are recorded: 403 by role, 404 out of reach', async (t) => {
    const finance = who('finance');
    const stranger = who('unassigned doctor');
    t.equal((await w.inject(finance, { method: 'GET', url: `/fhir/Condition/${w.of.Condition!.A}` })).statusCode, 403);
    t.equal((await w.inject(stranger, { method: 'GET', url: `/fhir/Condition/${w.of.Condition!.B}` })).statusCode, 404);
    const refused = async (userId: string) => (await h.db('security_logs').where({ user_id: userId, action: 'refused' }).orderBy('seq', 'desc').first()) as J;
    t.match(await refused(finance.userId!), { success: 0, failure_reason: '403 forbidden', resource_type: 'Condition', resource_id: w.of.Condition!.A, role: 'finance' });
    t.match(await refused(stranger.userId!), { success: 0, failure_reason: '404 not-found', resource_type: 'Condition', resource_id: w.of.Condition!.B });
  });

  t.test("a system client's accesses name the client and its role", async (t) => {
    const lab = who('lab client');
    await w.inject(lab, { method: 'GET', url: `/fhir/Patient/${B}` });
    const row = (await h.db('security_logs').where({ action: 'read', resource_id: B }).whereNotNull('client_id').orderBy('seq', 'desc').first()) as J;
    t.match(row, { role: 'system', user_id: null, patient_id: B });
  });

  t.test('a token of a session that expired, idled out or ended is refused and recorded as such', async (t) => {
    const cases = [
      { set: { expires_at: '2001-01-01 00:00:00' }, action: 'session-expired', reason: 'absolute expiry' },
      { set: { last_activity: '2001-01-01 00:00:00' }, action: 'session-expired', reason: 'idle timeout (automatic logoff)' },
      { set: { is_active: false }, action: 'session-ended', reason: 'logged out or revoked' },
    ];
    for (const c of cases) {
      const token = await startSession(h.db, h.userId, { ttlSeconds: 600 });
      await h.db('user_sessions').where({ session_token: hashToken(token) }).update(c.set);
      const res = await h.fhir({ method: 'GET', url: `/fhir/Patient/${A}`, token });
      t.equal(res.statusCode, 401, c.action);
      const row = (await h.db('security_logs').where({ user_id: h.userId, success: false }).orderBy('seq', 'desc').first()) as J;
      t.match(row, { action: c.action, failure_reason: c.reason }, c.reason);
    }
  });

  t.test("a patient's accounting of disclosures is a query on their id", async (t) => {
    const log = (await h.fhir({ method: 'GET', url: `/fhir/AuditEvent?patient=${A}&_count=200` })).json();
    const actions = new Set((log.entry as J[]).map((e) => e.resource.subtype[0].code));
    for (const a of ['read', 'vread', 'history', 'everything', 'search']) t.ok(actions.has(a), `${a} is in A's accounting`);
  });
});
