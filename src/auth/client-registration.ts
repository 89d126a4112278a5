/**
 * Checks of what an admin registers for a SMART Backend Services client: its allowed scopes, its
 * JWKS by value (public RS384 / ES384 signing keys, each with its own kid) or its JWKS URL (from
 * the operator's allow-list). https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
 */
import type { webcrypto } from 'node:crypto';
import { importJWK, type JSONWebKeySet, type JWK } from 'jose';
import { badRequest } from '../fhir/outcome.js';
import { formatScope, grantScopes, parseScopes, PERMISSIONS } from './scopes.js';
import { namedScopeOnly } from '../fhir/access.js';

/** The algorithms a client may sign its assertions with (SMART Backend Services). */
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384'] as const;

/** Keys a JWKS by value may hold (several allow key rotation; more is a mistake or an abuse). */
export const MAX_JWKS_KEYS = 10;

/** Members of a JWK that only private (or symmetric) keys have. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * The allowed scopes of a client in canonical form (v2 spelling, merged per type). 400 for an
 * unknown scope (granular `?` scopes included), a type this server does not serve, or none at all.
 */
export function checkAllowedScopes(scope: string, knownTypes: ReadonlySet<string>): string {
  const { scopes, unknown } = parseScopes(scope);
  if (unknown.length) throw badRequest(`Unknown or unsupported scopes: ${unknown.join(' ')} (system/<Type|*>.<cruds> or .read/.write/.*; no ?query scopes)`, 'scope');
  const strange = scopes.filter((s) => s.type !== '*' && !knownTypes.has(s.type)).map(formatScope);
  if (strange.length) throw badRequest(`Scopes for resource types this server does not serve: ${strange.join(' ')}`, 'scope');
  if (!scopes.length) throw badRequest('scope must name at least one scope', 'scope');
  // intersecting with everything merges duplicates and spells v1 forms the v2 way; a named scope on a
  // type only named scopes reach (restricted) is kept as it is, never folded into system/*
  const everything = new Set(PERMISSIONS);
  const named = scopes.filter((s) => s.type !== '*' && namedScopeOnly(s.type));
  const merged = [
    ...grantScopes(scopes.filter((s) => !named.includes(s)), [{ type: '*', permissions: everything }]),
    ...grantScopes(named, named.map((s) => ({ type: s.type, permissions: everything })), namedScopeOnly),
  ].sort((a, b) => (a.type === b.type ? 0 : a.type === '*' ? -1 : b.type === '*' ? 1 : a.type < b.type ? -1 : 1));
  return merged.map(formatScope).join(' ');
}

/** The algorithm a JWK verifies: its own `alg`, else the one its key type implies. */
function algorithmOf(jwk: JWK): string | undefined {
  if (jwk.alg !== undefined) return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS384';
  if (jwk.kty === 'EC') return 'ES384';
  return undefined;
}

/**
 * Checks a JWKS given by value: 1 to MAX_JWKS_KEYS public signing keys, each with a unique kid,
 * importable by jose for RS384 (RSA, at least 2048 bits) or ES384 (EC P-384). Returns the set as
 * given; 400 with the reason otherwise (private keys are refused: the server must never hold them).
 */
export async function checkJwks(value: unknown): Promise<JSONWebKeySet> {
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw badRequest('jwks must be a JSON Web Key Set: {"keys": [ ... ]} with at least one key', 'jwks');
  if (keys.length > MAX_JWKS_KEYS) throw badRequest(`jwks holds ${keys.length} keys; at most ${MAX_JWKS_KEYS} are accepted`, 'jwks');
  const kids = new Set<string>();
  for (const [i, raw] of keys.entries()) {
    const where = `jwks.keys[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest(`${where} is not a JSON Web Key`, where);
    const jwk = raw as JWK;
    if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw badRequest(`${where} is a private or symmetric key: register the public key only`, where);
    if (typeof jwk.kid !== 'string' || jwk.kid === '' || jwk.kid.length > 255) throw badRequest(`${where} needs a kid (1 to 255 characters): assertions name their key by kid`, where);
    if (kids.has(jwk.kid)) throw badRequest(`${where}: kid '${jwk.kid}' is used by another key of the set`, where);
    kids.add(jwk.kid);
    if (jwk.use !== undefined && jwk.use !== 'sig') throw badRequest(`${where}: use must be 'sig'`, where);
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) throw badRequest(`${where}: key_ops must include 'verify'`, where);
    const alg = algorithmOf(jwk);
    if (!alg || !(ASSERTION_ALGORITHMS as readonly string[]).includes(alg)) throw badRequest(`${where} must be an RS384 (RSA) or ES384 (EC P-384) key`, where);
    let key: webcrypto.CryptoKey | Uint8Array;
    try {
      key = await importJWK(jwk, alg);
    } catch {
      throw badRequest(`${where} is not a valid ${alg} public key`, where);
    }
    if (!(key instanceof Uint8Array) && key.type !== 'public') throw badRequest(`${where} is not a public key`, where);
    const bits = (key as webcrypto.CryptoKey).algorithm as { modulusLength?: number };
    if (alg === 'RS384' && (bits.modulusLength ?? 0) < 2048) throw badRequest(`${where}: RSA keys must have at least 2048 bits`, where);
  }
  return value as JSONWebKeySet;
}

/** The operator's JWKS URL prefixes (HMS_JWKS_URL_ALLOWLIST), normalised ('https://a.org' reads as 'https://a.org/'). */
export function jwksUrlAllowlist(config: string | undefined): string[] {
  return (config ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((s) => new URL(s).href);
}

/**
 * Whether a JWKS URL may be fetched: http(s), no user info, and its normalised form starts with an
 * allow-listed prefix. Prefixes are compared after URL normalisation, so a bare origin cannot be
 * stretched to another host ('https://a.org' does not admit 'https://a.org.evil.example/').
 */
export function jwksUrlAllowed(url: string, allowlist: readonly string[]): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false;
  if (parsed.username || parsed.password) return false;
  return allowlist.some((prefix) => parsed.href.startsWith(prefix));
}

/** Checks a JWKS URL at registration: 400 unless it is allowed. Returns it normalised. */
export function checkJwksUrl(url: string, allowlist: readonly string[]): string {
  if (!allowlist.length) throw badRequest('This server accepts no JWKS URLs (HMS_JWKS_URL_ALLOWLIST is not set): register the keys by value (jwks)', 'jwks_url');
  if (!jwksUrlAllowed(url, allowlist)) throw badRequest('jwks_url must be an http(s) URL starting with one of the prefixes the operator allows', 'jwks_url');
  return new URL(url).href;
}
