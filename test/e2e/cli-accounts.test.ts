/**
 * The real `hms` command in child processes, for accounts and data: `create-user` next to a
 * running server (a doctor is Practitioner version 1 and logs in; a patient account links its
 * record once), `create-admin` refusing bad input with a clear message, `seed` and its bad input.
 * Runs on MariaDB when DATABASE_URL is set (passed through), else on SQLite in a temp dir.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { childEnv, freePort, hms, within} from '../helpers/processes.js';
import { ADMIN_PASSWORD, tempDir, waitForHealth } from '../helpers/cli.js';

t.test('hms create-user next to a running server: a doctor is Practitioner version 1 and logs in, a patient account links its record once', async (t) => {
  const port = await freePort();
  const env = childEnv({ HMS_DATA_DIR: tempDir(t), PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  const server = hms(t, ['start'], env);
  await waitForHealth(`${base}/health`, server);
  const run = async (args: string[]) => {
    const r = hms(t, args, env);
    const { code } = await within(r.exited, 30_000, `${args[0]} exiting`);
    return { code, stdout: r.stdout(), stderr: r.stderr() };
  };
  const loginAs = async (email: string, password: string) => fetch(`${base}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }),
  });

  const adminEmail = `e2e-admin-${randomUUID()}@cli.test.example.org`;
  t.equal((await run(['create-admin', '--email', adminEmail, '--password', ADMIN_PASSWORD])).code, 0, 'create-admin still works');
  const auth = { authorization: `Bearer ${((await (await loginAs(adminEmail, ADMIN_PASSWORD)).json()) as { access_token: string }).access_token}` };

  const doctorEmail = `e2e-doctor-${randomUUID()}@cli.test.example.org`;
  const doctor = await run(['create-user', '--email', doctorEmail, '--password', ADMIN_PASSWORD, '--role', 'doctor', '--name', 'Dr E2E', '--department', 'Cardiology', '--specialization', 'Electrophysiology', '--phone', '555-0101']);
  t.equal(doctor.code, 0, `create-user exits 0 (stderr: ${doctor.stderr})`);
  const id = /Practitioner\/([0-9a-f-]{36})/.exec(doctor.stdout)?.[1];
  t.ok(id, `names the Practitioner: ${doctor.stdout}`);
  const read = await fetch(`${base}/fhir/Practitioner/${id}`, { headers: auth });
  t.equal(read.status, 200, 'the server reads it as a Practitioner');
  t.equal(read.headers.get('etag'), 'W/"1"', 'version 1');
  t.match(await read.json(), { name: [{ text: 'Dr E2E' }], qualification: [{ code: { text: 'Electrophysiology' } }] });
  const history = (await (await fetch(`${base}/fhir/Practitioner/${id}/_history`, { headers: auth })).json()) as { entry: unknown[] };
  t.equal(history.entry.length, 1, 'one version in its history');
  t.equal((await loginAs(doctorEmail, ADMIN_PASSWORD)).status, 200, 'the doctor logs in over HTTP');

  const patient = await fetch(`${base}/fhir/Patient`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Portal', given: ['Pat'] }], gender: 'female', birthDate: '1980-02-03' }),
  });
  const patientId = ((await patient.json()) as { id: string }).id;
  const patientEmail = `e2e-patient-${randomUUID()}@cli.test.example.org`;
  const linked = await run(['create-user', '--email', patientEmail, '--password', ADMIN_PASSWORD, '--role', 'patient', '--name', 'Pat Portal', '--patient', patientId]);
  t.equal(linked.code, 0, linked.stderr);
  t.ok(linked.stdout.includes(`linked to Patient/${patientId}`), linked.stdout);
  const twice = await run(['create-user', '--email', `e2e-second-${randomUUID()}@cli.test.example.org`, '--password', ADMIN_PASSWORD, '--role', 'patient', '--name', 'Second', '--patient', `Patient/${patientId}`]);
  t.not(twice.code, 0, 'a second link of the record fails');
  t.match(twice.stderr, /already linked/);

  const dup = await run(['create-user', '--email', doctorEmail.toUpperCase(), '--password', ADMIN_PASSWORD, '--role', 'finance', '--name', 'Dup']);
  t.not(dup.code, 0, 'a taken email fails');
  t.match(dup.stderr, /already has this email/);
  const missing = await run(['create-user', '--email', `e2e-x-${randomUUID()}@cli.test.example.org`, '--password', ADMIN_PASSWORD, '--name', 'No Role']);
  t.not(missing.code, 0);
  t.match(missing.stderr, /--role/);
  const badRole = await run(['create-user', '--email', `e2e-y-${randomUUID()}@cli.test.example.org`, '--password', ADMIN_PASSWORD, '--role', 'king', '--name', 'King']);
  t.not(badRole.code, 0);
  t.match(badRole.stderr, /role must be one of admin, doctor, nurse, patient, finance/);
  for (const r of [twice, dup, missing, badRole]) t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');

  server.child.kill('SIGTERM');
  await within(server.exited, 10_000, 'the server stopping');
});

t.test('hms create-admin with a 73-byte password exits non-zero with a clear message', async (t) => {
  const email = `e2e-long-${randomUUID()}@cli.test.example.org`;
  const password = 'a' + 'é'.repeat(36);
  t.equal(Buffer.byteLength(password), 73);
  const run = hms(t, ['create-admin', '--email', email, '--password', password], childEnv({ HMS_DATA_DIR: tempDir(t), PORT: String(await freePort()) }));
  const { code } = await within(run.exited, 30_000, 'create-admin exiting');
  t.not(code, 0, 'exit code is not 0');
  t.not(code, null, 'it exited by itself');
  t.match(run.stderr(), /password must be at most 72 bytes/, 'says the password is too long, in bytes');
  t.notMatch(run.stderr(), /\n\s+at /, 'no stack trace');
  t.notOk(run.stdout().includes('Created admin'), 'no admin was created');
});

t.test('hms create-admin without --password exits non-zero and says what is missing', async (t) => {
  const run = hms(t, ['create-admin', '--email', `e2e-${randomUUID()}@cli.test.example.org`], childEnv({ HMS_DATA_DIR: tempDir(t) }));
  const { code } = await within(run.exited, 30_000, 'create-admin exiting');
  t.not(code, 0);
  t.match(run.stderr(), /--password/);
});

t.test('hms seed adds patients with their records and says how many rows it wrote', async (t) => {
  const run = hms(t, ['seed', '--patients', '3', '--batch', '2'], childEnv({ HMS_DATA_DIR: tempDir(t) }));
  const { code } = await within(run.exited, 60_000, 'seed exiting');
  t.equal(code, 0, run.stderr());
  t.match(run.stdout(), /Seeded 3 patients: \d+ rows \+ \d+ search index rows in [\d.]+ s \(\d+ rows\/s\)/);
});

t.test('hms seed with a bad count exits non-zero and says so', async (t) => {
  const run = hms(t, ['seed', '--patients', 'many'], childEnv({ HMS_DATA_DIR: tempDir(t) }));
  const { code } = await within(run.exited, 30_000, 'seed exiting');
  t.not(code, 0);
  t.match(run.stderr(), /--patients needs a whole number/);
});
