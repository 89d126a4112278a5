/**
 * Login, logout and bearer access to /fhir over HTTP (app.inject) on the real database. Every test
 * uses its own users (random emails) and its own client IP, so runs that share a database (MariaDB)
 * never see each other's failed logins.
 */
import t, { type Test } from 'tap';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Knex } from 'knex';
import { buildApp } from '../../src/api/app.js';
import { testApp } from '../helpers/app.js';
import { createAdmin } from '../../src/auth/admin.js';
import { hashPassword } from '../../src/auth/passwords.js';
import { insertUser } from '../../src/db/user-repository.js';

const PASSWORD = 'correct horse battery staple';
const MAX_FAILURES = 3;

// HMS_SESSION_CACHE 0: these tests change sessions and users in the database and expect the very
// next request to see it; the cache has its own test below
// the per-IP limit is brought down to the per-account one so the IP tests stay short; the default
// (a much higher per-IP limit, for hospitals behind one NAT address) has its own test below
const { app, db, config } = await testApp(t, { HMS_LOGIN_MAX_FAILURES: MAX_FAILURES, HMS_LOGIN_MAX_FAILURES_PER_IP: MAX_FAILURES, HMS_SESSION_CACHE: 0 });

/** A client address no other test (or earlier run on a shared database) uses. */
const freshIp = (): string => `10.${[...randomBytes(3)].join('.')}`;
const freshEmail = (tag: string): string => `${tag}-${randomUUID()}@auth.test.example.org`;

async function newUser(tag: string, password = PASSWORD): Promise<{ id: string; email: string }> {
  const email = freshEmail(tag);
  const id = await createAdmin(db, { email, password, name: `Auth ${tag}`, cost: config.HMS_BCRYPT_COST });
  return { id, email };
}

function login(email: string, password: string, ip: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip });
}

async function loginToken(email: string, ip = freshIp()): Promise<string> {
  const res = await login(email, PASSWORD, ip);
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.json().access_token as string;
}

function getPatients(a: FastifyInstance, token: string | undefined, ip = freshIp()): Promise<LightMyRequestResponse> {
  return a.inject({ method: 'GET', url: '/fhir/Patient', headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, remoteAddress: ip });
}

/** 'YYYY-MM-DD HH:MM:SS' (UTC, as both dialects return it) to epoch ms. */
function sqlTime(v: unknown): number {
  return v instanceof Date ? v.getTime() : Date.parse(String(v).replace(' ', 'T') + 'Z');
}
const sqlTimestamp = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

function securityLogs(d: Knex, where: Record<string, unknown>): Promise<Array<Record<string, unknown>>> {
  return d('security_logs').where(where).select();
}

function assertOutcome(tt: Test, res: LightMyRequestResponse, status: number): void {
  tt.equal(res.statusCode, status, `status ${status}`);
  tt.match(String(res.headers['content-type']), /^application\/fhir\+json/, 'FHIR JSON content type');
  tt.equal(res.json().resourceType, 'OperationOutcome', 'body is an OperationOutcome');
}

t.test('login answers a 256-bit bearer token that expires within 24 h, stored only as a hash', async (t) => {
  const user = await newUser('login-ok');
  const ip = freshIp();
  const res = await login(user.email, PASSWORD, ip);
  t.equal(res.statusCode, 200);
  const body = res.json() as { access_token: string; token_type: string; expires_in: number };
  t.strictSame(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type']);
  t.equal(body.token_type, 'Bearer');
  t.equal(res.headers['cache-control'], 'no-store', 'the token response is not cacheable (RFC 6749 5.1)');
  t.ok(Number.isInteger(body.expires_in) && body.expires_in > 0 && body.expires_in <= 86_400, `expires_in ${body.expires_in} is within (0, 86400]`);
  t.match(body.access_token, /^[A-Za-z0-9_-]{43}$/, 'base64url of 32 bytes');
  t.equal(Buffer.from(body.access_token, 'base64url').length, 32, '256 bits of token');

  const sessions = await db('user_sessions').where({ user_id: user.id }).select();
  t.equal(sessions.length, 1, 'one session row for the login');
  const s = sessions[0]!;
  t.equal(s.session_token, sha256(body.access_token), 'the row holds the SHA-256 of the token');
  const everything = JSON.stringify(await db('user_sessions').select());
  t.notOk(everything.includes(body.access_token), 'the raw token appears nowhere in user_sessions');
  t.notOk(JSON.stringify(await securityLogs(db, { ip_address: ip })).includes(body.access_token), 'nor in security_logs');
  const created = sqlTime(s.created_at);
  const expires = sqlTime(s.expires_at);
  t.ok(expires > created, 'expires after it is created');
  t.ok(expires <= created + 86_400_000, 'expires_at <= created_at + 24 h');
  t.ok(Math.abs(expires - created - body.expires_in * 1000) <= 2000, 'expires_at matches expires_in');

  const fhir = await getPatients(app, body.access_token);
  t.equal(fhir.statusCode, 200, 'the token opens /fhir');
});

t.test('a wrong password and an unknown email get the same 401 and body, and both are logged', async (t) => {
  const user = await newUser('login-bad');
  const ipWrong = freshIp();
  const ipUnknown = freshIp();
  const wrong = await login(user.email, 'not the password', ipWrong);
  const unknown = await login(freshEmail('nobody'), PASSWORD, ipUnknown);
  t.equal(wrong.statusCode, 401);
  t.equal(unknown.statusCode, 401);
  t.equal(wrong.body, unknown.body, 'identical bodies: the answer does not reveal which emails exist');
  t.equal(wrong.headers['content-type'], unknown.headers['content-type']);
  t.equal(wrong.json().resourceType, 'OperationOutcome');
  t.notOk('access_token' in wrong.json());

  const wrongRows = await securityLogs(db, { ip_address: ipWrong, action: 'login' });
  t.equal(wrongRows.length, 1, 'the wrong password wrote one login row');
  t.equal(Number(wrongRows[0]!.success), 0, 'marked as a failure');
  t.equal(wrongRows[0]!.user_id, user.id, 'against the account');
  const unknownRows = await securityLogs(db, { ip_address: ipUnknown, action: 'login' });
  t.equal(unknownRows.length, 1, 'the unknown email wrote one login row');
  t.equal(Number(unknownRows[0]!.success), 0, 'marked as a failure');

  const sessions = await db('user_sessions').where({ user_id: user.id }).select();
  t.equal(sessions.length, 0, 'no session was started');
  const row = await db('users').where({ id: user.id }).first();
  t.equal(row.last_login, null, 'last_login untouched by a failure');
});

t.test('a successful login writes a success row and sets users.last_login', async (t) => {
  const user = await newUser('login-audit');
  const before = await db('users').where({ id: user.id }).first();
  t.equal(before.last_login, null, 'a new user has never logged in');
  const ip = freshIp();
  const startedAt = Math.floor(Date.now() / 1000) * 1000;
  t.equal((await login(user.email, PASSWORD, ip)).statusCode, 200);
  const rows = await securityLogs(db, { ip_address: ip, action: 'login' });
  t.equal(rows.length, 1);
  t.equal(Number(rows[0]!.success), 1, 'marked as a success');
  t.equal(rows[0]!.user_id, user.id);
  const after = await db('users').where({ id: user.id }).first();
  t.not(after.last_login, null, 'last_login is set');
  const at = sqlTime(after.last_login);
  t.ok(at >= startedAt - 1000 && at <= Date.now() + 1000, `last_login ${after.last_login} is now`);
});

t.test('email matching is case-insensitive for login', async (t) => {
  const user = await newUser('login-case');
  const res = await login(user.email.toUpperCase(), PASSWORD, freshIp());
  t.equal(res.statusCode, 200);
});

t.test(`after ${MAX_FAILURES} failed logins from one IP the next attempt gets 429 with Retry-After, even with the right password`, async (t) => {
  const user = await newUser('throttle-ip');
  const ip = freshIp();
  for (let i = 0; i < MAX_FAILURES; i++) {
    const res = await login(freshEmail('ghost'), 'wrong password', ip);
    t.equal(res.statusCode, 401, `failure ${i + 1} is a plain 401`);
  }
  const blocked = await login(user.email, PASSWORD, ip);
  assertOutcome(t, blocked, 429);
  t.match(String(blocked.headers['retry-after']), /^[1-9]\d*$/, 'Retry-After in seconds');
  t.notOk('access_token' in blocked.json());
  t.equal((await db('user_sessions').where({ user_id: user.id }).select()).length, 0, 'no session started');

  const elsewhere = await login(user.email, PASSWORD, freshIp());
  t.equal(elsewhere.statusCode, 200, 'the account itself is not locked by failures of other emails');
});

t.test(`after ${MAX_FAILURES} wrong passwords for one account it is locked, from any IP`, async (t) => {
  const user = await newUser('throttle-user');
  for (let i = 0; i < MAX_FAILURES; i++) {
    const res = await login(user.email, `wrong password ${i}`, freshIp());
    t.equal(res.statusCode, 401, `failure ${i + 1} is a plain 401`);
  }
  const ip = freshIp();
  const blocked = await login(user.email, PASSWORD, ip);
  assertOutcome(t, blocked, 429);
  t.match(String(blocked.headers['retry-after']), /^[1-9]\d*$/);
  t.equal((await db('user_sessions').where({ user_id: user.id }).select()).length, 0, 'no session started');

  const other = await newUser('throttle-other');
  t.equal((await login(other.email, PASSWORD, ip)).statusCode, 200, 'another account logs in from that IP');
});

t.test(`12 concurrent bad logins from one IP: at most ${MAX_FAILURES} get past the throttle`, async (t) => {
  // Each attempt is counted before its password is checked, so concurrent ones cannot all read a
  // count below the limit and then fail together.
  const ip = freshIp();
  const results = await Promise.all(Array.from({ length: 12 }, () => login(freshEmail('swarm'), 'wrong password', ip)));
  const statuses = results.map((r) => r.statusCode);
  const unauthorized = statuses.filter((s) => s === 401).length;
  const throttled = statuses.filter((s) => s === 429).length;
  t.equal(unauthorized + throttled, 12, `only 401 and 429 (got ${statuses.join(',')})`);
  t.ok(unauthorized <= MAX_FAILURES, `at most ${MAX_FAILURES} are 401 (got ${unauthorized})`);
  t.ok(throttled >= 12 - MAX_FAILURES, `at least ${12 - MAX_FAILURES} are 429 (got ${throttled})`);
  for (const r of results.filter((x) => x.statusCode === 429)) t.match(String(r.headers['retry-after']), /^[1-9]\d*$/, 'Retry-After on every 429');
  const failed = await securityLogs(db, { ip_address: ip, action: 'login' });
  t.equal(failed.length, unauthorized, 'one failed-login row per 401');
  t.ok(failed.every((r) => Number(r.success) === 0));
  t.equal((await securityLogs(db, { ip_address: ip, action: 'login-throttled' })).length, throttled, 'one login-throttled row per 429');
});

t.test(`12 concurrent wrong passwords for one account from 12 IPs: at most ${MAX_FAILURES} get past the throttle`, async (t) => {
  const user = await newUser('swarm-account');
  const results = await Promise.all(Array.from({ length: 12 }, () => login(user.email, 'wrong password', freshIp())));
  const unauthorized = results.filter((r) => r.statusCode === 401).length;
  const throttled = results.filter((r) => r.statusCode === 429).length;
  t.equal(unauthorized + throttled, 12);
  t.ok(unauthorized <= MAX_FAILURES, `at most ${MAX_FAILURES} are 401 (got ${unauthorized})`);
  t.equal(unauthorized, (await securityLogs(db, { user_id: user.id, action: 'login' })).length, 'one failed-login row per 401');
  t.equal((await login(user.email, PASSWORD, freshIp())).statusCode, 429, 'the account stays throttled, even for the right password');
});

t.test('an unknown email and a known email are throttled identically', async (t) => {
  const known = await newUser('enum-known');
  const unknown = freshEmail('enum-unknown');
  const run = async (email: string): Promise<LightMyRequestResponse[]> => {
    const out: LightMyRequestResponse[] = [];
    for (let i = 0; i < MAX_FAILURES + 2; i++) out.push(await login(email, `wrong password ${i}`, freshIp()));
    return out;
  };
  const a = await run(known.email);
  const b = await run(unknown);
  const expected = [...Array(MAX_FAILURES).fill(401), 429, 429];
  t.strictSame(a.map((r) => r.statusCode), expected, 'known email: 401 until the limit, then 429');
  t.strictSame(b.map((r) => r.statusCode), expected, 'unknown email: the same sequence');
  for (let i = 0; i < a.length; i++) {
    t.equal(a[i]!.body, b[i]!.body, `answer ${i + 1}: identical bodies`);
    t.equal(a[i]!.headers['retry-after'] === undefined, b[i]!.headers['retry-after'] === undefined, `answer ${i + 1}: Retry-After on both or neither`);
  }
  assertOutcome(t, b[MAX_FAILURES]!, 429);
  t.match(String(b[MAX_FAILURES]!.headers['retry-after']), /^[1-9]\d*$/);
});

t.test('a correct login does not count against its IP and resets nothing for other accounts', async (t) => {
  const ip = freshIp();
  const user = await newUser('nat-user');
  const victim = await newUser('nat-victim');
  for (let i = 0; i < MAX_FAILURES - 1; i++) t.equal((await login(victim.email, 'wrong password', freshIp())).statusCode, 401, `victim failure ${i + 1}`);

  for (let i = 0; i < MAX_FAILURES + 3; i++) {
    t.equal((await login(user.email, PASSWORD, ip)).statusCode, 200, `correct login ${i + 1} from the shared IP`);
  }

  t.equal((await login(victim.email, 'wrong password', freshIp())).statusCode, 401, `victim failure ${MAX_FAILURES}: its count was not reset`);
  t.equal((await login(victim.email, PASSWORD, freshIp())).statusCode, 429, 'the victim is throttled after its own failures');

  for (let i = 0; i < MAX_FAILURES; i++) {
    t.equal((await login(freshEmail('nat-ghost'), 'wrong password', ip)).statusCode, 401, `failure ${i + 1} from the shared IP is a 401: the correct logins did not count`);
  }
  t.equal((await login(user.email, PASSWORD, ip)).statusCode, 429, 'and failures from it still throttle it');
});

t.test('with the default per-IP limit, people behind one address are not locked out by each other', async (t) => {
  const natApp = await buildApp({ config: { ...config, HMS_LOGIN_MAX_FAILURES_PER_IP: 100 }, db, logger: false });
  t.teardown(() => natApp.close());
  const natLogin = (email: string, password: string, ip: string) =>
    natApp.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip });
  const ip = freshIp();
  const people = await Promise.all(Array.from({ length: 6 }, (_, i) => newUser(`nat-${i}`)));
  for (const p of people) t.equal((await natLogin(p.email, 'wrong password', ip)).statusCode, 401, 'one failure each');
  const results = await Promise.all(people.map((p) => natLogin(p.email, PASSWORD, ip)));
  t.same(results.map((r) => r.statusCode), people.map(() => 200), 'six concurrent correct logins from the same address all succeed');
});

t.test('spelling variants of an email that name the same user share its counter', async (t) => {
  const user = await newUser('variant');
  const variant = user.email.toUpperCase();
  for (let i = 0; i < MAX_FAILURES; i++) t.equal((await login(i % 2 ? variant : user.email, 'wrong password', freshIp())).statusCode, 401);
  t.equal((await login(variant, PASSWORD, freshIp())).statusCode, 429, 'the variant is throttled with the account');
});

t.test('a successful login forgets the failures against its account', async (t) => {
  const user = await newUser('forget');
  for (let i = 0; i < MAX_FAILURES - 1; i++) t.equal((await login(user.email, 'wrong password', freshIp())).statusCode, 401);
  t.equal((await login(user.email, PASSWORD, freshIp())).statusCode, 200);
  for (let i = 0; i < MAX_FAILURES; i++) {
    t.equal((await login(user.email, 'wrong password', freshIp())).statusCode, 401, `failure ${i + 1} after the success is a 401`);
  }
  t.equal((await login(user.email, PASSWORD, freshIp())).statusCode, 429);
});

t.test('login_attempts holds only hashes, no address or email', async (t) => {
  const ip = freshIp();
  const email = freshEmail('hash-only');
  t.equal((await login(email, 'wrong password', ip)).statusCode, 401);
  const row = await db('login_attempts').where({ key_hash: sha256(`email:${email.toLowerCase()}`) }).first();
  t.ok(row, 'the email is counted under its hash');
  t.equal(Number(row.attempts), 1);
  t.ok(await db('login_attempts').where({ key_hash: sha256(`ip:${ip}`) }).first(), 'the IP is counted under its hash');
  const all = JSON.stringify(await db('login_attempts').select());
  t.notOk(all.includes(email), 'no email in the table');
  t.notOk(all.includes(ip), 'no address in the table');
});

t.test('after the window has passed, logins work again', async (t) => {
  // a window long enough for the failures' bcrypt checks on a loaded machine, short enough to wait out
  const WINDOW = 5;
  const short = await testApp(t, { HMS_LOGIN_MAX_FAILURES: MAX_FAILURES, HMS_LOGIN_WINDOW: WINDOW });
  const email = freshEmail('window');
  await createAdmin(short.db, { email, password: PASSWORD, name: 'Auth window', cost: short.config.HMS_BCRYPT_COST });
  const ip = freshIp();
  const shortLogin = (password: string) => short.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip });
  for (let i = 0; i < MAX_FAILURES; i++) t.equal((await shortLogin('wrong password')).statusCode, 401, `failure ${i + 1}`);
  const blocked = await shortLogin(PASSWORD);
  assertOutcome(t, blocked, 429);
  const retryAfter = Number(blocked.headers['retry-after']);
  t.ok(retryAfter >= 1 && retryAfter <= WINDOW, `Retry-After ${retryAfter} is the rest of a ${WINDOW} s window (whole seconds)`);
  await new Promise((r) => setTimeout(r, retryAfter * 1000 + 100));
  t.equal((await shortLogin(PASSWORD)).statusCode, 200, 'the same IP and account log in once the window is over');
});

t.test('GET /fhir/Patient without a token is 401 with WWW-Authenticate, and is logged', async (t) => {
  const ip = freshIp();
  const res = await getPatients(app, undefined, ip);
  assertOutcome(t, res, 401);
  t.match(String(res.headers['www-authenticate']), /^Bearer\b/);
  t.equal(res.json().issue[0].code, 'login');
  const rows = await securityLogs(db, { ip_address: ip });
  t.equal(rows.length, 1, 'one security_logs row for the refused request');
  t.equal(Number(rows[0]!.success), 0);
  t.equal(rows[0]!.user_id, null);
});

t.test('GET /fhir/Patient with a garbage or unknown token is 401', async (t) => {
  for (const token of ['garbage', randomBytes(32).toString('base64url')]) {
    const ip = freshIp();
    const res = await getPatients(app, token, ip);
    assertOutcome(t, res, 401);
    t.match(String(res.headers['www-authenticate']), /^Bearer\b/);
    t.equal((await securityLogs(db, { ip_address: ip, success: false })).length, 1, 'logged');
  }
  const basic = await app.inject({ method: 'GET', url: '/fhir/Patient', headers: { authorization: 'Basic YWRtaW46YWRtaW4=' }, remoteAddress: freshIp() });
  assertOutcome(t, basic, 401);
});

t.test('GET /fhir/metadata needs no token', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/fhir/metadata', remoteAddress: freshIp() });
  t.equal(res.statusCode, 200);
  t.equal(res.json().resourceType, 'CapabilityStatement');
});

t.test('logout revokes the token; logout without a live token is 401', async (t) => {
  const user = await newUser('logout');
  const token = await loginToken(user.email);
  t.equal((await getPatients(app, token)).statusCode, 200, 'the token works before logout');
  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${token}` }, remoteAddress: freshIp() });
  t.equal(out.statusCode, 204);
  const logoutRows = await securityLogs(db, { action: 'logout', user_id: user.id });
  t.equal(logoutRows.length, 1, 'the logout is logged against the user');
  assertOutcome(t, await getPatients(app, token), 401);
  const session = await db('user_sessions').where({ session_token: sha256(token) }).first();
  t.equal(Number(session.is_active), 0, 'the session row is inactive');

  const again = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${token}` }, remoteAddress: freshIp() });
  assertOutcome(t, again, 401);
  const none = await app.inject({ method: 'POST', url: '/auth/logout', remoteAddress: freshIp() });
  assertOutcome(t, none, 401);
  t.match(String(none.headers['www-authenticate']), /^Bearer\b/);
});

t.test('a session whose expires_at has passed is refused with 401', async (t) => {
  const user = await newUser('expired');
  const token = await loginToken(user.email);
  t.equal((await getPatients(app, token)).statusCode, 200, 'live before');
  await db('user_sessions').where({ session_token: sha256(token) }).update({ expires_at: sqlTimestamp(Date.now() - 60_000) });
  assertOutcome(t, await getPatients(app, token), 401);
});

t.test('a session idle for longer than HMS_SESSION_IDLE is refused with 401', async (t) => {
  const user = await newUser('idle');
  const token = await loginToken(user.email);
  const idleMs = config.HMS_SESSION_IDLE * 1000;
  const where = { session_token: sha256(token) };
  await db('user_sessions').where(where).update({ last_activity: sqlTimestamp(Date.now() - idleMs + 120_000) });
  t.equal((await getPatients(app, token)).statusCode, 200, 'still live two minutes before the idle limit (and the request refreshes it)');
  const refreshed = await db('user_sessions').where(where).first();
  t.ok(sqlTime(refreshed.last_activity) > Date.now() - 60_000, 'the request moved last_activity to now');
  await db('user_sessions').where(where).update({ last_activity: sqlTimestamp(Date.now() - idleMs - 120_000) });
  assertOutcome(t, await getPatients(app, token), 401);
});

t.test('a suspended user cannot log in and their live tokens stop working', async (t) => {
  const user = await newUser('suspended');
  const token = await loginToken(user.email);
  t.equal((await getPatients(app, token)).statusCode, 200, 'works while active');
  await db('users').where({ id: user.id }).update({ status: 'suspended' });
  assertOutcome(t, await getPatients(app, token), 401);
  const ip = freshIp();
  const res = await login(user.email, PASSWORD, ip);
  t.equal(res.statusCode, 401, 'the right password does not log a suspended user in');
  const unknown = await login(freshEmail('nobody'), PASSWORD, freshIp());
  t.equal(res.body, unknown.body, 'and the answer does not reveal the suspension');
  t.equal((await db('user_sessions').where({ user_id: user.id, is_active: true }).select()).length, 1, 'only the pre-suspension session exists');
  const rows = await securityLogs(db, { ip_address: ip, action: 'login' });
  t.equal(rows.length, 1);
  t.equal(Number(rows[0]!.success), 0);
});

t.test('with the session cache, a revocation made elsewhere is seen within HMS_SESSION_CACHE seconds; a logout here at once', async (t) => {
  const cached = { app: await buildApp({ config: { ...config, HMS_SESSION_CACHE: 1 }, db, logger: false }) };
  t.teardown(() => cached.app.close());
  const user = await newUser('cache');
  const token = await loginToken(user.email);
  t.equal((await getPatients(cached.app, token)).statusCode, 200);
  await db('users').where({ id: user.id }).update({ status: 'suspended' });
  const soon = await getPatients(cached.app, token);
  t.ok([200, 401].includes(soon.statusCode), 'may still pass from the cache');
  await new Promise((r) => setTimeout(r, 1100));
  assertOutcome(t, await getPatients(cached.app, token), 401);

  const other = await newUser('cache-logout');
  const token2 = await loginToken(other.email);
  t.equal((await getPatients(cached.app, token2)).statusCode, 200);
  const out = await cached.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${token2}` } });
  t.equal(out.statusCode, 204);
  assertOutcome(t, await getPatients(cached.app, token2), 401);
});

t.test('create-admin stores a bcrypt hash with cost >= 12 that logs in', async (t) => {
  const email = freshEmail('admin-hash');
  const id = await createAdmin(db, { email, password: PASSWORD, name: 'Hash Admin', cost: 12 });
  const row = await db('users').where({ id }).first();
  t.match(row.password_hash, /^\$2b\$12\$[./A-Za-z0-9]{53}$/, 'bcrypt $2b$, cost 12');
  t.notOk(String(row.password_hash).includes(PASSWORD));
  t.equal(row.role, 'admin');
  t.equal(row.status, 'active');
  t.equal((await login(email, PASSWORD, freshIp())).statusCode, 200);
  await t.rejects(createAdmin(db, { email: freshEmail('admin-cost'), password: PASSWORD, name: 'Cheap', cost: 10 }), /cost/, 'a cost below 12 is refused');
});

t.test('create-admin refuses a password over 72 bytes, even of fewer characters', async (t) => {
  const email = freshEmail('admin-long');
  const pw73 = 'a' + 'é'.repeat(36);
  t.equal(pw73.length, 37);
  t.equal(Buffer.byteLength(pw73), 73);
  await t.rejects(createAdmin(db, { email, password: pw73, name: 'Long', cost: 12 }), /72 bytes/);
  await t.rejects(createAdmin(db, { email, password: 'é'.repeat(37), name: 'Long', cost: 12 }), /72 bytes/);
  t.equal(await db('users').where({ email }).first(), undefined, 'no user was created');

  const pw72 = 'é'.repeat(36);
  const id = await createAdmin(db, { email, password: pw72, name: 'Exactly 72', cost: 12 });
  t.ok(id, '72 bytes is accepted');
  const ok = await login(email, pw72, freshIp());
  t.equal(ok.statusCode, 200, 'and logs in');
  const longer = await login(email, pw72 + 'x', freshIp());
  t.equal(longer.statusCode, 401, 'a login with extra bytes after the first 72 does not match');
});

t.test('create-admin refuses a too-short password', async (t) => {
  const email = freshEmail('admin-short');
  await t.rejects(createAdmin(db, { email, password: 'short', name: 'Short', cost: 12 }), /at least 8/);
  t.equal(await db('users').where({ email }).first(), undefined, 'no user was created');
});

t.test('create-admin refuses a duplicate email, whatever its case', async (t) => {
  const user = await newUser('admin-dup');
  await t.rejects(createAdmin(db, { email: user.email, password: PASSWORD, name: 'Dup', cost: 12 }), /already exists/);
  await t.rejects(createAdmin(db, { email: user.email.toUpperCase(), password: PASSWORD, name: 'Dup', cost: 12 }), /already exists/);
  const rows = await db('users').whereRaw('LOWER(email) = ?', [user.email.toLowerCase()]).select('id');
  t.equal(rows.length, 1, 'still one user with that email');
});

t.test('concurrent creations of one email: one succeeds, the others are refused as duplicates', async (t) => {
  // insertUser checks for the email, then inserts: concurrent calls pass the check together and
  // meet the unique key. Calling it directly (one precomputed hash) makes that interleaving certain
  // on both databases; the driver's error holds the SQL and the password hash and must not escape.
  const passwordHash = await hashPassword(PASSWORD, 12);
  const email = freshEmail('user-race');
  const results = await Promise.allSettled([0, 1, 2, 3].map((i) => insertUser(db, { email, passwordHash, name: `Race ${i}`, role: 'admin' })));
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one user created');
  const messages = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String((r.reason as Error).message));
  t.equal(messages.length, 3, 'the others refused');
  for (const m of messages) t.equal(m, 'duplicate-email', 'as a duplicate, not as a raw database error');
  t.equal((await db('users').where({ email }).select('id')).length, 1);

  const adminEmail = freshEmail('admin-race');
  const admins = await Promise.allSettled([0, 1, 2, 3].map((i) => createAdmin(db, { email: adminEmail, password: PASSWORD, name: `Race ${i}`, cost: 12 })));
  t.equal(admins.filter((r) => r.status === 'fulfilled').length, 1, 'create-admin: one admin created');
  for (const r of admins) if (r.status === 'rejected') t.match(String((r.reason as Error).message), /^a user with email \S+ already exists$/, 'create-admin: the others are told the email is taken');
});

t.test('create-admin refuses an invalid email', async (t) => {
  await t.rejects(createAdmin(db, { email: 'not-an-email', password: PASSWORD, name: 'Bad', cost: 12 }), /not a valid email/);
});
