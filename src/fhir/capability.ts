/** The CapabilityStatement, generated from the registry. https://hl7.org/fhir/R4/capabilitystatement.html */
import { allResourceDefinitions, commonParamsOf } from './registry.js';
import type { Resource } from './types.js';

const SEARCH_PARAM_BASE = 'http://hl7.org/fhir/SearchParameter';

/** Builds the server's CapabilityStatement for a base URL. */
export function capabilityStatement(baseUrl: string, version: string, date: string): Resource {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    publisher: 'HMS',
    kind: 'instance',
    software: { name: 'HMS', version },
    implementation: { description: 'HMS FHIR R4 interoperability service', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [{
      mode: 'server',
      security: {
        cors: false,
        service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'OAuth', display: 'OAuth' }], text: 'Bearer session tokens from POST /auth/login' }],
        description: 'Every interaction except metadata needs Authorization: Bearer <token>.',
      },
      resource: [...allResourceDefinitions().map((def) => ({
        type: def.type,
        profile: def.profile,
        documentation: def.description,
        interaction: def.interactions.map((code) => ({ code })),
        versioning: 'versioned-update',
        readHistory: true,
        updateCreate: def.interactions.includes('update'),
        conditionalCreate: def.interactions.includes('create'),
        conditionalRead: 'not-supported',
        conditionalUpdate: false,
        conditionalDelete: 'not-supported',
        referencePolicy: ['literal', 'local', 'enforced'],
        ...(def.operations?.length ? { operation: def.operations } : {}),
        searchParam: [...commonParamsOf(def), ...def.searchParams].map((p) => ({
          name: p.name,
          definition: p.definition ?? `${SEARCH_PARAM_BASE}/${p.name.startsWith('_') ? 'Resource' : def.type}-${p.name.replace(/^_/, '')}`,
          type: p.type,
          documentation: p.description,
        })),
      })), {
        type: 'SearchParameter',
        documentation: 'The search parameters HMS defines itself (read-only, public)',
        interaction: [{ code: 'read' }, { code: 'search-type' }],
      }],
      interaction: [],
    }],
  };
}
