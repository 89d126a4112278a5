import knexFactory, { type Knex } from 'knex';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { migrationSource } from './migration-source.js';
import { mysqlAfterCreate, sqliteDeadline, type SqliteConnection } from './statement-limits.js';

export type Db = Knex;
export { dialectOf, type Dialect } from './dialect.js';

/**
 * Run on every new MySQL connection: UTC, strict mode so bad values fail instead of being cut, and
 * never NO_BACKSLASH_ESCAPES: mysql2 escapes the values it binds with backslashes, which that mode
 * would turn into literal characters (a quote in a value would then end the string: SQL
 * injection). The server's other modes are kept.
 */
export const MYSQL_SESSION_SETUP = "SET time_zone = '+00:00', sql_mode = CONCAT(TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ',')), ',STRICT_ALL_TABLES')";

/** mysql2 connection options for a mysql:// URL: UTC, date strings, utf8mb4. */
export function mysqlConnection(databaseUrl: string) {
  const url = new URL(databaseUrl.replace(/^mariadb:/, 'mysql:'));
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database: url.pathname.replace(/^\//, ''),
    timezone: 'Z',
    dateStrings: true,
    charset: 'utf8mb4',
    supportBigNumbers: true,
  };
}

export interface DbOptions {
  /**
   * Seconds any statement may run (HMS_STATEMENT_TIMEOUT; 0 or absent: no limit). The API's
   * connections have it; maintenance commands (migrate, seed) do not, as a migration of a large
   * table may rightly run for minutes. See src/db/statement-limits.ts.
   */
  statementTimeout?: number;
}

/**
 * Opens the database the config names: MySQL/MariaDB through mysql2 when DATABASE_URL is set,
 * otherwise the embedded SQLite file under HMS_DATA_DIR. Dates come back as strings in UTC
 * ('YYYY-MM-DD HH:MM:SS') on both, so mappers see one format.
 */
export function createDb(config: Pick<Config, 'DATABASE_URL' | 'HMS_DATA_DIR' | 'HMS_DB_POOL_MAX'>, options: DbOptions = {}): Knex {
  const timeout = options.statementTimeout ?? 0;
  if (config.DATABASE_URL) {
    return knexFactory({
      client: 'mysql2',
      // errors must not carry the SQL with its values: they reach logs, and values are patient data
      compileSqlOnError: false,
      connection: mysqlConnection(config.DATABASE_URL),
      pool: {
        min: 0,
        max: config.HMS_DB_POOL_MAX,
        afterCreate: mysqlAfterCreate(MYSQL_SESSION_SETUP, timeout),
      },
      migrations: { migrationSource, tableName: 'knex_migrations' },
    });
  }
  mkdirSync(config.HMS_DATA_DIR, { recursive: true });
  const deadline = timeout > 0 ? sqliteDeadline(timeout) : undefined;
  const db = knexFactory({
    client: 'better-sqlite3',
    compileSqlOnError: false,
    connection: { filename: join(config.HMS_DATA_DIR, 'hms.sqlite') },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: SqliteConnection & { pragma: (p: string) => unknown }, done: (err: Error | null, conn: unknown) => void) {
        conn.pragma('journal_mode = WAL');
        conn.pragma('foreign_keys = ON');
        conn.pragma('busy_timeout = 5000');
        conn.pragma('synchronous = NORMAL');
        deadline?.register(conn);
        done(null, conn);
      },
    },
    migrations: { migrationSource, tableName: 'knex_migrations' },
  });
  return deadline ? deadline.attach(db) : db;
}

/** Applies every pending migration; returns the names applied. */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}
