/**
 * SearchParameter resources for the parameters HMS defines itself (those whose definition is an
 * HMS canonical), generated from the registry and served at /fhir/SearchParameter/{id}.
 * https://hl7.org/fhir/R4/searchparameter.html
 */
import { allResourceDefinitions, type SearchParamDef } from './registry.js';
import type { Resource } from './types.js';
import { HMS_CANONICAL } from '../mappers/datatypes.js';
import type { Bundle } from './bundle.js';

const PREFIX = `${HMS_CANONICAL}/SearchParameter/`;

function toResource(base: string, p: SearchParamDef): Resource {
  const id = p.definition!.slice(PREFIX.length);
  return {
    resourceType: 'SearchParameter',
    id,
    url: p.definition,
    name: id.replace(/[^A-Za-z0-9]/g, ''),
    status: 'active',
    publisher: 'HMS',
    description: p.description,
    code: p.name,
    base: [base],
    type: p.type,
    expression: p.expression,
    ...(p.targets ? { target: p.targets } : {}),
    ...(p.type === 'string' ? { modifier: ['exact', 'contains', 'missing'] } : p.type === 'token' ? { modifier: ['missing', 'not'] } : { modifier: ['missing'] }),
    ...(['date', 'number', 'quantity'].includes(p.type) ? { comparator: ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] } : {}),
  } as Resource;
}

/** Every SearchParameter HMS defines. */
export function ownSearchParameters(): Resource[] {
  return allResourceDefinitions().flatMap((def) => def.searchParams
    .filter((p) => p.definition?.startsWith(PREFIX))
    .map((p) => toResource(def.type, p)));
}

/** One of them by id, or undefined. */
export function ownSearchParameter(id: string): Resource | undefined {
  return ownSearchParameters().find((r) => r.id === id);
}

/** All of them as a searchset Bundle. */
export function ownSearchParameterBundle(baseUrl: string): Bundle {
  const all = ownSearchParameters();
  return {
    resourceType: 'Bundle', type: 'searchset', total: all.length,
    link: [{ relation: 'self', url: `${baseUrl}/SearchParameter` }],
    ...(all.length ? { entry: all.map((r) => ({ fullUrl: `${baseUrl}/SearchParameter/${r.id}`, resource: r, search: { mode: 'match' as const } })) } : {}),
  };
}
