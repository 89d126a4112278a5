/** Access tokens of registered systems (SMART Backend Services). Placeholder until the token endpoint lands. */
import type { Knex } from 'knex';
import type { AuthCache } from './auth-cache.js';
import type { ClientPrincipal } from './principal.js';

/** Client access tokens start with this, so a bearer token is looked up in one table only. */
export const CLIENT_TOKEN_PREFIX = 'hmsc.';

export type ClientTokenCache = AuthCache<ClientPrincipal>;

/** The client behind a live access token; undefined when unknown, expired or its client is revoked. */
export async function authenticateClientToken(_db: Knex, _token: string, _cache?: ClientTokenCache): Promise<ClientPrincipal | undefined> {
  return undefined;
}
