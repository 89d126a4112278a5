/**
 * Verification of a client assertion (private_key_jwt, RFC 7523) at POST /auth/token:
 * signature with a key of the client's JWKS chosen by kid, iss = sub = client_id, aud = the token
 * endpoint, exp at most five minutes ahead, a jti never seen before (kept in the database, so a
 * replay is refused on every process). All of it through jose; nothing of JWT is parsed by hand.
 * https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html#authenticating-to-the-token-endpoint
 */
import { createHash, type webcrypto } from 'node:crypto';
import type { Knex } from 'knex';
import {
  createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, generateKeyPair, jwtVerify,
  type JWTPayload, type JWTVerifyGetKey,
} from 'jose';
import { findClient, type ClientRecord } from '../db/client-repository.js';
import { recordAssertion } from '../db/client-token-repository.js';
import { ASSERTION_ALGORITHMS, jwksUrlAllowed } from './client-registration.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The latest exp an assertion may carry, in seconds from now (SMART: at most five minutes). */
export const MAX_ASSERTION_LIFETIME = 300;
/** Seconds an assertion is still accepted after its exp (and before its nbf), for clocks that drift. */
export const ASSERTION_CLOCK_TOLERANCE = 60;
/** How long a fetched JWKS is reused (jose refetches earlier when an unknown kid shows up, at most every 30 s). */
const REMOTE_JWKS_MAX_AGE_MS = 10 * 60_000;
const REMOTE_JWKS_TIMEOUT_MS = 5_000;
const MAX_KEY_SETS = 1_000;

/** Why an assertion was refused: `reason` goes to the security log, `description` to the client. */
export class AssertionError extends Error {
  constructor(readonly reason: string, readonly description: string, readonly clientId?: string) {
    super(reason);
  }
}

/**
 * What a caller without the client's private key learns of any failure before the signature is
 * verified: the same words for an unknown client, a revoked one, an unknown kid and a bad signature.
 */
export const AUTHENTICATION_FAILED = 'Client authentication failed: no active registered client with a key of that kid verifies this assertion';

/** The key sets of registered clients, reused across requests (bounded; a changed JWKS or URL is a new entry). */
export class ClientKeySets {
  private readonly sets = new Map<string, JWTVerifyGetKey>();

  keySetOf(client: ClientRecord): JWTVerifyGetKey {
    const cacheKey = client.jwksUrl ? `url ${client.jwksUrl}` : `jwks ${client.id} ${JSON.stringify(client.jwks)}`;
    let set = this.sets.get(cacheKey);
    if (!set) {
      set = client.jwksUrl
        ? createRemoteJWKSet(new URL(client.jwksUrl), { timeoutDuration: REMOTE_JWKS_TIMEOUT_MS, cacheMaxAge: REMOTE_JWKS_MAX_AGE_MS })
        : createLocalJWKSet(client.jwks ?? { keys: [] });
      if (this.sets.size >= MAX_KEY_SETS) this.sets.delete(this.sets.keys().next().value!);
      this.sets.set(cacheKey, set);
    }
    return set;
  }
}

type DecoyKeys = Record<(typeof ASSERTION_ALGORITHMS)[number], webcrypto.CryptoKey>;
let decoyKeys: Promise<DecoyKeys> | undefined;

/**
 * Public keys no client holds. An assertion of an unknown or revoked client is verified against one
 * of them, so that it costs what a real client's bad signature costs and timing does not tell
 * which client ids exist.
 */
export function warmDecoyKeys(): Promise<DecoyKeys> {
  decoyKeys ??= Promise.all(ASSERTION_ALGORITHMS.map((alg) => generateKeyPair(alg))).then(([rs, es]) => ({ RS384: rs!.publicKey, ES384: es!.publicKey }));
  return decoyKeys;
}

export interface VerifiedAssertion {
  client: ClientRecord;
  jti: string;
  /** The assertion's exp (epoch seconds). */
  exp: number;
}

export interface VerifyOptions {
  /** The token endpoint URL the assertion's aud must name. */
  tokenUrl: string;
  keySets: ClientKeySets;
  /** The operator's JWKS URL prefixes now (a prefix removed since registration stops that client). */
  jwksAllowlist: readonly string[];
  /** The form's client_id, when the client sent one: it must be the assertion's iss. */
  clientIdParam?: string;
  now?: Date;
}

/** The description and log reason of a jose error raised while verifying a real client's assertion. */
function refusalOf(err: unknown, clientId: string): AssertionError {
  const fail = (reason: string, description = AUTHENTICATION_FAILED) => new AssertionError(reason, description, clientId);
  if (err instanceof errors.JWTExpired) return fail('assertion expired', `The assertion expired (exp is in the past by more than ${ASSERTION_CLOCK_TOLERANCE} s)`);
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim;
    if (err.reason === 'missing') return fail(`missing claim ${claim}`, `The assertion lacks the required claim '${claim}'`);
    if (claim === 'aud') return fail('wrong aud', 'The assertion\'s aud must be this server\'s token endpoint URL (token_endpoint in .well-known/smart-configuration)');
    if (claim === 'sub') return fail('sub differs from iss', 'The assertion\'s sub must equal its iss (the client_id)');
    if (claim === 'nbf') return fail('assertion not yet valid', 'The assertion is not valid yet (nbf is in the future)');
    return fail(`claim ${claim} invalid`, `The assertion's claim '${claim}' is invalid`);
  }
  if (err instanceof errors.JWKSNoMatchingKey) return fail('no key with that kid');
  if (err instanceof errors.JWKSMultipleMatchingKeys) return fail('several keys match the kid');
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('bad signature');
  if (err instanceof errors.JWKSTimeout) return fail('JWKS URL timed out');
  if (err instanceof errors.JWKSInvalid) return fail('JWKS invalid');
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return fail('algorithm not allowed', 'The assertion must be signed with RS384 or ES384');
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return fail('malformed assertion', 'client_assertion is not a well-formed signed JWT');
  if (err instanceof errors.JOSEError) return fail(`assertion refused (${err.code})`);
  // fetch errors of a JWKS URL (connection refused, bad JSON ...) and key import errors
  return fail('key set unavailable');
}

/**
 * Verifies a client assertion and records its jti; the client when it is accepted. Throws
 * AssertionError (answered 401 invalid_client) for every reason it is not.
 */
export async function verifyClientAssertion(db: Knex, assertion: string, opts: VerifyOptions): Promise<VerifiedAssertion> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    throw new AssertionError('malformed assertion', 'client_assertion is not a well-formed signed JWT');
  }
  const alg = header.alg;
  if (typeof alg !== 'string' || !(ASSERTION_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new AssertionError('algorithm not allowed', 'The assertion must be signed with RS384 or ES384');
  }
  if (typeof header.kid !== 'string' || header.kid === '') throw new AssertionError('no kid', 'The assertion\'s header must name its key (kid)');
  const iss = claims.iss;
  if (typeof iss !== 'string' || iss === '') throw new AssertionError('missing claim iss', 'The assertion\'s iss must be the client_id');
  if (opts.clientIdParam !== undefined && opts.clientIdParam !== iss) throw new AssertionError('client_id differs from iss', 'client_id must equal the assertion\'s iss');

  const now = opts.now ?? new Date();
  // exact ids only: a case-insensitive collation (MySQL) would otherwise match an iss spelled otherwise
  const lookedUp = iss.length <= 36 ? await findClient(db, iss) : undefined;
  const found = lookedUp?.id === iss ? lookedUp : undefined;
  const client = found?.status === 'active' && (!found.jwksUrl || jwksUrlAllowed(found.jwksUrl, opts.jwksAllowlist)) ? found : undefined;
  const verifyOptions = {
    algorithms: [...ASSERTION_ALGORITHMS], issuer: iss, subject: iss, audience: opts.tokenUrl,
    requiredClaims: ['exp', 'jti'], clockTolerance: ASSERTION_CLOCK_TOLERANCE, currentDate: now,
  };
  // One signature verification on every path an outsider can reach (unknown client, revoked
  // client, unknown kid, bad signature), each then answered alike: timing does not tell them apart.
  const decoyVerify = async (): Promise<void> => {
    await jwtVerify(assertion, (await warmDecoyKeys())[alg as (typeof ASSERTION_ALGORITHMS)[number]], verifyOptions).catch(() => undefined);
  };
  if (!client) {
    const reason = !found ? 'unknown client' : found.status !== 'active' ? 'revoked client' : 'jwks_url no longer allow-listed';
    await decoyVerify();
    throw new AssertionError(reason, AUTHENTICATION_FAILED, found?.id);
  }

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, opts.keySets.keySetOf(client), verifyOptions));
  } catch (err) {
    // no key was tried: do the verification a found key would have cost
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) await decoyVerify();
    throw refusalOf(err, client.id);
  }
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const exp = payload.exp!;
  if (exp > nowSeconds + MAX_ASSERTION_LIFETIME) {
    throw new AssertionError('exp too far ahead', `The assertion's exp must be at most ${MAX_ASSERTION_LIFETIME} seconds ahead`, client.id);
  }
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti === '' || jti.length > 255) throw new AssertionError('invalid jti', 'The assertion\'s jti must be a string of 1 to 255 characters', client.id);
  const fresh = await recordAssertion(db, {
    jtiHash: createHash('sha256').update(`${client.id}\n${jti}`).digest('hex'),
    clientId: client.id,
    // while the assertion could still be accepted, its jti must stay known
    keepUntil: new Date((exp + ASSERTION_CLOCK_TOLERANCE + 1) * 1000),
  });
  if (!fresh) throw new AssertionError('replayed jti', 'This assertion\'s jti was used already: sign a new assertion for every token request', client.id);
  return { client, jti, exp };
}
