/**
 * The first run: `hms start` on an empty embedded database loads the demo data and prints a login
 * per role and the lab client's key file; each login works over HTTP with its role's access; the
 * lab client gets a token with `hms client-token`; a second start loads nothing; HMS_DEMO=0 and
 * DATABASE_URL turn it off. Always on SQLite (the demo is the embedded default's).
 */
import t from 'tap';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, freePort, hms, stop, within } from '../helpers/processes.js';
import { tempDir, waitForHealth } from '../helpers/cli.js';
import { testApp } from '../helpers/app.js';
import { wantsDemo } from '../../src/demo.js';

const embedded = (extra: Record<string, string | undefined>) => childEnv({ DATABASE_URL: undefined, REDIS_URL: undefined, HMS_DEMO: undefined, ...extra });

async function banner(run: ReturnType<typeof hms>): Promise<string> {
  await within((async () => { while (!run.stdout().includes('create-admin --email')) await new Promise((r) => setTimeout(r, 50)); })(), 20_000, 'the banner');
  return run.stdout();
}

t.test('an empty embedded database: demo data, a login per role that works, a lab client token; a second start loads nothing', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = embedded({ HMS_DATA_DIR: dir, PORT: String(port) });
  const server = hms(t, ['start'], env);
  await waitForHealth(`${base}/health/ready`, server);
  const out = await banner(server);
  t.match(out, /Demo data loaded .*6 patients/);
  const logins = Object.fromEntries([...out.matchAll(/^ {4}(admin|doctor|nurse|patient|finance) +(\S+@demo\.hms\.example\.org) +(demo-\S+)/gm)].map((m) => [m[1]!, { email: m[2]!, password: m[3]! }]));
  t.same(Object.keys(logins).sort(), ['admin', 'doctor', 'finance', 'nurse', 'patient'], 'one login per role');
  const keyFile = /Lab client \S+ \(SMART Backend Services, key pair in (\S+)\)/.exec(out)?.[1];
  t.ok(keyFile && existsSync(keyFile), 'the lab client\'s key file');
  t.equal(statSync(keyFile!).mode & 0o777, 0o600, 'readable by its owner only');
  t.ok(existsSync(join(dir, 'demo', 'logins.txt')));

  const token = async (role: string): Promise<string> => {
    const res = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(logins[role]) });
    t.equal(res.status, 200, `${role} logs in`);
    return ((await res.json()) as { access_token: string }).access_token;
  };
  const get = async (tok: string, path: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${tok}` } });

  const admin = await token('admin');
  const all = (await (await get(admin, '/fhir/Patient?_summary=count')).json()) as { total: number };
  t.equal(all.total, 6, 'the admin sees the six patients');
  t.ok(((await (await get(admin, '/fhir/Observation?_summary=count')).json()) as { total: number }).total > 0, 'with their records');
  const doctor = await token('doctor');
  const mine = (await (await get(doctor, '/fhir/Patient?_summary=count')).json()) as { total: number };
  t.ok(mine.total >= 1 && mine.total <= 6, `the doctor sees the patients assigned to them (${mine.total})`);
  await token('nurse');
  const patient = await token('patient');
  const own = (await (await get(patient, '/fhir/Patient')).json()) as { total?: number; entry?: { resource: { id: string } }[] };
  t.equal(own.entry?.length, 1, 'the patient sees their own record only');
  await token('finance');

  const lab = hms(t, ['client-token', '--key', keyFile!], env);
  const exit = await within(lab.exited, 20_000, 'client-token');
  t.equal(exit.code, 0, `client-token exits 0 (${lab.stderr()})`);
  t.match(lab.stdout().trim(), /^\S{20,}$/, 'and prints an access token');

  t.equal((await stop(server)).code, 0);
  const again = hms(t, ['start'], env);
  await waitForHealth(`${base}/health/ready`, again);
  t.notMatch(await banner(again), /Demo data loaded/, 'a second start loads nothing');
  await stop(again);
});

t.test('HMS_DEMO=0: an empty database stays empty', async (t) => {
  const port = await freePort();
  const server = hms(t, ['start'], embedded({ HMS_DATA_DIR: tempDir(t), PORT: String(port), HMS_DEMO: '0' }));
  await waitForHealth(`http://127.0.0.1:${port}/health/ready`, server);
  t.notMatch(await banner(server), /Demo data loaded/);
  await stop(server);
});

t.test('never with DATABASE_URL, never on a database with a user', async (t) => {
  const h = await testApp(t);
  t.equal(await wantsDemo(h.db, { ...h.config, DATABASE_URL: 'mysql://root@127.0.0.1:3306/hms', HMS_DEMO: '1' }), false, 'DATABASE_URL: a real deployment');
  t.equal(await wantsDemo(h.db, { ...h.config, DATABASE_URL: undefined, HMS_DEMO: '1' }), false, 'the test admin is a user');
});
