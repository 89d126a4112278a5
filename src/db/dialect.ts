import type { Knex } from 'knex';

export type Dialect = 'mysql' | 'sqlite';

/** Which SQL dialect a knex instance talks. */
export function dialectOf(db: Knex): Dialect {
  const client = String(db.client.config.client);
  return client === 'mysql2' || client === 'mysql' ? 'mysql' : 'sqlite';
}
