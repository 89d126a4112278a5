/** How stored rows read as resources, and the lookup of a type's definition. */
import { notFound } from './outcome.js';
import { resourceDefinition, type ResourceDefinition } from './registry.js';
import type { Resource } from './types.js';
import type { StoredResource } from '../db/resource-repository.js';
import { sqlToInstant } from '../mappers/datatypes.js';

/** The definition of a type, or 404 when HMS does not serve it. */
export function definitionOf(type: string): ResourceDefinition {
  const def = resourceDefinition(type);
  if (!def) throw notFound(`Resource type '${type}' is not supported by this server`);
  return def;
}

/** The resource a stored row reads as, with meta.versionId and meta.lastUpdated. */
export function present(def: ResourceDefinition, stored: StoredResource): Resource {
  const resource = def.fromRow(stored.row, stored.kept as Resource | undefined);
  return withMeta(resource, stored.versionId, sqlToInstant(stored.lastUpdated)!);
}

export function withMeta(resource: Resource, version: number, lastUpdated: string): Resource {
  const { resourceType, id, meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, ...otherMeta } = meta ?? {};
  return { resourceType, id, meta: { ...otherMeta, versionId: String(version), lastUpdated }, ...rest };
}

