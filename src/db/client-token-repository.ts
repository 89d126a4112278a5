/**
 * client_tokens rows (access tokens of registered clients, by SHA-256 only; migration 0118) and
 * client_assertions rows (the jti of every assertion accepted, until it expires; migration 0117).
 */
import type { Knex } from 'knex';
import type { ClientKind } from '../auth/principal.js';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';

/** A live access token with what authentication needs of its client. */
export interface LiveClientToken {
  tokenId: string;
  clientId: string;
  clientKind: ClientKind;
  scope: string;
  /** 'YYYY-MM-DD HH:MM:SS' UTC. */
  expiresAt: string;
}

export async function insertClientToken(db: Knex, t: { id: string; tokenHash: string; clientId: string; scope: string; now: Date; expiresAt: Date }): Promise<void> {
  await db('client_tokens').insert({
    id: t.id, token_hash: t.tokenHash, client_id: t.clientId, scope: t.scope,
    created_at: dateToSqlTimestamp(t.now), expires_at: dateToSqlTimestamp(t.expiresAt), revoked: false,
  });
}

/** The token with this hash when it is live: not revoked, not expired, and its client active. */
export async function findLiveClientToken(db: Knex, tokenHash: string, now: Date): Promise<LiveClientToken | undefined> {
  const row = await db('client_tokens as t')
    .join('api_clients as c', 'c.id', 't.client_id')
    .where('t.token_hash', tokenHash)
    .andWhere('t.revoked', false)
    .andWhere('t.expires_at', '>', dateToSqlTimestamp(now))
    .andWhere('c.status', 'active')
    .first('t.id as tokenId', 't.client_id as clientId', 'c.kind as clientKind', 't.scope as scope', 't.expires_at as expiresAt');
  return row ? { ...(row as LiveClientToken), expiresAt: String((row as LiveClientToken).expiresAt) } : undefined;
}

/** Revokes every token of a client that is not revoked yet; the number revoked. */
export async function revokeClientTokens(db: Knex, clientId: string): Promise<number> {
  return db('client_tokens').where({ client_id: clientId, revoked: false }).update({ revoked: true });
}

/** Whether an error is a unique-key violation (either dialect). */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * Records an accepted assertion's jti until `keepUntil`; false when it was recorded already (a
 * replay). The unique key decides, so two processes racing with the same assertion get one true.
 */
export async function recordAssertion(db: Knex, a: { jtiHash: string; clientId: string; keepUntil: Date }): Promise<boolean> {
  try {
    await db('client_assertions').insert({ jti_hash: a.jtiHash, client_id: a.clientId, expires_at: dateToSqlTimestamp(a.keepUntil) });
    return true;
  } catch (err) {
    if (isUniqueViolation(err)) return false;
    throw err;
  }
}

/**
 * Deletes up to `limit` assertion rows and `limit` token rows that expired before `now` (neither can
 * be accepted any more). Rows are picked with a plain read and deleted by key, each rechecked, so
 * only those rows are locked. Returns how many rows were deleted.
 */
export async function purgeExpiredClientRows(db: Knex, now: Date, limit = 500): Promise<number> {
  const cutoff = dateToSqlTimestamp(now);
  let n = 0;
  const jtis = (await db('client_assertions').where('expires_at', '<', cutoff).limit(limit).pluck('jti_hash')) as string[];
  if (jtis.length) n += await db('client_assertions').whereIn('jti_hash', jtis).andWhere('expires_at', '<', cutoff).delete();
  const tokens = (await db('client_tokens').where('expires_at', '<', cutoff).limit(limit).pluck('id')) as string[];
  if (tokens.length) n += await db('client_tokens').whereIn('id', tokens).andWhere('expires_at', '<', cutoff).delete();
  return n;
}
