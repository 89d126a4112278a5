/**
 * Read statements that stop when their request's client goes away: on MySQL the statement runs
 * on a connection of its own, and an abort sends knex's cancelQuery (KILL QUERY) for it, so a
 * costly search does not keep a pool connection and a server thread busy for nobody.
 * SQLite statements run synchronously, so nothing can interrupt them from here: the statement
 * deadline (statement-limits.ts) bounds them instead.
 */
import type { Knex } from 'knex';
import { dialectOf } from './dialect.js';

/** The statement was stopped because the request it served was abandoned by its client. */
export class StatementCancelledError extends Error {
  readonly code = 'HMS_STATEMENT_CANCELLED';
  constructor(options?: { cause?: unknown }) {
    super('statement cancelled: the client went away', options);
  }
}

type Statement<T> = (Knex.QueryBuilder | Knex.Raw) & PromiseLike<T>;

/** A mysql2 connection as knex's pool hands it out; a destroyed one fails validation and is replaced. */
interface PooledConnection { destroy(): void }

/**
 * Runs `statement` so that aborting `signal` cancels it on the server. Without a signal, on
 * SQLite, or inside a transaction (whose connection is not ours to interrupt) it simply runs.
 */
export async function cancellable<T>(db: Knex, statement: Statement<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal || dialectOf(db) !== 'mysql' || (db as Knex & { isTransaction?: boolean }).isTransaction) return await statement;
  if (signal.aborted) throw new StatementCancelledError();
  const client = db.client as Knex.Client & {
    acquireConnection(): Promise<PooledConnection>;
    releaseConnection(conn: PooledConnection): Promise<unknown>;
    cancelQuery(conn: PooledConnection): Promise<unknown>;
  };
  const conn = await client.acquireConnection();
  let kill: Promise<unknown> | undefined;
  const onAbort = (): void => { kill = client.cancelQuery(conn).catch(() => undefined); };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal.aborted) throw new StatementCancelledError();
    return await statement.connection(conn);
  } catch (err) {
    throw signal.aborted ? new StatementCancelledError({ cause: err }) : err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (kill) {
      // the KILL must land before the connection serves anyone else, and the connection is not
      // reused at all: a KILL that arrived after the statement ended must not hit the next one
      await kill;
      conn.destroy();
    }
    await client.releaseConnection(conn);
  }
}
