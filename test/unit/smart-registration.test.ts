/** Pure rules of SMART Backend Services: the token endpoint URL, the JWKS URL allow-list, allowed-scope canonical form. */
import t from 'tap';
import { tokenEndpointUrl } from '../../src/fhir/smart-configuration.js';
import { checkAllowedScopes, jwksUrlAllowed, jwksUrlAllowlist } from '../../src/auth/client-registration.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { parseScope } from '../../src/auth/scopes.js';

t.test('the token endpoint is the FHIR base without /fhir, else the base origin, + /auth/token', async (t) => {
  t.equal(tokenEndpointUrl('https://hms.example.org/fhir'), 'https://hms.example.org/auth/token');
  t.equal(tokenEndpointUrl('https://hms.example.org/fhir/'), 'https://hms.example.org/auth/token');
  t.equal(tokenEndpointUrl('http://127.0.0.1:8080/fhir'), 'http://127.0.0.1:8080/auth/token');
  t.equal(tokenEndpointUrl('https://example.org/hms/fhir'), 'https://example.org/hms/auth/token', 'a path prefix of a proxy is kept');
  t.equal(tokenEndpointUrl('https://example.org/api/r4'), 'https://example.org/auth/token', 'a base not ending in /fhir: its origin');
});

t.test('a JWKS URL must start with an allow-listed prefix after normalisation', async (t) => {
  const list = jwksUrlAllowlist(' https://keys.example.org , http://10.0.0.5:8443/jwks/');
  t.strictSame(list, ['https://keys.example.org/', 'http://10.0.0.5:8443/jwks/']);
  t.ok(jwksUrlAllowed('https://keys.example.org/lab/jwks.json', list));
  t.ok(jwksUrlAllowed('http://10.0.0.5:8443/jwks/a.json', list));
  t.notOk(jwksUrlAllowed('https://keys.example.org.evil.example/jwks.json', list), 'a bare origin is not a string prefix of another host');
  t.notOk(jwksUrlAllowed('https://keys.example.org@evil.example/jwks.json', list), 'user info is refused');
  t.notOk(jwksUrlAllowed('https://user:pw@keys.example.org/jwks.json', list));
  t.notOk(jwksUrlAllowed('http://10.0.0.5:8443/other/a.json', list));
  t.notOk(jwksUrlAllowed('http://keys.example.org/jwks.json', list), 'the scheme is part of the prefix');
  t.notOk(jwksUrlAllowed('not a url', list));
  t.notOk(jwksUrlAllowed('https://keys.example.org/jwks.json', []), 'an empty list allows nothing');
  t.strictSame(jwksUrlAllowlist(undefined), []);
});

t.test('allowed scopes are stored in canonical v2 form and unknown ones refused', async (t) => {
  const types = new Set(['Patient', 'Observation', 'Coverage']);
  t.equal(checkAllowedScopes('system/Patient.read  system/Observation.cru system/Patient.s', types), 'system/Observation.cru system/Patient.rs');
  t.equal(checkAllowedScopes('system/*.* system/Patient.rs', types), 'system/*.cruds', 'a type the wildcard covers is merged into it');
  for (const bad of ['system/Patient.rs?x=1', 'patient/*.rs', 'system/Unknown.rs', 'system/Patient.constructor', '']) {
    let status: number | undefined;
    try { checkAllowedScopes(bad, types); } catch (err) { status = err instanceof FhirError ? err.status : -1; }
    t.equal(status, 400, `'${bad}' refused with 400`);
  }
});

t.test('parseScope does not take Object.prototype names for v1 permissions', async (t) => {
  t.equal(parseScope('system/Patient.constructor'), undefined);
  t.strictSame([...parseScope('system/Patient.write')!.permissions], ['c', 'u', 'd']);
});

t.test('restricted generic types are reached only through scopes that name them', async (t) => {
  await import('../../src/fhir/resources/index.js');
  const { grantScopes, parseScopes, formatScope } = await import('../../src/auth/scopes.js');
  const { namedScopeOnly } = await import('../../src/fhir/access.js');
  const types = new Set(['Patient', 'Binary', 'Immunization']);
  t.ok(namedScopeOnly('Binary') && !namedScopeOnly('Immunization') && !namedScopeOnly('Patient'));
  t.equal(checkAllowedScopes('system/*.rs system/Binary.rs', types), 'system/*.rs system/Binary.rs', 'registration keeps the named scope beside *');
  t.equal(checkAllowedScopes('system/*.rs system/Patient.rs', types), 'system/*.rs', 'an ordinary named scope folds into *');
  const grant = (requested: string, allowed: string) =>
    grantScopes(parseScopes(requested).scopes, parseScopes(allowed).scopes, namedScopeOnly).map(formatScope).join(' ');
  t.equal(grant('system/Binary.rs', 'system/*.rs'), '', 'an allowed * does not grant a named scope on a restricted type');
  t.equal(grant('system/Immunization.rs', 'system/*.rs'), 'system/Immunization.rs');
  t.equal(grant('system/Binary.r', 'system/*.rs system/Binary.rs'), 'system/Binary.r', 'the named allowance grants it');
  t.equal(grant('system/*.rs', 'system/*.rs system/Binary.rs'), 'system/*.rs system/Binary.rs', 'a requested * keeps the named allowance');
});
