/**
 * GET /fhir/.well-known/smart-configuration: how systems get a token (public, like metadata).
 * Registered beside, not inside, the /fhir routes plugin, whose onRequest hook requires a token.
 * https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { smartConfiguration, tokenEndpointUrl } from '../../fhir/smart-configuration.js';
import { baseUrl } from './fhir-context.js';

const stringList = { type: 'array', items: { type: 'string' } } as const;

const configurationResponse = {
  200: {
    type: 'object',
    description: 'SMART configuration (SMART App Launch 2.x, section 2.0.0 conformance)',
    properties: {
      token_endpoint: { type: 'string', format: 'uri' },
      grant_types_supported: stringList,
      token_endpoint_auth_methods_supported: stringList,
      token_endpoint_auth_signing_alg_values_supported: stringList,
      scopes_supported: stringList,
      capabilities: stringList,
    },
  },
} as const;

/** The token endpoint URL as this request sees the server (what assertions must name as aud). */
export function requestTokenUrl(request: FastifyRequest): string {
  return tokenEndpointUrl(baseUrl(request));
}

export default async function smartConfigurationRoutes(app: FastifyInstance): Promise<void> {
  app.get('/fhir/.well-known/smart-configuration', {
    schema: { tags: ['auth'], summary: 'SMART configuration: token endpoint, grant types, signing algorithms, scopes (no authentication)', security: [], response: configurationResponse },
  }, async (request, reply) => {
    return reply.type('application/json; charset=utf-8').send(smartConfiguration(requestTokenUrl(request)));
  });
}
