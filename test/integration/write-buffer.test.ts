/**
 * The write buffer of a transaction (src/db/write-buffer.ts) against the real database: rows
 * gathered go in as one multi-row INSERT; a statement naming their table sees them; a savepoint
 * starts only after them; ROLLBACK drops them; a COMMIT reached with rows still gathered commits
 * nothing of the transaction; an UPDATE or DELETE of any table comes after them; rows of another
 * column set or of a table that may not wait go in as they must. GATHERED is checked against the
 * schema: no foreign key points into its tables, no INSERT trigger watches them. Embedded SQLite,
 * or MariaDB with DATABASE_URL.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { testDb } from '../helpers/app.js';
import { GATHERED, appendRows, bufferRows, flushRows } from '../../src/db/write-buffer.js';
import { inTransaction } from '../../src/db/transactions.js';
import { dialectOf } from '../../src/db/dialect.js';

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

t.test('an UPDATE or DELETE of any table comes after the gathered rows (its cascades and triggers see them)', async (t) => {
  for (const statement of ['update', 'delete'] as const) {
    const id = randomUUID();
    await inTransaction(db, async (trx) => {
      bufferRows(trx);
      await appendRows(trx, 'resource_history', [history(id)]);
      const { sql } = await statements(async () => {
        const q = trx('patients').where('id', 'no such patient');
        await (statement === 'update' ? q.update({ updated_at: '2026-01-01 00:00:00' }) : q.delete());
      });
      t.match(sql[0], /^insert into .resource_history/i, `the rows went in before the ${statement}`);
      t.equal(sql.length, 2);
      await flushRows(trx);
    });
    t.equal(await stored([id]), 1);
  }
});

t.test('rows of another column set go in by an INSERT of their own; a table that may not wait takes its rows at once', async (t) => {
  const a = randomUUID();
  const b = randomUUID();
  const key = `buffer-test-${randomUUID()}`;
  const { sql } = await statements(() => inTransaction(db, async (trx) => {
    bufferRows(trx);
    await appendRows(trx, 'resource_history', [history(a)]);
    const { recorded_by: _, ...without } = history(b);
    await appendRows(trx, 'resource_history', [without]);
    const locks = await statements(() => appendRows(trx, 'conditional_locks', [{ lock_key: key, touched_at: '2026-01-01 00:00:00' }]));
    t.equal(locks.sql.length, 1, 'conditional_locks is not gathered: written at once');
    t.notOk(GATHERED.has('conditional_locks'));
    await flushRows(trx);
  }));
  t.equal(sql.filter((s) => /^insert into .resource_history/i.test(s)).length, 2, 'one INSERT per column set');
  t.equal(await stored([a, b]), 2);
  await db('conditional_locks').where({ lock_key: key }).delete();
});

t.test('no foreign key points into a gathered table and no INSERT trigger watches one (the order rows go in is free)', async (t) => {
  const referencing: string[] = [];
  const triggers: string[] = [];
  if (dialectOf(db) === 'mysql') {
    const [fks] = await db.raw(`SELECT TABLE_NAME AS t, REFERENCED_TABLE_NAME AS r FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL`) as [{ t: string; r: string }[]];
    for (const fk of fks) if (GATHERED.has(fk.r)) referencing.push(`${fk.t} -> ${fk.r}`);
    const [trs] = await db.raw(`SELECT TRIGGER_NAME AS n, EVENT_OBJECT_TABLE AS t FROM information_schema.TRIGGERS
      WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_MANIPULATION = 'INSERT'`) as [{ n: string; t: string }[]];
    for (const tr of trs) if (GATHERED.has(tr.t)) triggers.push(tr.n);
    t.ok(fks.length > 10 && trs.length > 3, 'the schema has foreign keys and INSERT triggers to look at');
  } else {
    const tables = (await db.raw(`SELECT name FROM sqlite_master WHERE type = 'table'`)) as { name: string }[];
    let seen = 0;
    for (const { name } of tables) {
      const fks = (await db.raw(`PRAGMA foreign_key_list(\`${name}\`)`)) as { table: string }[];
      seen += fks.length;
      for (const fk of fks) if (GATHERED.has(fk.table)) referencing.push(`${name} -> ${fk.table}`);
    }
    const trs = (await db.raw(`SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'`)) as { name: string; tbl_name: string; sql: string }[];
    for (const tr of trs) if (GATHERED.has(tr.tbl_name) && /\bINSERT\s+ON\b/i.test(tr.sql)) triggers.push(tr.name);
    t.ok(seen > 10 && trs.length > 3, 'the schema has foreign keys and triggers to look at');
  }
  for (const table of GATHERED) t.ok(await db.schema.hasTable(table), `${table} exists`);
  t.same(referencing, [], 'no foreign key references a gathered table');
  t.same(triggers, [], 'no INSERT trigger on a gathered table');
});
