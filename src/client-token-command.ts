/**
 * `hms client-token --key FILE`: an access token for a registered system (SMART Backend Services),
 * for trying the API by hand: signs a client assertion with the private JWK the file holds (as
 * `npm start`'s demo writes it: client_id, token_url, scope, alg, kid, private_jwk), posts it to
 * the token endpoint and prints the access token. A real client does the same with its own key
 * (docs/smart-backend-services.md).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { importJWK, SignJWT, type JWK } from 'jose';

export const CLIENT_TOKEN_USAGE = `  client-token --key FILE [--scope S] [--url TOKEN_URL]
                              sign a client assertion with the key in FILE (client_id, token_url,
                              alg, kid, private_jwk: as the demo writes it) and print an access
                              token from the token endpoint`;

interface KeyFile { client_id: string; token_url: string; scope?: string; alg: 'ES384' | 'RS384'; kid: string; private_jwk: JWK }

export async function clientTokenCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { key: { type: 'string' }, scope: { type: 'string' }, url: { type: 'string' } } });
  if (!values.key) {
    process.stderr.write(`hms: client-token needs --key FILE\n${CLIENT_TOKEN_USAGE}\n`);
    return 1;
  }
  const file = JSON.parse(readFileSync(values.key, 'utf8')) as KeyFile;
  const url = values.url ?? file.token_url;
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: file.alg, kid: file.kid, typ: 'JWT' })
    .setIssuer(file.client_id).setSubject(file.client_id).setAudience(url)
    .setExpirationTime(now + 240).setJti(randomUUID())
    .sign(await importJWK(file.private_jwk, file.alg));
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials', scope: values.scope ?? file.scope ?? '',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
    }).toString(),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) {
    process.stderr.write(`hms: the token endpoint answered ${res.status}: ${body.error ?? ''} ${body.error_description ?? ''}\n`);
    return 1;
  }
  process.stdout.write(`${body.access_token}\n`);
  return 0;
}
