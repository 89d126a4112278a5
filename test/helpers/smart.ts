/**
 * SMART Backend Services from the client's side, for tests: key pairs and JWKS made with jose,
 * signed client assertions, token requests and client registration through the admin API.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { TestApp } from './app.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface ClientKey {
  alg: 'RS384' | 'ES384';
  kid: string;
  privateKey: CryptoKey;
  /** The public JWK as registered (kid, alg, use). */
  jwk: JWK;
}

type CryptoKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** A fresh signing key pair with a unique kid. */
export async function clientKey(alg: 'RS384' | 'ES384' = 'RS384'): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `kid-${randomUUID()}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, jwk };
}

/** A client address no other test uses (to find this test's audit rows). */
export const freshIp = (): string => `10.${[...randomBytes(3)].join('.')}`;

export interface AssertionClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  /** Seconds from now. */
  expIn?: number;
  jti?: string;
  kid?: string;
}

/** A client assertion signed with `key` (claims default to a valid one for `clientId`). */
export async function signAssertion(key: ClientKey, clientId: string, aud: string, c: AssertionClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: c.kid ?? key.kid, typ: 'JWT' })
    .setIssuer(c.iss ?? clientId)
    .setSubject(c.sub ?? clientId)
    .setAudience(c.aud ?? aud)
    .setExpirationTime(now + (c.expIn ?? 240))
    .setJti(c.jti ?? randomUUID())
    .sign(key.privateKey);
}

/** POST /auth/token with a form; `fields` undefined values are left out. */
export function tokenRequest(app: FastifyInstance, fields: Record<string, string | undefined>, ip = freshIp()): Promise<LightMyRequestResponse> {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.append(k, v);
  return app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString(), remoteAddress: ip });
}

/** The form of a client_credentials request with an assertion. */
export const tokenForm = (assertion: string, scope?: string): Record<string, string | undefined> => ({
  grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion, scope,
});

/** The token endpoint the server publishes (what aud must be). */
export async function tokenEndpoint(app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/fhir/.well-known/smart-configuration' });
  return res.json().token_endpoint as string;
}

/** Registers a client through the admin API; its client_id (throws unless 201). */
export async function registerClient(h: TestApp, body: Record<string, unknown>): Promise<string> {
  const res = await h.app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${h.token}` }, payload: { name: `client ${randomUUID()}`, kind: 'lab', ...body } });
  if (res.statusCode !== 201) throw new Error(`registration failed: ${res.statusCode} ${res.body}`);
  return res.json().client_id as string;
}
