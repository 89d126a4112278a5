/** Views of resources for restricted readers (the access policy's `view`): pure functions over resources. */
import type { Resource } from './types.js';

/** The security label of a resource shown without some of its elements. http://terminology.hl7.org/CodeSystem/v3-ObservationValue */
export const REDACTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'REDACTED', display: 'redacted' };

/** Marks a resource as shown with elements withheld (meta.security REDACTED). */
export function markRedacted<R extends Resource>(r: R): R {
  const meta = { ...(r.meta ?? {}) } as Record<string, unknown>;
  meta.security = [...((meta.security as unknown[]) ?? []), REDACTED];
  return { ...r, meta: meta as R['meta'] };
}

/** A view that keeps only the given top-level elements (plus resourceType, id and meta), labelled REDACTED. */
export function keepElements<R extends Resource>(elements: string[]): (r: R) => R {
  const keep = new Set(['resourceType', 'id', 'meta', ...elements]);
  return (r) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (keep.has(k) || keep.has(k.replace(/^_/, ''))) out[k] = v;
    return markRedacted(out as R);
  };
}

/**
 * A security log entry as the patient it is about sees it (accounting of disclosures): who acted,
 * in what role, when, on what and with what outcome; not the network address, user agent or the
 * request's details.
 */
export function disclosureView<R extends Resource>(r: R): R {
  const e = structuredClone(r) as Record<string, unknown>;
  e.agent = ((e.agent as Record<string, unknown>[] | undefined) ?? []).map(({ network: _n, extension: _x, ...agent }) => agent);
  if (Array.isArray(e.entity)) e.entity = (e.entity as Record<string, unknown>[]).map(({ detail: _d, ...entity }) => entity);
  return markRedacted(e as R);
}
