/** The CapabilityStatement, generated from the registry. https://hl7.org/fhir/R4/capabilitystatement.html */
import { allResourceDefinitions, commonParamsOf, type ResourceDefinition, type SearchParamDef } from './registry.js';
import type { Resource } from './types.js';
import { r4Type } from './r4/definitions.js';
import { limitsDocumentation, type ServerLimits } from './search/limits.js';
import { tokenEndpointUrl } from './smart-configuration.js';
import { policySummary } from '../auth/policy.js';
import { POLICY_WORDING } from './access.js';

/**
 * The canonical of a parameter: HMS's own definition, or R4's standard one (undefined when R4 has
 * none of that name): the common ones are Resource-*, the others as R4's SearchParameters name
 * them (many are shared: clinical-*, individual-*).
 */
export function parameterDefinition(type: string, p: SearchParamDef): string | undefined {
  if (p.definition) return p.definition;
  if (p.name === '_id' || p.name === '_lastUpdated') return `http://hl7.org/fhir/SearchParameter/Resource-${p.name.slice(1)}`;
  return r4Type(type)?.searchParams.find((s) => s.code === p.name)?.url;
}

/** Where a type is stored, in words: a seed table of its own, or the generic store. */
const storageText = (def: ResourceDefinition): string =>
  (def.storageKind === 'generic' ? '[generic store]' : `[table-backed: ${def.table}]`);

const has = (def: ResourceDefinition, i: string): boolean => def.interactions.includes(i as never);

/** `Type:param` of every reference parameter of a type (what _include accepts). */
const references = (def: ResourceDefinition): string[] =>
  def.searchParams.filter((p) => p.type === 'reference').map((p) => `${def.type}:${p.name}`);

/** `Source:param` of every reference parameter of any type that may point at `type` (what _revinclude accepts). */
const revIncludes = (type: string): string[] =>
  allResourceDefinitions().flatMap((d) => d.searchParams.filter((p) => p.type === 'reference' && (p.targets ?? []).includes(type)).map((p) => `${d.type}:${p.name}`));

/** Bulk Data $export at Patient and Group level (src/api/routes/bulk-data.ts, docs/bulk-data.md). */
const BULK = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition';
const BULK_EXPORT: Record<string, { name: string; definition: string }> = {
  Patient: { name: 'export', definition: `${BULK}/patient-export` },
  Group: { name: 'export', definition: `${BULK}/group-export` },
};

/** $validate, served for every type (src/fhir/validate-operation.ts). */
const VALIDATE = { name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' };

/** What the HTTP layer adds to the statement: whether CORS is on, and the bounds on requests (rest.documentation). */
export interface HttpSurface { cors?: boolean; limits?: ServerLimits }

/**
 * The statement of each type the registry holds. It depends on the registry alone, which does not
 * change once the process has started, and costs tens of milliseconds for 145 types (each type's
 * revincludes look at every other type): built once, on the first request for /metadata.
 */
let typeStatementsMemo: Resource[] | undefined;
function typeStatements(): Resource[] {
  typeStatementsMemo ??= allResourceDefinitions().map((def) => ({
    type: def.type,
    profile: def.profile,
    documentation: `${storageText(def)} ${def.description}. ${policySummary(def.type, POLICY_WORDING)}`,
    interaction: def.interactions.map((code) => ({ code })),
    versioning: def.versioned === false || def.kept === false ? 'no-version' : has(def, 'update') ? 'versioned-update' : 'versioned',
    readHistory: has(def, 'vread'),
    updateCreate: has(def, 'update'),
    conditionalCreate: has(def, 'create'),
    conditionalRead: 'not-supported',
    // PUT / DELETE Type?criteria: 0, 1 or many matches as R4 says; a delete takes one resource
    conditionalUpdate: has(def, 'update'),
    conditionalDelete: has(def, 'delete') ? 'single' : 'not-supported',
    // references to stored types are checked; references to other types are kept as sent
    referencePolicy: ['literal', 'local'],
    ...(references(def).length ? { searchInclude: ['*', ...references(def)] } : {}),
    ...(revIncludes(def.type).length ? { searchRevInclude: revIncludes(def.type) } : {}),
    operation: [...(def.operations ?? []), ...(BULK_EXPORT[def.type] ? [BULK_EXPORT[def.type]!] : []), VALIDATE],
    searchParam: [...commonParamsOf(def), ...def.searchParams].map((p) => ({
      name: p.name,
      definition: parameterDefinition(def.type, p),
      type: p.type,
      documentation: p.description,
    })),
  }) as unknown as Resource);
  return typeStatementsMemo;
}

/** Builds the server's CapabilityStatement for a base URL. */
export function capabilityStatement(baseUrl: string, version: string, date: string, surface: HttpSurface = {}): Resource {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    publisher: 'HMS',
    kind: 'instance',
    software: { name: 'HMS', version },
    implementation: { description: 'HMS FHIR R4 interoperability service', url: baseUrl },
    instantiates: ['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data'],
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [{
      mode: 'server',
      ...(surface.limits ? { documentation: limitsDocumentation(surface.limits) } : {}),
      security: {
        cors: surface.cors ?? false,
        // SMART's oauth-uris extension names the token endpoint of SMART Backend Services
        // https://hl7.org/fhir/smart-app-launch/conformance.html#declaring-support-for-oauth2-endpoints
        extension: [{
          url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
          extension: [{ url: 'token', valueUri: tokenEndpointUrl(baseUrl) }],
        }],
        service: [
          { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }], text: 'SMART Backend Services: client_credentials with a private_key_jwt assertion at POST /auth/token' },
          // no code of restful-security-service fits session tokens
          { text: 'Bearer session tokens from POST /auth/login' },
        ],
        description: 'Every interaction except metadata needs Authorization: Bearer <token>: a person\'s session token, or a registered system\'s access token (see .well-known/smart-configuration). '
          + 'What a person may do follows their role (admin, doctor, nurse, patient, finance) and, for doctors and nurses, the patients assigned to them '
          + '(primary doctor, care team, appointments and encounters; break-glass with Patient/$break-glass); a system reaches every patient its SMART scopes allow. '
          + 'Each resource\'s documentation states its rules. An interaction a role never has answers 403; a resource out of reach answers 404, as one that does not exist.',
      },
      interaction: [
        { code: 'transaction', documentation: 'POST /fhir: all entries in one database transaction, all or nothing; urn:uuid and conditional references resolved; writes run after the entries they refer to' },
        { code: 'batch', documentation: 'POST /fhir: entries independent, each in a transaction of its own' },
        { code: 'history-system', documentation: 'GET /fhir/_history: the versions of every type whose history the caller may read, newest first; _since, _at, _count, keyset paged by the next link' },
      ],
      operation: [{ name: 'export', definition: `${BULK}/export` }],
      resource: [...typeStatements(), {
        type: 'SearchParameter',
        documentation: 'The search parameters HMS defines itself (read-only, public)',
        interaction: [{ code: 'read' }, { code: 'search-type' }],
      }],
    }],
  };
}
