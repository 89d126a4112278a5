import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { testApp } from '../helpers/app.js';
import { makeClinician } from '../helpers/world.js';
import { createDb, dialectOf } from '../../src/db/knex.js';
import { AuditLog } from '../../src/db/audit-log.js';
import { hashToken, startSession } from '../../src/auth/sessions.js';
import { dateToSqlTimestamp } from '../../src/mappers/datatypes.js';
import { expireSessions, sessionExpiry } from '../../src/workers/processors/session-expiry.js';
import type { JobDeps } from '../../src/workers/jobs.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const json = (v: unknown): J => (typeof v === 'string' ? JSON.parse(v) : v) as J;
const IDLE = 900;
const RETENTION_DAYS = 30;
const DAY = 86_400_000;

t.test('session expiry', async (t) => {
  // no session cache: every request asks the database, as a process that never saw the token would
  const h = await testApp(t, { HMS_SESSION_IDLE: IDLE, HMS_SESSION_RETENTION_DAYS: RETENTION_DAYS, HMS_SESSION_CACHE: 0 });
  const audit = new AuditLog(h.db);
  const deps = (extra: Partial<JobDeps> = {}, db: Knex = h.db): JobDeps => ({
    db, config: h.config, log: silent, auditLog: db === h.db ? audit : new AuditLog(db), now: () => new Date(), ...extra,
  });
  const user = await makeClinician(h);
  const sql = (ms: number): string => dateToSqlTimestamp(new Date(ms));

  /** A session row with times relative to now (ms); returns its id and token hash. */
  const insertSession = async (o: { expiresIn: number; idleFor: number; active?: boolean; userId?: string }): Promise<{ id: string; hash: string }> => {
    const id = randomUUID();
    const hash = hashToken(randomBytes(32).toString('base64url'));
    const now = Date.now();
    await h.db('user_sessions').insert({
      id, user_id: o.userId ?? user, session_token: hash, ip_address: '127.0.0.1', user_agent: 'session-expiry test',
      created_at: sql(Math.min(now - o.idleFor, now + o.expiresIn - 3_600_000)), expires_at: sql(now + o.expiresIn),
      last_activity: sql(now - o.idleFor), is_active: o.active ?? true,
    });
    return { id, hash };
  };
  const session = async (id: string): Promise<J | undefined> => h.db('user_sessions').where({ id }).first();
  const expiryRows = async (ids: string[]): Promise<J[]> => {
    const rows = (await h.db('security_logs').where({ action: 'session-expired', role: 'system' }).orderBy('seq')) as J[];
    return rows.map((r) => ({ ...r, data: json(r.additional_data) })).filter((r) => ids.includes(r.data?.sessionId));
  };
  // what earlier runs and other test files left behind is expired and purged first: the counts below are this file's
  await sessionExpiry({}, deps());

  t.test('ends absolute and idle sessions, purges old ended ones, leaves the rest, audits each expiry', async (t) => {
    const fresh = await insertSession({ expiresIn: 3_600_000, idleFor: 60_000 });
    const absolute = await insertSession({ expiresIn: -10_000, idleFor: 5_000 });
    const idle = await insertSession({ expiresIn: 3_600_000, idleFor: (IDLE + 100) * 1000 });
    const both = await insertSession({ expiresIn: -60_000, idleFor: (IDLE + 100) * 1000 });
    const endedRecently = await insertSession({ expiresIn: -DAY, idleFor: DAY + 3_600_000, active: false });
    const endedLongAgo = await insertSession({ expiresIn: -(RETENTION_DAYS + 1) * DAY, idleFor: (RETENTION_DAYS + 1) * DAY, active: false });
    const forgotten = await insertSession({ expiresIn: -(RETENTION_DAYS + 10) * DAY, idleFor: (RETENTION_DAYS + 10) * DAY });
    const rowsBefore = new Map<string, J>();
    for (const s of [fresh, absolute, idle, both, endedRecently]) rowsBefore.set(s.id, (await session(s.id))!);

    const result = await expireSessions(deps(), { batch: 2 });
    t.match(result, { expired: 4, absolute: 3, idle: 1, purged: 2, aborted: false });
    t.ok((result.batches as number) >= 3, `batches of 2: ${String(result.batches)}`);

    t.same(await session(fresh.id), rowsBefore.get(fresh.id), 'a fresh session is untouched');
    for (const s of [absolute, idle, both]) {
      const row = (await session(s.id))!;
      t.notOk(Number(row.is_active), 'ended');
      t.same({ ...row, is_active: rowsBefore.get(s.id)!.is_active }, rowsBefore.get(s.id), 'nothing else changed (last_activity kept on MySQL too)');
    }
    t.same(await session(endedRecently.id), rowsBefore.get(endedRecently.id), 'an ended session within the retention stays');
    t.notOk(await session(endedLongAgo.id), 'an ended session past the retention is purged');
    t.notOk(await session(forgotten.id), 'an active one long past its expiry is ended, then purged');

    const rows = await expiryRows([fresh, absolute, idle, both, endedRecently, endedLongAgo, forgotten].map((s) => s.id));
    t.same(rows.map((r) => r.data.sessionId).sort(), [absolute.id, idle.id, both.id, forgotten.id].sort(), 'one row per session ended');
    const reason = (id: string) => rows.find((r) => r.data.sessionId === id)?.data.reason;
    t.equal(reason(absolute.id), 'absolute');
    t.equal(reason(both.id), 'absolute');
    t.equal(reason(forgotten.id), 'absolute');
    t.equal(reason(idle.id), 'idle');
    for (const r of rows) t.match(r, { user_id: user, role: 'system', action: 'session-expired', patient_id: null });
    const text = JSON.stringify(rows);
    for (const s of [absolute, idle, both, forgotten]) t.notOk(text.includes(s.hash), 'no token hash in the log');

    t.test('a second run changes nothing', async (t) => {
      const again = await expireSessions(deps(), { batch: 2 });
      t.match(again, { expired: 0, purged: 0 });
      t.equal((await expiryRows([absolute, idle, both, forgotten].map((s) => s.id))).length, 4, 'no second audit row');
      t.same(await session(fresh.id), rowsBefore.get(fresh.id));
    });
  });

  t.test('the API refuses an expired or idle session the job has not seen yet; the job then ends it', async (t) => {
    const check = (token: string) => h.fhir({ method: 'GET', url: `/fhir/Practitioner/${user}`, token });
    const live = await startSession(h.db, h.userId, { ttlSeconds: 3600 });
    const expiring = await startSession(h.db, h.userId, { ttlSeconds: 3600 });
    const idling = await startSession(h.db, h.userId, { ttlSeconds: 3600 });
    await h.db('user_sessions').where({ session_token: hashToken(expiring) }).update({ expires_at: sql(Date.now() - 1000), last_activity: h.db.ref('last_activity') });
    await h.db('user_sessions').where({ session_token: hashToken(idling) }).update({ last_activity: sql(Date.now() - (IDLE + 5) * 1000) });
    t.equal((await check(live)).statusCode, 200, 'a live session works');
    t.equal((await check(expiring)).statusCode, 401, 'past its expiry: refused before any job ran');
    t.equal((await check(idling)).statusCode, 401, 'idle: refused before any job ran');
    for (const tok of [expiring, idling]) t.ok(Number((await h.db('user_sessions').where({ session_token: hashToken(tok) }).first()).is_active), 'still marked active');
    const result = await expireSessions(deps());
    t.match(result, { expired: 2, absolute: 1, idle: 1 });
    for (const tok of [expiring, idling]) {
      t.notOk(Number((await h.db('user_sessions').where({ session_token: hashToken(tok) }).first()).is_active), 'ended by the job');
      t.equal((await check(tok)).statusCode, 401, 'and still refused');
    }
    t.equal((await check(live)).statusCode, 200, 'the live session still works');
  });

  t.test('stops between batches when aborted; the next run carries on', async (t) => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await insertSession({ expiresIn: -1000 - i, idleFor: 0 })).id);
    let checks = 0;
    const signal = { get aborted() { return ++checks > 1; } } as unknown as AbortSignal;
    const stopped = await expireSessions(deps({ signal }), { batch: 2 });
    t.match(stopped, { expired: 2, batches: 1, aborted: true });
    const rest = await expireSessions(deps(), { batch: 2 });
    t.match(rest, { expired: 3, aborted: false });
    t.equal((await expiryRows(ids)).length, 5, 'each audited once');
  });

  t.test('two runs at once end each session exactly once', async (t) => {
    const users = [user, await makeClinician(h), await makeClinician(h, 'nurse')];
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await insertSession({ expiresIn: i % 2 ? -5000 : 3_600_000, idleFor: i % 2 ? 0 : (IDLE + 60) * 1000, userId: users[i % 3] })).id);
    // MySQL: two pools, as two worker processes have; SQLite: one pool, whose transactions take turns
    const other = dialectOf(h.db) === 'mysql' ? createDb(h.config) : h.db;
    if (other !== h.db) t.teardown(() => other.destroy());
    const [a, b] = await Promise.all([expireSessions(deps(), { batch: 5 }), expireSessions(deps({}, other), { batch: 5 })]);
    t.equal((a.expired as number) + (b.expired as number), 60, `60 in all (${String(a.expired)} + ${String(b.expired)})`);
    const left = (await h.db('user_sessions').whereIn('id', ids).where('is_active', true).count({ n: '*' }))[0] as J;
    t.equal(Number(left.n), 0, 'all ended');
    const rows = await expiryRows(ids);
    t.equal(rows.length, 60, 'one audit row each');
    t.equal(new Set(rows.map((r) => r.data.sessionId)).size, 60);
    t.ok(rows.every((r) => r.user_id === users[ids.indexOf(r.data.sessionId) % 3]), 'each under its session\'s user');
  });
});
