/**
 * SMART configuration of this server (GET /fhir/.well-known/smart-configuration): the token
 * endpoint of SMART Backend Services and the scopes it grants, derived from the registry.
 * https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known
 */
import { allResourceDefinitions } from './registry.js';
import { ASSERTION_ALGORITHMS } from '../auth/client-registration.js';

/**
 * The token endpoint URL for a FHIR base URL: the base without its trailing `/fhir` (the API
 * serves /auth beside /fhir) + `/auth/token`; for a base not ending in /fhir, its origin +
 * `/auth/token`. The assertion's aud is compared with exactly this.
 */
export function tokenEndpointUrl(fhirBaseUrl: string): string {
  const base = fhirBaseUrl.replace(/\/+$/, '');
  if (/\/fhir$/.test(base)) return `${base.slice(0, -'/fhir'.length)}/auth/token`;
  return `${new URL(base).origin}/auth/token`;
}

/** The v2 permissions a type's interactions offer, in scope order (c r u d s). */
function permissionsOf(interactions: readonly string[]): string {
  const has = (i: string) => interactions.includes(i);
  return [has('create') ? 'c' : '', has('read') ? 'r' : '', has('update') ? 'u' : '', has('delete') ? 'd' : '', has('search-type') ? 's' : ''].join('');
}

/**
 * The scopes published in scopes_supported: system/*.cruds and system/*.rs, then per registry type
 * every permission its interactions offer and, when it differs, its read-only form (.rs). Any other
 * v2 combination and the v1 forms are accepted as well (docs/smart-backend-services.md).
 */
export function supportedScopes(): string[] {
  const out = ['system/*.cruds', 'system/*.rs'];
  for (const def of allResourceDefinitions()) {
    const all = permissionsOf(def.interactions);
    const read = all.replace(/[cud]/g, '');
    if (all) out.push(`system/${def.type}.${all}`);
    if (read && read !== all) out.push(`system/${def.type}.${read}`);
  }
  return out;
}

/** The .well-known/smart-configuration document for a token endpoint URL. */
export function smartConfiguration(tokenUrl: string): Record<string, unknown> {
  return {
    token_endpoint: tokenUrl,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    scopes_supported: supportedScopes(),
    capabilities: ['client-confidential-asymmetric', 'permission-v2', 'permission-v1'],
  };
}
