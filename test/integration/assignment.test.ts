/**
 * Assignment follows the tables it is derived from, whoever writes them: patient_assignments is
 * kept by triggers, so a change made with plain SQL (a worker, `hms seed`, an operator's fix)
 * takes effect on the next request exactly as one made through the API.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { bodies, makePractitioner } from '../helpers/access-world.js';
import { makePatient } from '../helpers/world.js';
import { startSession } from '../../src/auth/sessions.js';
import { seedDatabase } from '../../src/db/seed/seed-all.js';

const sql = (d: Date): string => d.toISOString().slice(0, 19).replace('T', ' ');

t.test('assignment from native writes', async (t) => {
  const h = await testApp(t);
  const doctor = await makePractitioner(h);
  const token = await startSession(h.db, doctor, { ttlSeconds: 3600 });
  const reads = async (patient: string) => (await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}`, token })).statusCode;
  const rows = async (patient: string) => (await h.db('patient_assignments').where({ user_id: doctor, patient_id: patient })).map((r) => r.source).sort();

  t.test('primary doctor set, changed and cleared with SQL', async (t) => {
    const p = await makePatient(h);
    t.equal(await reads(p), 404);
    await h.db('patients').where({ id: p }).update({ primary_doctor_id: doctor });
    t.equal(await reads(p), 200);
    t.same(await rows(p), ['primary']);
    await h.db('patients').where({ id: p }).update({ primary_doctor_id: null });
    t.equal(await reads(p), 404);
    t.same(await rows(p), []);
  });

  t.test('appointments and visits, cancelled and removed', async (t) => {
    for (const [table, extra] of [
      ['appointments', { appointment_date: '2031-01-01', appointment_time: '09:00:00', appointment_type: 'consultation', created_by: h.userId }],
      ['visits', { visit_date: '2024-01-01', visit_time: '09:00:00', visit_type: 'routine' }],
    ] as const) {
      const p = await makePatient(h);
      const id = randomUUID();
      await h.db(table).insert({ id, patient_id: p, doctor_id: doctor, status: table === 'visits' ? 'in_progress' : 'scheduled', ...extra });
      t.equal(await reads(p), 200, `${table}: an open one assigns`);
      await h.db(table).where({ id }).update({ status: 'cancelled' });
      t.equal(await reads(p), 404, `${table}: a cancelled one does not`);
      await h.db(table).where({ id }).update({ status: 'completed' });
      t.equal(await reads(p), 200, `${table}: reopened`);
      await h.db(table).where({ id }).delete();
      t.equal(await reads(p), 404, `${table}: removed`);
      t.same(await rows(p), []);
    }
  });

  t.test('care teams: status, periods, members and the team itself', async (t) => {
    const p = await makePatient(h);
    const team = randomUUID();
    const now = Date.now();
    await h.db('care_teams').insert({ id: team, patient_id: p, status: 'proposed', version_id: 1 });
    await h.db('care_team_members').insert({ care_team_id: team, position: 0, user_id: doctor });
    t.equal(await reads(p), 404, 'a proposed team assigns no one');
    await h.db('care_teams').where({ id: team }).update({ status: 'active' });
    t.equal(await reads(p), 200, 'an active one does');
    await h.db('care_teams').where({ id: team }).update({ period_end: sql(new Date(now - 60_000)) });
    t.equal(await reads(p), 404, 'not after the team ended');
    await h.db('care_teams').where({ id: team }).update({ period_end: null });
    await h.db('care_team_members').where({ care_team_id: team }).update({ period_start: sql(new Date(now + 3_600_000)) });
    t.equal(await reads(p), 404, 'not before the membership starts');
    await h.db('care_team_members').where({ care_team_id: team }).update({ period_start: sql(new Date(now - 3_600_000)) });
    t.equal(await reads(p), 200);
    await h.db('care_team_members').where({ care_team_id: team }).delete();
    t.equal(await reads(p), 404, 'a member removed');
    await h.db('care_team_members').insert({ care_team_id: team, position: 3, user_id: doctor });
    t.equal(await reads(p), 200);
    await h.db('care_teams').where({ id: team }).delete();
    t.equal(await reads(p), 404, 'the team removed (its members cascade)');
    t.same(await rows(p), []);
  });

  t.test('an Observation whose source row moves to another patient moves with it, for access too', async (t) => {
    const mine = await makePatient(h, undefined, { generalPractitioner: [{ reference: `Practitioner/${doctor}` }] });
    const other = await makePatient(h);
    for (const body of [bodies['Observation (vital sign)'](mine, doctor), bodies['Observation (laboratory)'](mine, doctor)]) {
      const res = await h.fhir({ method: 'POST', url: '/fhir/Observation', payload: body });
      t.equal(res.statusCode, 201, res.body);
      const id = res.json().id as string;
      const url = `/fhir/Observation/${id}`;
      t.equal((await h.fhir({ method: 'GET', url, token })).statusCode, 200);
      const proj = await h.db('observations').where({ id }).first('source', 'source_id');
      await h.db(proj.source === 'vitals' ? 'vitals' : 'lab_results').where({ id: proj.source_id }).update({ patient_id: other });
      t.equal((await h.fhir({ method: 'GET', url, token })).statusCode, 404, `${proj.source}: out of the doctor's reach`);
      t.equal((await h.fhir({ method: 'GET', url })).json().subject.reference, `Patient/${other}`);
      t.equal((await h.db('observations').where({ id }).first('patient_id')).patient_id, other, 'the projection follows');
    }
  });

  t.test('the windows the check reads are patient_assignments counted down, after all of the above', async (t) => {
    const windows = (await h.db('patient_assignment_windows').select('user_id', 'patient_id', 'starts', 'ends', 'sources')) as Record<string, unknown>[];
    const counted = (await h.db('patient_assignments')
      .select('user_id', 'patient_id', h.db.raw("COALESCE(starts, '1000-01-01 00:00:00') as starts"), h.db.raw("COALESCE(ends, '9999-12-31 23:59:59') as ends"))
      .count({ sources: '*' }).groupBy('user_id', 'patient_id', h.db.raw("COALESCE(starts, '1000-01-01 00:00:00')"), h.db.raw("COALESCE(ends, '9999-12-31 23:59:59')"))) as Record<string, unknown>[];
    const key = (r: Record<string, unknown>) => `${String(r.user_id)} ${String(r.patient_id)} ${String(r.starts).slice(0, 19)} ${String(r.ends).slice(0, 19)} ${Number(r.sources)}`;
    t.same(windows.map(key).sort(), counted.map(key).sort());
  });

  t.test('hms seed: its patients are assigned to their seeded doctors', async (t) => {
    await seedDatabase(h.db, { patients: 3, batch: 3 });
    const seeded = await h.db('patients').whereNotNull('primary_doctor_id').whereNotIn('id', h.db('patient_assignments').where('source', 'primary').select('patient_id')).first('id');
    t.notOk(seeded, 'every seeded primary doctor has its assignment row');
    const visit = await h.db('visits as v').join('patient_assignments as a', (j) => { j.on('a.source_id', '=', 'v.id').andOnVal('a.source', '=', 'visit'); }).first('v.id');
    t.ok(visit, 'seeded visits assign their doctors');
  });
});
