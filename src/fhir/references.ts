/**
 * Literal references (Reference.reference) and their shapes: https://hl7.org/fhir/R4/references.html.
 * A reference is one of
 * - relative `Type/id` or `Type/id/_history/vid`, Type an R4 resource type, id and vid FHIR ids;
 * - a fragment `#id` naming a contained resource (`#` alone: the container, from inside a contained one);
 * - `urn:uuid:` or `urn:oid:` (a Bundle's entries);
 * - an absolute URL; when it starts with this server's base it is a relative one in disguise.
 * Anything else that looks relative (`Encounter/`, `Practitioner/' OR 1=1 --`) is malformed.
 */
import { isR4ResourceType } from './r4/json-schema.js';

export type ReferenceShape =
  | { kind: 'relative'; type: string; id: string; version?: string }
  | { kind: 'fragment'; id: string }
  | { kind: 'urn' }
  | { kind: 'absolute'; url: string };

const ID = '[A-Za-z0-9\\-.]{1,64}';
const RELATIVE = new RegExp(`^([A-Za-z]+)/(${ID})(?:/_history/(${ID}))?$`);
const FRAGMENT = new RegExp(`^#(${ID})?$`);
const URN = /^urn:(?:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|oid:[0-2](?:\.(?:0|[1-9][0-9]*))+)$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** The shape of a reference, or why it is malformed (a string). */
export function referenceShape(reference: string): ReferenceShape | string {
  const rel = RELATIVE.exec(reference);
  if (rel) {
    if (!isR4ResourceType(rel[1]!)) return `'${rel[1]!.slice(0, 40)}' is not an R4 resource type`;
    return { kind: 'relative', type: rel[1]!, id: rel[2]!, ...(rel[3] ? { version: rel[3] } : {}) };
  }
  if (reference.startsWith('#')) {
    const m = FRAGMENT.exec(reference);
    return m ? { kind: 'fragment', id: m[1] ?? '' } : 'a fragment reference must be # followed by the id of a contained resource';
  }
  if (/^urn:/i.test(reference)) return URN.test(reference) ? { kind: 'urn' } : 'a urn reference must be urn:uuid:<uuid> or urn:oid:<oid>';
  if (SCHEME.test(reference)) {
    if (/[\s<>"{}|\\^`]/.test(reference)) return 'an absolute reference must be a URI (no spaces or quotes)';
    if (/^https?:/i.test(reference) && !URL.canParse(reference)) return 'an absolute reference must be a valid URL';
    return { kind: 'absolute', url: reference };
  }
  return 'a reference must be Type/id (an R4 resource type and an id of 1-64 characters A-Z a-z 0-9 - .), Type/id/_history/version, #contained-id, urn:uuid:, urn:oid: or an absolute URL';
}

/** The relative form of an absolute reference to this server (`{base}/Type/id...`), else the reference itself. */
export function localForm(reference: string, baseUrl: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  if (!SCHEME.test(reference) || reference.length <= base.length + 1) return reference;
  if (reference.slice(0, base.length).toLowerCase() !== base.toLowerCase() || reference[base.length] !== '/') return reference;
  const rest = reference.slice(base.length + 1);
  return RELATIVE.test(rest) ? rest : reference;
}

/** A reference found in a resource: where it stands and what it says. */
export interface FoundReference {
  /** FHIRPath-like location of the Reference, e.g. Patient.generalPractitioner[1]. */
  path: string;
  /** The object holding `reference` (rewritten in place by normalizeReferences). */
  holder: { reference: string };
}

/** A resource within a resource that is a scope of its own (a Bundle entry's, a Parameters part's). */
export interface NestedResource {
  path: string;
  resource: Record<string, unknown>;
}

/**
 * Every Reference.reference of a resource and its contained resources, in document order, and
 * the resources nested in it that are scopes of their own (their references are theirs, not
 * listed here). A `reference` string counts where it sits in an object (no other R4 element is
 * named `reference`).
 */
export function findReferences(resource: Record<string, unknown>, at = String(resource.resourceType)): FoundReference[] & { nested: NestedResource[] } {
  const out = Object.assign([] as FoundReference[], { nested: [] as NestedResource[] });
  // the path of the node being walked, as element names and array indexes: spelled out only where
  // something is found (a Claim of 300 nodes names a handful of references)
  const steps: (string | number)[] = [];
  const path = (): string => at + steps.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');
  const walk = (v: unknown, contained: boolean): void => {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        steps.push(i);
        walk(v[i], contained);
        steps.pop();
      }
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o !== resource && !contained && typeof o.resourceType === 'string') { out.nested.push({ path: path(), resource: o }); return; }
    if (typeof o.reference === 'string') out.push({ path: path(), holder: o as { reference: string } });
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (k === 'reference' || !x || typeof x !== 'object') continue;
      steps.push(k);
      walk(x, o === resource && k === 'contained');
      steps.pop();
    }
  };
  walk(resource, false);
  return out;
}

/**
 * Rewrites absolute references to this server into their relative form (as stored and searched),
 * nested resources' included; returns the references of the resource and its contained ones, as
 * rewritten (findReferences).
 */
export function normalizeReferences(resource: Record<string, unknown>, baseUrl: string): FoundReference[] {
  const refs = findReferences(resource);
  for (const { holder } of refs) holder.reference = localForm(holder.reference, baseUrl);
  for (const n of refs.nested) normalizeReferences(n.resource, baseUrl);
  return refs;
}
