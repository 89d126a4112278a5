/**
 * `hms seed`'s rows are native rows (no kept versions): every one must read through its mapper,
 * be found by search (index rows included) and come back in $everything.
 */
import t from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { seedDatabase } from '../../src/db/seed/seed-all.js';
import { validateResource } from '../../src/fhir/validate.js';
import { CVX, IMMUNIZATION_YEARS } from '../../src/db/seed/generate.js';

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
  t.match(counts, { Patient: 1, Encounter: 5, Condition: 3, MedicationRequest: 2, Invoice: 2, Coverage: 1, Appointment: 1, Immunization: 3, Procedure: 2, AllergyIntolerance: 1, Claim: 1 });
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

t.test('the run that creates the staff and the runs after it give patients the same doctors', async (t) => {
  const h = await testApp(t);
  // patient 2 of the first run and patient 12 of the second met in one slot when the first run
  // took its doctors in creation order and later runs in email order
  await seedDatabase(h.db, { patients: 3, batch: 3 });
  await seedDatabase(h.db, { patients: 10, batch: 10 });
  const seededDoctors = h.db('users').where('email', 'like', 'seed-%@hms.example.org').select('id');
  const appointments = (await h.db('appointments').whereIn('doctor_id', seededDoctors).select('doctor_id', 'appointment_date', 'appointment_time')) as Record<string, string>[];
  const slots = new Set(appointments.map((a) => `${a.doctor_id} ${a.appointment_date} ${a.appointment_time}`));
  t.equal(slots.size, appointments.length, 'no doctor is double-booked');
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

const INDEX_TABLES = ['search_string', 'search_token', 'search_date', 'search_number', 'search_quantity'];

/** A resource's index rows in every index table, without their ids, sorted: comparable between two resources. */
async function indexOf(db: TestApp['db'], type: string, id: string): Promise<string[]> {
  const out: string[] = [];
  for (const table of INDEX_TABLES) {
    const rows = (await db(table).where({ resource_type: type, resource_id: id })) as Record<string, unknown>[];
    for (const { id: _rowId, resource_id: _id, ...rest } of rows) {
      out.push(`${table} ${JSON.stringify(Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'number' || typeof v === 'bigint' ? String(v) : v]).sort()))}`);
    }
  }
  return out.sort();
}

t.test('seeded generic-store resources read, search, and are stored and indexed as an API create stores them', async (t) => {
  const h = await testApp(t);
  const now = Date.UTC(2026, 5, 15, 12);
  const stats = await seedDatabase(h.db, { patients: 4, batch: 3, now });
  t.same(stats.generic.byType, { Immunization: 12, Procedure: 8, AllergyIntolerance: 4, Claim: 4 }, 'per patient: 3 Immunizations, 2 Procedures, an AllergyIntolerance and a Claim');
  t.equal(stats.byTable.fhir_resources, 28);
  t.equal(stats.byTable.resource_history, 28, 'a version 1 for each');
  t.ok(stats.generic.indexRows > 28 * 3, `${stats.generic.indexRows} index rows`);
  t.ok((stats.generic.byTable.search_date ?? 0) >= 28, 'date index rows');

  // a patient of this run (a shared database holds others): its resources carry this run's fixed time
  const patient = String((await h.db('fhir_resources').where({ resource_type: 'Immunization', created_at: '2026-06-15 12:00:00' }).orderBy('id').first('patient_id')).patient_id);
  const stored = (await h.db('fhir_resources').where({ patient_id: patient }).orderBy('resource_type').orderBy('id')) as Record<string, unknown>[];
  t.same([...new Set(stored.map((r) => r.resource_type))], ['AllergyIntolerance', 'Claim', 'Immunization', 'Procedure'], 'patient_id is the compartment patient of every type');
  t.equal(stored.length, 7);

  // each reads back over the API as valid FHIR, with version 1 and its history
  for (const row of stored) {
    const url = `/fhir/${String(row.resource_type)}/${String(row.id)}`;
    const read = await h.fhir({ method: 'GET', url });
    if (read.statusCode !== 200) { t.fail(`${url}: ${read.statusCode} ${read.body}`); continue; }
    const body = read.json();
    t.equal(body.meta?.versionId, '1');
    t.equal(body.meta?.lastUpdated, '2026-06-15T12:00:00Z');
    try { validateResource(body.resourceType, body); } catch (err) { t.fail(`${url} is not valid FHIR: ${JSON.stringify((err as { issues?: unknown }).issues ?? String(err))}`); }
    const history = await h.fhir({ method: 'GET', url: `${url}/_history` });
    t.equal(history.statusCode, 200);
    t.equal(history.json().entry?.length, 1, `${url}: one version`);
  }

  // search: by patient, and by patient and date
  const immunizations = stored.filter((r) => r.resource_type === 'Immunization').map((r) => JSON.parse(String(r.resource)) as { id: string; occurrenceDateTime: string; vaccineCode: { coding: { system: string; code: string }[] } });
  t.equal(immunizations.length, 3);
  const from = now - IMMUNIZATION_YEARS * 365 * 86_400_000;
  for (const i of immunizations) {
    t.ok(Date.parse(i.occurrenceDateTime) >= from && Date.parse(i.occurrenceDateTime) <= now, `${i.occurrenceDateTime} within the last ${IMMUNIZATION_YEARS} years`);
    t.equal(i.vaccineCode.coding[0]!.system, CVX);
  }
  const ids = async (url: string): Promise<string[]> => {
    const res = await h.fhir({ method: 'GET', url });
    if (res.statusCode !== 200) t.fail(`${url}: ${res.statusCode} ${res.body}`);
    return ((res.json().entry ?? []) as Entry[]).filter((e) => e.search?.mode === 'match').map((e) => e.resource.id).sort();
  };
  t.same(await ids(`/fhir/Immunization?patient=${patient}`), immunizations.map((i) => i.id).sort(), 'Immunization?patient=X finds its 3');
  t.same(await ids(`/fhir/Immunization?patient=Patient/${patient}`), immunizations.map((i) => i.id).sort());
  const dates = immunizations.map((i) => i.occurrenceDateTime).sort();
  const since = dates[1]!.slice(0, 10);
  const expected = immunizations.filter((i) => i.occurrenceDateTime.slice(0, 10) >= since).map((i) => i.id).sort();
  t.equal(expected.length, 2, 'the date splits them');
  t.same(await ids(`/fhir/Immunization?patient=${patient}&date=ge${since}`), expected, 'Immunization?patient=X&date=ge... finds those on or after the day');
  t.same(await ids(`/fhir/Immunization?patient=${patient}&date=ge${new Date(now + 86_400_000).toISOString().slice(0, 10)}`), [], 'none after today');
  const code = immunizations[0]!.vaccineCode.coding[0]!.code;
  t.ok((await ids(`/fhir/Immunization?patient=${patient}&vaccine-code=${CVX}|${code}`)).includes(immunizations[0]!.id), 'vaccine-code');
  t.equal((await ids(`/fhir/Procedure?subject=Patient/${patient}&date=ge1900-01-01`)).length, 2, 'Procedure by subject and performed date');
  t.equal((await ids(`/fhir/AllergyIntolerance?patient=${patient}`)).length, 1);
  t.equal((await ids(`/fhir/Claim?patient=${patient}`)).length, 1);

  // the seed writes what the API's create writes for the same resource: the same row and index
  for (const row of stored) {
    const type = String(row.resource_type);
    const { id: _id, meta: _meta, ...body } = JSON.parse(String(row.resource)) as Record<string, unknown>;
    const created = await h.fhir({ method: 'POST', url: `/fhir/${type}`, payload: body });
    if (created.statusCode !== 201) { t.fail(`${type} create: ${created.statusCode} ${created.body}`); continue; }
    const newId = String(created.json().id);
    const api = (await h.db('fhir_resources').where({ resource_type: type, id: newId }).first()) as Record<string, unknown>;
    t.equal(api.patient_id, row.patient_id, `${type}: the same patient_id`);
    t.same({ ...JSON.parse(String(api.resource)), id: 'x' }, { ...JSON.parse(String(row.resource)), id: 'x' }, `${type}: the same stored JSON`);
    t.same(await indexOf(h.db, type, String(row.id)), await indexOf(h.db, type, newId), `${type}: the same index rows`);
  }
});
