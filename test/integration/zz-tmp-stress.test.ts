import t from 'tap';
import { randomUUID, randomBytes } from 'node:crypto';
import { testDb, testConfig } from '../helpers/app.js';
import { loginGate } from '../../src/auth/throttle.js';
const cfg = { HMS_LOGIN_MAX_FAILURES: 3, HMS_LOGIN_WINDOW: 900 };
const db = await testDb(t, testConfig(t, { HMS_DB_POOL_MAX: 30 }));
const ip = `10.${[...randomBytes(3)].join('.')}`;
for (let round = 0; round < 5; round++) {
  const email = `${randomUUID()}@x.org`;
  const res = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => loginGate(db, { ip: i % 2 ? ip : `10.${[...randomBytes(3)].join('.')}`, email: i % 3 ? email : `${randomUUID()}@x.org` }, cfg)));
  const rej = res.filter((r) => r.status === 'rejected');
  t.equal(rej.length, 0, rej.map((r) => String((r as PromiseRejectedResult).reason)).join(';'));
}
