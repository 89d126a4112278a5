/**
 * Login sessions end when they should, with the session cache on (HMS_SESSION_CACHE 60, far
 * longer than any wait here, so an ending seen by a test was not the cache running out):
 * absolute expiry, idle logoff, logout, and suspension, deactivation, role change, deletion,
 * password change and revoke-all ending every session of the user at once.
 *
 * On MySQL a second app over its own connection pool stands in for a second API process; with
 * REDIS_URL both cache the session and hear the revocation over Redis pub/sub, without it neither
 * may cache (no bus reaches them). The embedded default (SQLite) is one process. Login lockout is
 * covered by test/integration/auth.test.ts (per account, per IP, concurrent, the window).
 */
import t, { type Test } from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { dialectOf } from '../../src/db/dialect.js';
import { hashToken } from '../../src/auth/sessions.js';
import { testApp } from '../helpers/app.js';

const PASSWORD = 'correct horse battery staple';
const CACHE_SECONDS = 60;
const IDLE_SECONDS = 60;
const h = await testApp(t, { HMS_SESSION_CACHE: CACHE_SECONDS, HMS_SESSION_IDLE: IDLE_SECONDS });
const mysql = dialectOf(h.db) === 'mysql';
const apps: FastifyInstance[] = [h.app];
if (mysql) {
  const second = await buildApp({ config: h.config, logger: false });
  t.teardown(() => second.close());
  apps.push(second);
}

const freshIp = (): string => `10.${[...randomBytes(3)].join('.')}`;
const freshEmail = (tag: string): string => `${tag}-${randomUUID()}@sessions.test.example.org`;
const sqlTimestamp = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until cond holds; false after ms. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

if (process.env.REDIS_URL) {
  // each process subscribes when it starts; only then may it cache
  const subscribed = await until(() => apps.every((a) => a.revocations.live), 5000);
  if (!subscribed) throw new Error('the revocation bus did not come up');
}
const caching = h.app.revocations.live;
t.comment(`${apps.length} app instance(s) on ${mysql ? 'MySQL' : 'SQLite'}; session cache ${caching ? 'on (revocations heard)' : 'off (no bus reaches the processes)'}`);

const admin = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
  h.app.inject({ method, url, payload, headers: { authorization: `Bearer ${h.token}`, ...(payload ? { 'content-type': 'application/json' } : {}) }, remoteAddress: freshIp() });

/** A request only a live session passes: 200 for an admin's token, 401 once it ended. */
const probe = (app: FastifyInstance, token: string): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'GET', url: '/admin/users?limit=1', headers: { authorization: `Bearer ${token}` }, remoteAddress: freshIp() });

async function login(email: string, password = PASSWORD, app = h.app): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: freshIp() });
}

/** An admin account (so any route works with its token) with two live sessions. */
async function victim(tag: string): Promise<{ id: string; email: string; tokens: string[] }> {
  const email = freshEmail(tag);
  const res = await admin('POST', '/admin/users', { email, password: PASSWORD, name: `Victim ${tag}`, role: 'admin' });
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.body}`);
  const tokens: string[] = [];
  for (let i = 0; i < 2; i++) tokens.push((await login(email)).json().access_token as string);
  return { id: res.json().id as string, email, tokens };
}

const cached = (app: FastifyInstance, token: string): boolean => app.sessionCache.get(hashToken(token), Date.now()) !== undefined;

/** Uses every token on every process, so each holds it in its cache (when it may cache at all). */
async function warm(tt: Test, tokens: string[]): Promise<void> {
  for (const app of apps) {
    for (const token of tokens) {
      tt.equal((await probe(app, token)).statusCode, 200, 'live before');
      tt.equal(cached(app, token), caching, caching ? 'and cached' : 'and not cached');
    }
  }
}

/** Every token is refused on every process: at once where the change was made, within a bounded moment (pub/sub delivery) elsewhere. */
async function allEnded(tt: Test, tokens: string[]): Promise<void> {
  for (const [i, app] of apps.entries()) {
    for (const token of tokens) {
      if (i > 0) {
        const started = Date.now();
        tt.ok(await until(() => !cached(app, token), 2000), 'the other process dropped its cached session');
        tt.ok(Date.now() - started < 2000, `within ${Date.now() - started} ms, far inside HMS_SESSION_CACHE (${CACHE_SECONDS} s)`);
      }
      const res = await probe(app, token);
      tt.equal(res.statusCode, 401, `instance ${i + 1}: refused`);
      tt.equal(res.json().resourceType, 'OperationOutcome');
    }
  }
}

const changes: [string, (id: string) => Promise<LightMyRequestResponse>][] = [
  ['suspension', (id) => admin('PATCH', `/admin/users/${id}`, { status: 'suspended' })],
  ['deactivation', (id) => admin('PATCH', `/admin/users/${id}`, { status: 'inactive' })],
  ['a password change', (id) => admin('POST', `/admin/users/${id}/password`, { password: 'an entirely new password' })],
  ['a role change', (id) => admin('PATCH', `/admin/users/${id}`, { role: 'finance' })],
  ['deletion', (id) => admin('DELETE', `/admin/users/${id}`)],
  ['revoke-all', (id) => admin('DELETE', `/admin/users/${id}/sessions`)],
];

for (const [what, change] of changes) {
  t.test(`${what} ends every session of the user at once, on every process`, async (t) => {
    const v = await victim(what.replace(/\W+/g, '-'));
    await warm(t, v.tokens);
    const other = await victim(`bystander-${what.replace(/\W+/g, '-')}`);
    await warm(t, other.tokens);
    const res = await change(v.id);
    t.ok([200, 204].includes(res.statusCode), `${what}: ${res.statusCode} ${res.body}`);
    await allEnded(t, v.tokens);
    const active = await h.db('user_sessions').where({ user_id: v.id }).select('is_active');
    t.ok(active.length === 2 && active.every((s) => Number(s.is_active) === 0), 'both session rows are inactive');
    for (const app of apps) for (const token of other.tokens) t.equal((await probe(app, token)).statusCode, 200, 'another user keeps their sessions');
  });
}

t.test('after a password change the old password no longer logs in and the new one does', async (t) => {
  const v = await victim('new-password');
  t.equal((await admin('POST', `/admin/users/${v.id}/password`, { password: 'the replacement password' })).statusCode, 204);
  t.equal((await login(v.email)).statusCode, 401);
  const fresh = await login(v.email, 'the replacement password');
  t.equal(fresh.statusCode, 200);
  t.equal((await probe(h.app, fresh.json().access_token)).statusCode, 200, 'a session started after the change works');
});

t.test('a suspended, inactive or deleted user cannot log in (401, the answer of a wrong password)', async (t) => {
  const wrong = await login(freshEmail('nobody'));
  for (const [what, change] of changes.slice(0, 2).concat([changes[4]!])) {
    const v = await victim(`login-${what.replace(/\W+/g, '-')}`);
    await change(v.id);
    const res = await login(v.email);
    t.equal(res.statusCode, 401, what);
    t.equal(res.body, wrong.body, `${what}: the same body as an unknown email`);
  }
});

t.test('absolute expiry: a session past expires_at is refused, and the cache never serves one past it', async (t) => {
  const v = await victim('expired');
  const [past, soon] = v.tokens as [string, string];
  await h.db('user_sessions').where({ session_token: hashToken(past) }).update({ expires_at: sqlTimestamp(Date.now() - 60_000) });
  for (const app of apps) t.equal((await probe(app, past)).statusCode, 401, 'expired: 401');

  // set before its first use: each process caches it until at most its expiry, not for HMS_SESSION_CACHE
  const expiresAt = (Math.floor(Date.now() / 1000) + 2) * 1000;
  await h.db('user_sessions').where({ session_token: hashToken(soon) }).update({ expires_at: sqlTimestamp(expiresAt) });
  await warm(t, [soon]);
  await sleep(expiresAt - Date.now() + 50);
  for (const app of apps) {
    t.notOk(cached(app, soon), 'the cache entry ended with the session');
    t.equal((await probe(app, soon)).statusCode, 401, 'refused once expires_at has passed');
  }
});

t.test(`idle logoff: a session unused for more than HMS_SESSION_IDLE (${IDLE_SECONDS} s) is refused`, async (t) => {
  const v = await victim('idle');
  const [idle, recent] = v.tokens as [string, string];
  await h.db('user_sessions').where({ session_token: hashToken(idle) }).update({ last_activity: sqlTimestamp(Date.now() - (IDLE_SECONDS + 5) * 1000) });
  for (const app of apps) t.equal((await probe(app, idle)).statusCode, 401, 'idle: 401');
  await h.db('user_sessions').where({ session_token: hashToken(recent) }).update({ last_activity: sqlTimestamp(Date.now() - (IDLE_SECONDS - 15) * 1000) });
  t.equal((await probe(h.app, recent)).statusCode, 200, 'fifteen seconds before the limit it still works');
  const row = await h.db('user_sessions').where({ session_token: hashToken(recent) }).first('last_activity');
  t.ok(Date.parse(String(row.last_activity).replace(' ', 'T') + 'Z') > Date.now() - 5000, 'and the request moved last_activity to now');
});

t.test('logout ends the session at once, on every process', async (t) => {
  const v = await victim('logout');
  const [out, kept] = v.tokens as [string, string];
  await warm(t, [out]);
  const res = await h.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${out}` }, remoteAddress: freshIp() });
  t.equal(res.statusCode, 204);
  t.notOk(cached(h.app, out), 'dropped from this process\'s cache');
  t.equal((await probe(h.app, out)).statusCode, 401, 'refused at once here');
  t.equal(Number((await h.db('user_sessions').where({ session_token: hashToken(out) }).first('is_active')).is_active), 0, 'the row is inactive');
  t.equal((await probe(h.app, kept)).statusCode, 200, 'the user\'s other session stays');
  for (const other of apps.slice(1)) {
    // the logout is published: a process that had the session cached drops it at once
    t.ok(await until(() => !cached(other, out), 2000), 'dropped from the other process\'s cache');
    t.equal((await probe(other, out)).statusCode, 401, 'refused at once there too');
    t.equal((await probe(other, kept)).statusCode, 200, 'the other session stays there');
  }
  // a process that has not cached it refuses at once
  const fresh = await buildApp({ config: h.config, db: h.db, logger: false });
  t.teardown(() => fresh.close());
  t.equal((await probe(fresh, out)).statusCode, 401, 'a process without a cached check refuses it');
});

t.test('a process that cannot hear revocations caches no session check', async (t) => {
  // nothing listens on port 1: the bus never subscribes, so it is not live
  const deaf = await buildApp({ config: { ...h.config, REDIS_URL: 'redis://127.0.0.1:1/0' }, db: h.db, logger: false });
  t.teardown(() => deaf.close());
  t.equal(deaf.revocations.live, false, 'the bus is not live');
  const v = await victim('deaf');
  const [token] = v.tokens as [string];
  for (let i = 0; i < 3; i++) t.equal((await probe(deaf, token)).statusCode, 200);
  t.notOk(cached(deaf, token), 'nothing cached');
  if (caching) {
    t.equal((await probe(h.app, token)).statusCode, 200);
    t.ok(cached(h.app, token), 'a live process caches the same session');
  }
  // a change made without publishing (straight in the database) reaches the deaf process at once
  await h.db('users').where({ id: v.id }).update({ status: 'suspended' });
  t.equal((await probe(deaf, token)).statusCode, 401, 'refused on the very next request');
  if (caching) t.equal((await probe(h.app, token)).statusCode, 200, 'where only the cache would have held it up: why every change publishes');
});
