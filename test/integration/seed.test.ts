/**
 * `hms seed`'s rows are native rows (no kept versions): every one must read through its mapper,
 * be found by search (index rows included) and come back in $everything.
 */
import t from 'tap';
import { testApp } from '../helpers/app.js';
import { seedDatabase } from '../../src/db/seed/seed-all.js';
import { validateResource } from '../../src/fhir/validate.js';

interface Entry { resource: { resourceType: string; id: string }; search?: { mode: string } }

t.test('seeded patients read, search and $everything through the API', async (t) => {
  const h = await testApp(t);
  const before = Number(((await h.db('patients').count({ n: '*' }))[0] as { n: number }).n);
  const stats = await seedDatabase(h.db, { patients: 6, batch: 4 });
  t.equal(stats.patients, 6);
  t.ok(stats.rows >= 6 * 70, `${stats.rows} rows`);
  t.ok(stats.indexRows > 0, `${stats.indexRows} index rows`);
  const ids = ((await h.db('patients').orderBy('created_at', 'desc').orderBy('id', 'desc').limit(6).select('id', 'last_name')) as { id: string; last_name: string }[]);
  t.equal(ids.length, 6);
  t.equal(Number(((await h.db('patients').count({ n: '*' }))[0] as { n: number }).n), before + 6);

  const patient = ids[0]!;
  const byName = await h.fhir({ method: 'GET', url: `/fhir/Patient?family=${patient.last_name}&_count=100` });
  t.equal(byName.statusCode, 200);
  t.ok((byName.json().entry as Entry[]).some((e) => e.resource.id === patient.id), 'the index-backed family search finds a seeded patient');

  const history = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient.id}/_history` });
  t.equal(history.statusCode, 200);
  t.equal(history.json().entry?.length, 1, 'a natively written row has its current state as its one version');
  t.equal(history.json().entry[0].resource.id, patient.id);

  const seededDoctors = h.db('users').where('email', 'like', 'seed-%@hms.example.org').select('id');
  const appointments = (await h.db('appointments').whereIn('doctor_id', seededDoctors).select('doctor_id', 'appointment_date', 'appointment_time')) as Record<string, string>[];
  const slots = new Set(appointments.map((a) => `${a.doctor_id} ${a.appointment_date} ${a.appointment_time}`));
  t.equal(slots.size, appointments.length, 'no doctor is double-booked by the seed');

  const obs = await h.fhir({ method: 'GET', url: `/fhir/Observation?patient=${patient.id}&code=http://loinc.org|8867-4` });
  t.equal(obs.statusCode, 200, obs.body);
  t.equal((obs.json().entry as Entry[]).length, 5, 'one heart rate per visit');

  const everything = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient.id}/$everything?_count=1000` });
  t.equal(everything.statusCode, 200, everything.body);
  const counts: Record<string, number> = {};
  for (const e of everything.json().entry as Entry[]) if (e.search?.mode === 'match') counts[e.resource.resourceType] = (counts[e.resource.resourceType] ?? 0) + 1;
  t.match(counts, { Patient: 1, Encounter: 5, Condition: 3, MedicationRequest: 2, Invoice: 2, Coverage: 1, Appointment: 1 });
  t.ok((counts.Observation ?? 0) >= 45, `${counts.Observation} observations`);

  // every seeded resource reads as valid FHIR: read each type's first one by id
  for (const e of (everything.json().entry as Entry[]).filter((x) => x.search?.mode === 'match')) {
    const read = await h.fhir({ method: 'GET', url: `/fhir/${e.resource.resourceType}/${e.resource.id}` });
    if (read.statusCode !== 200) { t.fail(`${e.resource.resourceType}/${e.resource.id}: ${read.statusCode} ${read.body}`); continue; }
    try {
      validateResource(e.resource.resourceType, read.json());
    } catch (err) {
      t.fail(`${e.resource.resourceType}/${e.resource.id} is not valid FHIR: ${JSON.stringify((err as { issues?: unknown }).issues ?? String(err))}`);
    }
  }
  t.pass('every resource of the compartment reads as valid FHIR R4');
});

t.test('seeding again after patients were deleted books no doctor twice', async (t) => {
  const h = await testApp(t);
  await seedDatabase(h.db, { patients: 3, batch: 3 });
  // a deleted patient makes the count fall below the numbers in use
  const [oldest] = (await h.db('patients').where('email', 'like', '%@example.org').orderBy('created_at').orderBy('id').limit(1).pluck('id')) as string[];
  await h.db('patients').where({ id: oldest }).delete();
  await seedDatabase(h.db, { patients: 3, batch: 3 });
  const seededDoctors = h.db('users').where('email', 'like', 'seed-%@hms.example.org').select('id');
  const appointments = (await h.db('appointments').whereIn('doctor_id', seededDoctors).select('doctor_id', 'appointment_date', 'appointment_time')) as Record<string, string>[];
  const slots = new Set(appointments.map((a) => `${a.doctor_id} ${a.appointment_date} ${a.appointment_time}`));
  t.equal(slots.size, appointments.length, 'no doctor is double-booked');
});
