/** The CapabilityStatement, generated from the registry. https://hl7.org/fhir/R4/capabilitystatement.html */
import { readFileSync } from 'node:fs';
import { allResourceDefinitions, commonParamsOf, type ResourceDefinition, type SearchParamDef } from './registry.js';
import type { Resource } from './types.js';
import { schemaPath } from '../paths.js';

/** The canonical URLs of R4's standard search parameters, by base type and code (many are shared: clinical-*, individual-*). */
const STANDARD = JSON.parse(readFileSync(schemaPath('r4-search-parameters.json'), 'utf8')) as Record<string, Record<string, string>>;

/** The canonical of a parameter: HMS's own definition, or R4's standard one (undefined when R4 has none of that name). */
export function parameterDefinition(type: string, p: SearchParamDef): string | undefined {
  return p.definition ?? STANDARD[p.name.startsWith('_') ? 'Resource' : type]?.[p.name];
}

const has = (def: ResourceDefinition, i: string): boolean => def.interactions.includes(i as never);

/** `Type:param` of every reference parameter of a type (what _include accepts). */
const references = (def: ResourceDefinition): string[] =>
  def.searchParams.filter((p) => p.type === 'reference').map((p) => `${def.type}:${p.name}`);

/** `Source:param` of every reference parameter of any type that may point at `type` (what _revinclude accepts). */
const revIncludes = (type: string): string[] =>
  allResourceDefinitions().flatMap((d) => d.searchParams.filter((p) => p.type === 'reference' && (p.targets ?? []).includes(type)).map((p) => `${d.type}:${p.name}`));

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
        // no code of restful-security-service fits session tokens; SMART backend services come later
        service: [{ text: 'Bearer session tokens from POST /auth/login' }],
        description: 'Every interaction except metadata needs Authorization: Bearer <token>.',
      },
      resource: [...allResourceDefinitions().map((def) => ({
        type: def.type,
        profile: def.profile,
        documentation: def.description,
        interaction: def.interactions.map((code) => ({ code })),
        versioning: def.versioned === false || def.kept === false ? 'no-version' : has(def, 'update') ? 'versioned-update' : 'versioned',
        readHistory: has(def, 'vread'),
        updateCreate: has(def, 'update'),
        conditionalCreate: has(def, 'create'),
        conditionalRead: 'not-supported',
        conditionalUpdate: false,
        conditionalDelete: 'not-supported',
        // references to stored types are checked; references to other types are kept as sent
        referencePolicy: ['literal', 'local'],
        ...(references(def).length ? { searchInclude: ['*', ...references(def)] } : {}),
        ...(revIncludes(def.type).length ? { searchRevInclude: revIncludes(def.type) } : {}),
        ...(def.operations?.length ? { operation: def.operations } : {}),
        searchParam: [...commonParamsOf(def), ...def.searchParams].map((p) => ({
          name: p.name,
          definition: parameterDefinition(def.type, p),
          type: p.type,
          documentation: p.description,
        })),
      })), {
        type: 'SearchParameter',
        documentation: 'The search parameters HMS defines itself (read-only, public)',
        interaction: [{ code: 'read' }, { code: 'search-type' }],
      }],
    }],
  };
}
