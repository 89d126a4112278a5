import t from 'tap';
import { AuthCache } from '../../src/auth/auth-cache.js';

const HOUR = 3_600_000;

t.test('serves an entry for its time to live, never past its expiry', async (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const cache = new AuthCache<string>(5000);
  cache.set('a', 'A', 'user:1', now, now + HOUR);
  t.equal(cache.get('a', now + 4999), 'A');
  t.notOk(cache.get('a', now + 5000));
  cache.set('b', 'B', 'user:1', now, now + 2000);
  t.notOk(cache.get('b', now + 2000), 'expires with the session');
});

t.test('a logged-out token cannot be put back by a lookup that was already in flight', async (t) => {
  const now = Date.now();
  const cache = new AuthCache<string>(5000);
  cache.set('a', 'A', 'user:1', now, now + HOUR);
  cache.forget('a', now);
  t.notOk(cache.get('a', now));
  cache.set('a', 'A', 'user:1', now - 5, now + HOUR);
  t.notOk(cache.get('a', now + 20), 'a lookup started before the logout stays out');
  cache.set('a', 'A', 'user:1', now + 30, now + HOUR);
  t.equal(cache.get('a', now + 40), 'A', 'a lookup started after it is cached');
});

t.test('revoking a subject drops all of its tokens and keeps lookups in flight out', async (t) => {
  const now = Date.now();
  const cache = new AuthCache<string>(5000);
  cache.set('a', 'A', 'user:1', now, now + HOUR);
  cache.set('b', 'B', 'user:1', now, now + HOUR);
  cache.set('c', 'C', 'user:2', now, now + HOUR);
  cache.revoke('user:1', now + 1);
  t.notOk(cache.get('a', now + 2));
  t.notOk(cache.get('b', now + 2));
  t.equal(cache.get('c', now + 2), 'C', 'other users keep theirs');
  cache.set('a', 'A', 'user:1', now, now + HOUR);
  t.notOk(cache.get('a', now + 3), 'a lookup from before the revocation is not cached');
  cache.revoke('*', now + 4);
  t.notOk(cache.get('c', now + 5), "'*' drops everything");
});

t.test('caches nothing while revocations cannot reach the process', async (t) => {
  const now = Date.now();
  let live = false;
  const cache = new AuthCache<string>(5000, () => live);
  cache.set('a', 'A', 'user:1', now, now + HOUR);
  t.notOk(cache.get('a', now));
  live = true;
  cache.set('a', 'A', 'user:1', now, now + HOUR);
  t.equal(cache.get('a', now), 'A');
  live = false;
  t.notOk(cache.get('a', now), 'not served while the bus is down');
});

t.test('a time to live of 0 caches nothing', async (t) => {
  const now = Date.now();
  const cache = new AuthCache<string>(0);
  cache.set('a', 'A', 'user:1', now, now + HOUR);
  t.notOk(cache.get('a', now));
});

t.test('holds at most maxEntries entries', async (t) => {
  const now = Date.now();
  const cache = new AuthCache<string>(5000, () => true, 2);
  for (const k of ['a', 'b', 'c']) cache.set(k, k, `user:${k}`, now, now + HOUR);
  t.notOk(cache.get('a', now), 'the oldest is evicted');
  t.equal(cache.get('c', now), 'c');
});
