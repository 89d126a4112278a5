/**
 * The write buffer of a transaction (src/db/write-buffer.ts) against the real database: rows
 * gathered go in as one multi-row INSERT; a statement naming their table sees them; a savepoint
 * starts only after them; ROLLBACK drops them; a COMMIT reached with rows still gathered commits
 * nothing of the transaction. Embedded SQLite, or MariaDB with DATABASE_URL.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { testDb } from '../helpers/app.js';
import { appendRows, bufferRows, flushRows } from '../../src/db/write-buffer.js';
import { inTransaction } from '../../src/db/transactions.js';

const db = await testDb(t);
const type = `Buffered${randomUUID().slice(0, 8)}`;
const history = (id: string) => ({ resource_type: type, resource_id: id, version_id: 1, method: 'POST', recorded_at: '2026-01-01 00:00:00', recorded_by: null, resource: '{}' });
const stored = async (ids: string[]): Promise<number> => Number((await db('resource_history').where({ resource_type: type }).whereIn('resource_id', ids).count({ n: '*' }))[0]!.n);

/** The statements sent while fn runs, as SQL text. */
async function statements<T>(fn: () => Promise<T>): Promise<{ result: T; sql: string[] }> {
  const sql: string[] = [];
  const on = (q: { sql: string }): void => { sql.push(q.sql); };
  db.on('query', on);
  try {
    return { result: await fn(), sql };
  } finally {
    db.off('query', on);
  }
}

t.test('gathered rows go in as one INSERT, before the statement that reads their table', async (t) => {
  const ids = Array.from({ length: 25 }, () => randomUUID());
  const { result, sql } = await statements(() => inTransaction(db, async (trx) => {
    bufferRows(trx);
    for (const id of ids) await appendRows(trx, 'resource_history', [history(id)]);
    const seen = Number((await trx('resource_history').where({ resource_type: type }).count({ n: '*' }))[0]!.n);
    await flushRows(trx);
    return seen;
  }));
  t.equal(result, 25, 'the SELECT saw every gathered row');
  t.equal(sql.filter((s) => /^insert into .resource_history/i.test(s)).length, 1, 'one INSERT for 25 rows');
  t.equal(await stored(ids), 25, 'committed');
});

t.test('a statement naming another table leaves the rows gathered', async (t) => {
  const id = randomUUID();
  const { sql } = await statements(() => inTransaction(db, async (trx) => {
    bufferRows(trx);
    await appendRows(trx, 'resource_history', [history(id)]);
    const before = await statements(() => trx('patients').count({ n: '*' }));
    t.equal(before.sql.filter((s) => /resource_history/.test(s)).length, 0, 'not written by it');
    await flushRows(trx);
  }));
  t.equal(sql.filter((s) => /resource_history/.test(s)).length, 1, 'written once, by flushRows');
  t.equal(await stored([id]), 1);
});

t.test('a savepoint may start once the rows are written, not before', async (t) => {
  const id = randomUUID();
  await inTransaction(db, async (trx) => {
    bufferRows(trx);
    await appendRows(trx, 'resource_history', [history(id)]);
    t.throws(() => trx.transaction(async () => undefined), /after flushRows/);
    await flushRows(trx);
    const seen = await trx.transaction(async (sp: Knex.Transaction) => Number((await sp('resource_history').where({ resource_id: id }).count({ n: '*' }))[0]!.n));
    t.equal(seen, 1);
  });
  t.equal(await stored([id]), 1);
});

t.test('a rollback drops the gathered rows; a COMMIT that finds rows gathered commits nothing', async (t) => {
  const a = randomUUID();
  await t.rejects(inTransaction(db, async (trx) => {
    bufferRows(trx);
    await appendRows(trx, 'resource_history', [history(a)]);
    throw new Error('changed my mind');
  }), /changed my mind/);
  t.equal(await stored([a]), 0);
  const b = randomUUID();
  const c = randomUUID();
  await t.rejects(inTransaction(db, async (trx) => {
    bufferRows(trx);
    await appendRows(trx, 'resource_history', [history(b)]);
    await trx('resource_history').where({ resource_id: b }).first(); // written by this read
    await appendRows(trx, 'resource_history', [history(c)]);
    // returns without flushRows
  }), /rows not written/);
  t.equal(await stored([b, c]), 0, 'neither the written row nor the gathered one committed');
});

t.test('without bufferRows, rows go in at once', async (t) => {
  const id = randomUUID();
  await inTransaction(db, async (trx) => {
    await appendRows(trx, 'resource_history', [history(id)]);
    t.equal(Number((await trx('resource_history').where({ resource_id: id }).count({ n: '*' }))[0]!.n), 1);
  });
  await appendRows(db, 'resource_history', [history(randomUUID())]);
  t.equal(await stored([id]), 1);
});
