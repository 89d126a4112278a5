/**
 * What every MySQL/MariaDB session of HMS is set to, whatever the server's defaults: UTC, strict
 * tables, and no NO_BACKSLASH_ESCAPES (under which the backslash escaping of bound values would
 * let a quote end a string).
 */
import t from 'tap';
import { testDb } from '../helpers/app.js';
import { MYSQL_SESSION_SETUP } from '../../src/db/knex.js';
import { dialectOf } from '../../src/db/dialect.js';

t.test('a session drops NO_BACKSLASH_ESCAPES and keeps the server\'s other modes', async (t) => {
  const db = await testDb(t);
  if (dialectOf(db) !== 'mysql') { t.pass('SQLite has no sql_mode'); return; }
  for (const start of ['NO_BACKSLASH_ESCAPES', 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES', 'ERROR_FOR_DIVISION_BY_ZERO,NO_BACKSLASH_ESCAPES', '']) {
    const conn = await db.client.acquireConnection();
    try {
      const query = (sql: string, values: unknown[] = []) => new Promise<Record<string, unknown>[]>((resolve, reject) => conn.query(sql, values, (e: Error | null, rows: Record<string, unknown>[]) => (e ? reject(e) : resolve(rows))));
      await query('SET SESSION sql_mode = ?', [start]);
      await query(MYSQL_SESSION_SETUP);
      const mode = String((await query('SELECT @@SESSION.sql_mode AS m'))[0]!.m);
      t.notMatch(mode, /NO_BACKSLASH_ESCAPES/, `from '${start}': ${mode}`);
      t.match(mode, /STRICT_ALL_TABLES/);
      for (const kept of start.split(',').filter((m) => m && m !== 'NO_BACKSLASH_ESCAPES')) t.match(mode, kept);
      const [row] = await query('SELECT ? AS v', ["it's \\ a ' quote"]);
      t.equal(row!.v, "it's \\ a ' quote", 'a bound value with quotes and backslashes arrives as it was');
    } finally {
      await db.client.releaseConnection(conn);
    }
  }
});
