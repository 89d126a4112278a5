import t from 'tap';
import { SessionCache } from '../../src/auth/sessions.js';

const session = (expiresInMs: number, now: number) => ({
  sessionId: 's1', userId: 'u1', role: 'admin',
  lastActivity: new Date(now).toISOString().slice(0, 19).replace('T', ' '),
  expiresAt: new Date(now + expiresInMs).toISOString().slice(0, 19).replace('T', ' '),
});

t.test('serves a session for its time to live, never past the session expiry', async (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const cache = new SessionCache(5000);
  cache.set('a', session(3_600_000, now), now);
  t.ok(cache.get('a', now + 4999));
  t.notOk(cache.get('a', now + 5000));
  cache.set('b', session(2000, now), now);
  t.notOk(cache.get('b', now + 2000), 'expires with the session');
});

t.test('a logged-out token cannot be put back by a lookup that was already in flight', async (t) => {
  const now = Date.now();
  const cache = new SessionCache(5000);
  cache.set('a', session(3_600_000, now), now);
  cache.forget('a', now);
  t.notOk(cache.get('a', now));
  cache.set('a', session(3_600_000, now), now + 10);
  t.notOk(cache.get('a', now + 20), 'still out');
});

t.test('a time to live of 0 caches nothing', async (t) => {
  const now = Date.now();
  const cache = new SessionCache(0);
  cache.set('a', session(3_600_000, now), now);
  t.notOk(cache.get('a', now));
});

t.test('holds at most maxEntries sessions', async (t) => {
  const now = Date.now();
  const cache = new SessionCache(5000, 2);
  for (const k of ['a', 'b', 'c']) cache.set(k, session(3_600_000, now), now);
  t.notOk(cache.get('a', now), 'the oldest is evicted');
  t.ok(cache.get('c', now));
});
