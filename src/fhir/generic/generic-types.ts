/**
 * The generic store's resource definitions: one per R4 resource type that no seed table holds,
 * built from the R4 definitions at start (src/fhir/r4/definitions.ts), with no code per type.
 * Each resource is one row of fhir_resources (its JSON as written, meta included), versioned in
 * resource_history like every other type, searched by its standard R4 parameters through the
 * search index (values extracted at write time by FHIRPath, src/fhir/generic/extract.ts), in the
 * Patient compartment R4 puts it in, under the access rules of its policy category.
 * docs/generic-store.md
 */
import type { IndexSearchParam, Interaction, ResourceDefinition } from '../registry.js';
import type { Resource } from '../types.js';
import { r4Definitions, type R4SearchParam, type R4TypeInfo } from '../r4/definitions.js';
import { compileExtractor, type Extractor } from './extract.js';
import { categoryOf } from '../../auth/policy.js';
import { referenceShape } from '../references.js';

/** The table of the generic store. */
export const GENERIC_TABLE = 'fhir_resources';

const INTERACTIONS: Interaction[] = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];

/** Parameter types the search index holds (composite and special ones are not offered). */
const INDEXED = new Set(['string', 'token', 'reference', 'uri', 'date', 'number', 'quantity']);

/** Names the common parameters take (_id, _lastUpdated ...): a type's own parameter never shadows them. */
const isCommon = (code: string): boolean => code.startsWith('_');

/**
 * An extractor compiled on first use: compiling all ~1,600 expressions takes ~0.2 s, which every
 * start (and every test process) would pay for types it may never write. That every one of them
 * compiles is a test (test/integration/generic-store.test.ts).
 */
function lazyExtractor(type: string, p: R4SearchParam): Extractor {
  let compiled: Extractor | undefined;
  return (resource) => {
    compiled ??= compileExtractor(type, p) ?? (() => []);
    return compiled(resource);
  };
}

/** The type's standard parameters the index can serve. */
function indexParams(type: string, info: R4TypeInfo): IndexSearchParam[] {
  const out: IndexSearchParam[] = [];
  for (const p of info.searchParams) {
    if (!INDEXED.has(p.type) || isCommon(p.code)) continue;
    const extract = lazyExtractor(type, p);
    out.push({
      name: p.code, source: 'index', type: p.type as IndexSearchParam['type'], expression: p.expression,
      description: p.description, extract, ...(p.targets ? { targets: p.targets } : {}),
    });
  }
  return out;
}

/**
 * The patient whose compartment a resource is in: the first Patient its compartment parameters
 * name, in the order R4 lists them (Immunization.patient, Procedure.subject ...). A resource that
 * names several patients is reached, for access, through that first one; it is found in the
 * compartment of each ($everything reads the index).
 */
function compartmentPatient(params: IndexSearchParam[], resource: Resource): string | null {
  for (const p of params) {
    for (const v of p.extract(resource)) {
      if (typeof v !== 'string') continue;
      const shape = referenceShape(v);
      if (typeof shape !== 'string' && shape.kind === 'relative' && shape.type === 'Patient') return shape.id;
    }
  }
  return null;
}

/** The definition of one generic type. */
export function genericDefinition(type: string, info: R4TypeInfo): ResourceDefinition {
  const searchParams = indexParams(type, info);
  const compartment = (info.compartment ?? []).filter((code) => searchParams.some((p) => p.name === code && p.type === 'reference'));
  const compartmentParams = compartment.map((code) => searchParams.find((p) => p.name === code)!);
  const inCompartment = compartment.length > 0;
  return {
    type,
    storageKind: 'generic',
    category: categoryOf(type, inCompartment),
    table: GENERIC_TABLE,
    rowFilter: { resource_type: [type] },
    document: 'resource',
    indexAll: true,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    description: `${type}, stored generically (the R4 resource as written; searched by its standard R4 parameters)`,
    interactions: INTERACTIONS,
    softDelete: true,
    toRow(resource: Resource) {
      return {
        resource_type: type,
        patient_id: inCompartment ? compartmentPatient(compartmentParams, resource) : null,
        resource: JSON.stringify(resource),
      };
    },
    fromRow(row, kept) {
      if (kept) return kept;
      return (typeof row.resource === 'string' ? JSON.parse(row.resource) : row.resource) as Resource;
    },
    references: [],
    searchParams,
    summaryElements: info.summary,
    ...(inCompartment ? { compartment, patientColumn: 'patient_id' } : {}),
  } as ResourceDefinition;
}

/**
 * The generic definitions of every R4 type for which `isTableBacked` says no seed table is the
 * home (a type's home never changes silently: the seed-backed types keep their tables).
 */
export function genericDefinitions(isTableBacked: (type: string) => boolean): ResourceDefinition[] {
  const { types } = r4Definitions();
  return Object.keys(types).filter((t) => !isTableBacked(t)).map((t) => genericDefinition(t, types[t]!));
}
