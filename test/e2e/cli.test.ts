/**
 * The real `hms` command in child processes: `start` migrates and serves over real HTTP,
 * `create-admin` works next to it, SIGTERM stops it, `jobs run` and `jobs status` work beside the
 * database, and a bad PORT fails with one clear line. Accounts and seeding are in
 * cli-accounts.test.ts (two files: each stays well inside tap's per-file timeout on the loaded CI
 * machine). Runs on MariaDB when DATABASE_URL is set (passed through), else on SQLite in a temp dir.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { childEnv, freePort, hms, within} from '../helpers/processes.js';
import { ADMIN_PASSWORD, tempDir, waitForHealth } from '../helpers/cli.js';

t.test('hms start migrates, serves, creates an admin alongside, serves FHIR over HTTP and stops on SIGTERM', async (t) => {
  const port = await freePort();
  const env = childEnv({ HMS_DATA_DIR: tempDir(t), PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  const server = hms(t, ['start'], env);
  await waitForHealth(`${base}/health`, server);

  const health = await fetch(`${base}/health`);
  t.equal(health.status, 200, '/health answers 200');
  t.match(await health.json(), { status: 'ok' });
  await within((async () => { while (!server.stdout().includes('create-admin')) await new Promise((r) => setTimeout(r, 50)); })(), 5000, 'the banner');
  t.ok(server.stdout().includes(`${base}/fhir`), 'prints the FHIR base URL');
  t.match(server.stdout(), /create-admin --email \S+ --password/, 'says how to create an admin');

  const email = `e2e-${randomUUID()}@cli.test.example.org`;
  const create = hms(t, ['create-admin', '--email', email, '--password', ADMIN_PASSWORD, '--name', 'E2E Admin'], env);
  const created = await within(create.exited, 30_000, 'create-admin exiting');
  t.equal(created.code, 0, `create-admin exits 0 (stderr: ${create.stderr()})`);
  t.ok(create.stdout().includes(email), 'and reports the admin it created');

  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: ADMIN_PASSWORD }) });
  t.equal(login.status, 200, 'the new admin logs in over HTTP');
  const { access_token: token, token_type: tokenType } = (await login.json()) as { access_token: string; token_type: string };
  t.equal(tokenType, 'Bearer');
  t.match(token, /^[A-Za-z0-9_-]{43}$/);
  const auth = { authorization: `Bearer ${token}` };

  const family = `E2e-${randomUUID().slice(0, 8)}`;
  const post = await fetch(`${base}/fhir/Patient`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', name: [{ family, given: ['Eve'] }], gender: 'female', birthDate: '1990-04-05' }),
  });
  t.equal(post.status, 201, 'POST /fhir/Patient creates');
  const location = post.headers.get('location');
  t.ok(location, 'with a Location header');
  t.match(location, new RegExp(`^${base}/fhir/Patient/[^/]+/_history/1$`), 'naming the new version under the base URL');
  const createdPatient = (await post.json()) as { id: string };

  const read = await fetch(`${base}/fhir/Patient/${createdPatient.id}`, { headers: auth });
  t.equal(read.status, 200, 'GET it back');
  t.match(read.headers.get('content-type'), /^application\/fhir\+json/);
  t.match(await read.json(), { resourceType: 'Patient', id: createdPatient.id, name: [{ family }] });
  const vread = await fetch(location!, { headers: auth });
  t.equal(vread.status, 200, 'GET the Location');

  const unauth = await fetch(`${base}/fhir/Patient/${createdPatient.id}`);
  t.equal(unauth.status, 401, 'and not without the token');

  // lab results: processed by the jobs `hms start` runs in-process
  const mrn = `E2E-${randomUUID().slice(0, 8)}`;
  const labPatient = await fetch(`${base}/fhir/Patient`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:e2e:mrn', value: mrn }], name: [{ family, given: ['Lab'] }], gender: 'female', birthDate: '1962-03-20' }),
  });
  t.equal(labPatient.status, 201);
  const message = ['MSH|^~\\&|E2E LAB|E2E|HMS|HOSP|20261130090000||ORU^R01|E2E-1|P|2.5.1', `PID|1||${mrn}^^^HOSP^MR||${family}^Lab||19620320|F`,
    'OBR|1|P1|F1|2345-7^Glucose^LN|||20261130080000', 'OBX|1|NM|2345-7^Glucose^LN||182|mg/dL^mg/dL^UCUM|70-105|H|||F|||20261130080000'].join('\r');
  const pushed = await fetch(`${base}/ingest/lab-results`, { method: 'POST', headers: { ...auth, 'content-type': 'x-application/hl7-v2+er7' }, body: message });
  t.equal(pushed.status, 202, 'a lab message is accepted');
  const statusUrl = `${base}${pushed.headers.get('location')}`;
  let labStatus: { status?: string; result?: { Observation?: string[] }; outcome?: unknown } = {};
  await within((async () => {
    while (labStatus.status !== 'done' && labStatus.status !== 'failed') {
      await new Promise((r) => setTimeout(r, 100));
      labStatus = (await (await fetch(statusUrl, { headers: auth })).json()) as typeof labStatus;
    }
  })(), 20_000, 'the lab message being processed in-process');
  t.equal(labStatus.status, 'done', JSON.stringify(labStatus.outcome));
  t.equal(labStatus.result?.Observation?.length, 1, 'its result written');

  server.child.kill('SIGTERM');
  const stopped = await within(server.exited, 10_000, 'the server stopping after SIGTERM');
  t.equal(stopped.code, 0, 'SIGTERM stops the server with exit code 0');
  await t.rejects(fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) }), 'nothing listens any more');
});

t.test('hms jobs run and hms jobs status work beside the database', async (t) => {
  const env = childEnv({ HMS_DATA_DIR: tempDir(t) });
  const migrate = hms(t, ['migrate'], env);
  t.equal((await within(migrate.exited, 60_000, 'migrate')).code, 0);
  const run = hms(t, ['jobs', 'run', 'session-expiry'], env);
  const ran = await within(run.exited, 60_000, 'jobs run exiting');
  t.equal(ran.code, 0, run.stderr());
  t.match(JSON.parse(run.stdout()), { queue: 'session-expiry', result: {} }, 'prints the run as JSON');
  const bad = hms(t, ['jobs', 'run', 'no-such-queue'], env);
  t.equal((await within(bad.exited, 30_000, 'jobs run exiting')).code, 1);
  t.match(bad.stderr(), /queue name/);
  const status = hms(t, ['jobs', 'status'], env);
  t.equal((await within(status.exited, 60_000, 'jobs status exiting')).code, 0, status.stderr());
  for (const q of ['lab-ingest', 'overdue-billing', 'session-expiry', 'audit-archive', 'outbox-sweep', 'bulk-export']) t.match(status.stdout(), new RegExp(`^${q}$`, 'm'));
  t.match(status.stdout(), /session-expiry\n[^\n]*\n[^\n]*\n  last run: completed/, 'the last run of session-expiry');
});

t.test('hms serve with PORT=abc exits non-zero with one stderr line naming PORT', async (t) => {
  const run = hms(t, ['serve'], childEnv({ HMS_DATA_DIR: tempDir(t), PORT: 'abc' }));
  const { code } = await within(run.exited, 30_000, 'hms serve exiting');
  t.not(code, 0, 'exit code is not 0');
  t.not(code, null, 'it exited by itself');
  const lines = run.stderr().split('\n').filter((l) => l.trim() !== '');
  t.equal(lines.length, 1, `exactly one stderr line: ${JSON.stringify(run.stderr())}`);
  t.match(lines[0], /\bPORT\b/, 'naming PORT');
  t.notMatch(run.stderr(), /\n\s+at /, 'no stack trace');
  t.equal(run.stdout(), '', 'nothing on stdout');
});
