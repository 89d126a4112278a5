/**
 * Access tokens of registered systems (SMART Backend Services): `hmsc.` + 32 random bytes
 * (base64url), shown once and stored only as their SHA-256. A token is live until its expiry (at
 * most five minutes), its revocation, or its client's. https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { findLiveClientToken, insertClientToken } from '../db/client-token-repository.js';
import type { AuthCache } from './auth-cache.js';
import type { ClientPrincipal } from './principal.js';
import { clientSubject } from './revocation.js';
import { parseScopes } from './scopes.js';

/** Client access tokens start with this, so a bearer token is looked up in one table only. */
export const CLIENT_TOKEN_PREFIX = 'hmsc.';
/** The longest lifetime of a client access token, in seconds (SMART recommends at most five minutes). */
export const MAX_CLIENT_TOKEN_TTL = 300;

const TOKEN_SHAPE = /^hmsc\.[A-Za-z0-9_-]{43}$/;

export type ClientTokenCache = AuthCache<ClientPrincipal>;

export const hashClientToken = (token: string): string => createHash('sha256').update(token).digest('hex');

const sqlTime = (s: string): number => Date.parse(s.replace(' ', 'T') + 'Z');

/** Issues an access token for a client and scope; returns the token (never stored) and its row id. */
export async function issueClientToken(db: Knex, t: { clientId: string; scope: string; ttlSeconds: number; now?: Date }): Promise<{ token: string; tokenId: string; expiresIn: number }> {
  const token = CLIENT_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const tokenId = uuidv7();
  const expiresIn = Math.min(t.ttlSeconds, MAX_CLIENT_TOKEN_TTL);
  // expiry in whole seconds, rounded down: the token never outlives the expires_in it was sold with
  const nowMs = (t.now ?? new Date()).getTime();
  const now = new Date(Math.floor(nowMs / 1000) * 1000);
  await insertClientToken(db, { id: tokenId, tokenHash: hashClientToken(token), clientId: t.clientId, scope: t.scope, now, expiresAt: new Date(now.getTime() + expiresIn * 1000) });
  return { token, tokenId, expiresIn };
}

/** The client behind a live access token; undefined when unknown, expired, revoked or its client is revoked. */
export async function authenticateClientToken(db: Knex, token: string, cache?: ClientTokenCache): Promise<ClientPrincipal | undefined> {
  if (!TOKEN_SHAPE.test(token)) return undefined;
  const now = Date.now();
  const tokenHash = hashClientToken(token);
  const cached = cache?.get(tokenHash, now);
  if (cached) return cached;
  const live = await findLiveClientToken(db, tokenHash, new Date(now));
  if (!live) return undefined;
  const principal: ClientPrincipal = {
    kind: 'client', clientId: live.clientId, clientKind: live.clientKind, scope: live.scope,
    scopes: parseScopes(live.scope).scopes, tokenId: live.tokenId,
  };
  cache?.set(tokenHash, principal, clientSubject(live.clientId), now, sqlTime(live.expiresAt));
  return principal;
}
