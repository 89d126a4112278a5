/**
 * A time limit on every database statement of the API (OWASP API4): MariaDB's max_statement_time
 * or MySQL's max_execution_time on each pooled connection, and on SQLite a deadline function that
 * search statements call per row (better-sqlite3 has no progress handler or interrupt:
 * https://github.com/WiseLibs/better-sqlite3/issues/707).
 */
import type { Knex } from 'knex';

/** The MySQL server family, which decides the name and unit of the time limit. */
export type MysqlFlavour = 'mariadb' | 'mysql';

interface MysqlConnection { query: (sql: string, cb: (err: Error | null, rows?: unknown) => void) => void }

function run(conn: MysqlConnection, sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => conn.query(sql, (err, rows) => (err ? reject(err) : resolve(rows))));
}

/** The flavour of the server a connection talks to, from SELECT VERSION(). */
export async function mysqlFlavour(conn: MysqlConnection): Promise<MysqlFlavour> {
  const rows = (await run(conn, 'SELECT VERSION() AS v')) as { v: string }[];
  return /mariadb/i.test(String(rows[0]?.v)) ? 'mariadb' : 'mysql';
}

/**
 * The SET clause that bounds each statement of a session to `seconds` (none when 0).
 * MariaDB bounds every statement (seconds, fractions allowed); MySQL 8 only read-only SELECTs (ms).
 */
export function statementTimeoutClause(flavour: MysqlFlavour, seconds: number): string | undefined {
  if (!(seconds > 0)) return undefined;
  return flavour === 'mariadb'
    ? `max_statement_time = ${Number(seconds.toFixed(6))}`
    : `max_execution_time = ${Math.max(1, Math.round(seconds * 1000))}`;
}

/**
 * An afterCreate for the mysql2 pool: `setup` (time zone, SQL mode), then the time limit. The
 * flavour is asked of the first connection only; every later one reuses the answer.
 */
export function mysqlAfterCreate(setup: string, seconds: number): (conn: MysqlConnection, done: (err: Error | null, conn: unknown) => void) => void {
  let flavour: Promise<MysqlFlavour> | undefined;
  return (conn, done) => {
    const limited = seconds > 0
      ? (flavour ??= mysqlFlavour(conn)).then((f) => `${setup}, ${statementTimeoutClause(f, seconds)}`)
      : Promise.resolve(setup);
    limited.then((sql) => run(conn, sql)).then(() => done(null, conn), (err: Error) => {
      flavour = undefined; // ask again on the next connection
      done(err, conn);
    });
  };
}

/** Thrown (inside SQLite) by the deadline function once a statement has run past its limit. */
export class StatementTimeoutError extends Error {
  readonly code = 'HMS_STATEMENT_TIMEOUT';
  constructor(readonly seconds: number) {
    super(`statement stopped after running longer than ${seconds} s`);
  }
}

/** The SQL function search statements call in their WHERE (SQLite). */
export const DEADLINE_FUNCTION = 'hms_within_deadline';

/** The part of a better-sqlite3 connection the deadline needs. */
export interface SqliteConnection {
  function(name: string, options: { deterministic?: boolean; directOnly?: boolean }, fn: () => number): unknown;
}

/** How often (in calls) the deadline function reads the clock: a call per row must stay cheap. */
const CLOCK_EVERY = 64;

/** The knex instances (by client config, which transactions share) whose connections have the deadline function. */
const withDeadline = new WeakSet<object>();

/**
 * Registers the deadline function on a SQLite connection. `started()` is when the statement now
 * running began: one connection runs one statement at a time, synchronously, so that is well defined.
 */
export function registerDeadline(conn: SqliteConnection, seconds: number, started: () => number): void {
  const limitMs = seconds * 1000;
  let calls = 0;
  // not deterministic: SQLite must call it for every row rather than once per statement
  conn.function(DEADLINE_FUNCTION, { deterministic: false, directOnly: true }, () => {
    if (++calls % CLOCK_EVERY === 0 && Date.now() - started() > limitMs) throw new StatementTimeoutError(seconds);
    return 1;
  });
}

/** The SQLite side of the limit: the pool's afterCreate step, and the hook that times each statement. */
export interface SqliteDeadline {
  /** Registers the function on a new connection (the pool's afterCreate). */
  register(conn: SqliteConnection): void;
  /** Times every statement of `db` from knex's 'query' event, emitted synchronously right before the driver runs it. */
  attach(db: Knex): Knex;
}

/** A SQLite deadline of `seconds` per statement, for one knex instance (one connection). */
export function sqliteDeadline(seconds: number): SqliteDeadline {
  let startedAt = Date.now();
  return {
    register: (conn) => registerDeadline(conn, seconds, () => startedAt),
    attach(db) {
      db.on('query', () => { startedAt = Date.now(); });
      withDeadline.add(db.client.config as object);
      return db;
    },
  };
}

/**
 * Adds the deadline condition to a search statement's WHERE on SQLite (nothing on MySQL, whose
 * server enforces its own limit, or where no limit is configured).
 */
export function whereWithinDeadline(db: Knex, q: Knex.QueryBuilder): Knex.QueryBuilder {
  if (withDeadline.has(db.client.config as object)) q.whereRaw(`${DEADLINE_FUNCTION}()`);
  return q;
}
