/**
 * What Galera asks of the schema (docs/high-availability.md): every table has a primary key
 * (Galera replicates row events by key; a table without one is refused or replicated badly) and
 * every table is InnoDB. Checked on the migrated MariaDB schema.
 */
import t from 'tap';
import { testDb } from '../helpers/app.js';

t.test('every table has a primary key and is InnoDB', { skip: process.env.DATABASE_URL ? false : 'needs DATABASE_URL (MariaDB)' }, async (t) => {
  const db = await testDb(t);
  const [tables] = (await db.raw(
    `SELECT t.table_name AS name, t.engine AS engine,
            (SELECT COUNT(*) FROM information_schema.table_constraints c
              WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY') AS pk
       FROM information_schema.tables t WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'`,
  )) as [{ name: string; engine: string; pk: number }[]];
  t.ok(tables.length >= 12, `${tables.length} tables`);
  t.same(tables.filter((r) => Number(r.pk) !== 1).map((r) => r.name), [], 'no table without a primary key');
  t.same(tables.filter((r) => r.engine !== 'InnoDB').map((r) => `${r.name} (${r.engine})`), [], 'every table InnoDB');
});
