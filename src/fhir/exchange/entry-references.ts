/**
 * References between the entries of a Bundle: a reference to another entry's fullUrl (urn:uuid:,
 * or an absolute URL ending in Type/id), or a conditional reference (`Type?criteria`), which
 * names the entry that conditionally creates or updates with the same criteria, else the one
 * stored resource the criteria find. Entries run after the entries they reference (a
 * transaction's writes in dependency order), and each entry's references are rewritten to the
 * ids the server gave just before it runs. https://hl7.org/fhir/R4/bundle.html#references
 */
import type { Knex } from 'knex';
import { FhirError, unprocessable } from '../outcome.js';
import { findReferences } from '../references.js';
import { resourceDefinition } from '../registry.js';
import type { Resource } from '../types.js';
import type { FhirContext } from '../context.js';
import { canonicalCriteria, conditionalMatches, criteriaOf } from '../conditional-match.js';
import { entryPath, type BundleEntryRequest } from './bundle-entries.js';

const CONDITIONAL = /^([A-Z][A-Za-z]+)\?(.+)$/;
/** The types whose conditional references a transaction resolves once (until it writes the type). */
const CACHED_CONDITIONALS = new Set(['Practitioner', 'Organization', 'Location']);
const TYPED_TAIL = /(?:^|\/)([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/;


/** The keys references use for each entry: its fullUrl, and for a fullUrl ending in Type/id that Type/id. */
export class EntryIndex {
  private readonly byKey = new Map<string, number>();
  private readonly byCriteria = new Map<string, number>();

  constructor(entries: BundleEntryRequest[]) {
    for (const e of entries) {
      if (e.method === 'GET' || e.method === 'DELETE') continue;
      if (e.fullUrl) {
        this.byKey.set(e.fullUrl, e.index);
        const tail = TYPED_TAIL.exec(e.fullUrl)?.[1];
        // a create's Type/id (relative to its fullUrl's base) is replaced by the id the server gives
        if (tail && e.method === 'POST' && !this.byKey.has(tail)) this.byKey.set(tail, e.index);
      }
      const criteria = e.method === 'POST' ? (e.ifNoneExist === undefined ? undefined : criteriaOf(e.ifNoneExist)) : e.target.kind === 'search' ? e.target.criteria : undefined;
      if (criteria) this.byCriteria.set(`${e.type}?${canonicalCriteria(criteria)}`, e.index);
    }
  }

  /** The entry a reference names, if it names one. */
  entryOf(reference: string): number | undefined {
    const direct = this.byKey.get(reference);
    if (direct !== undefined) return direct;
    const c = CONDITIONAL.exec(reference);
    return c ? this.byCriteria.get(`${c[1]}?${canonicalCriteria(c[2]!)}`) : undefined;
  }
}

/** The entries an entry's resource refers to (never itself). */
export function dependencies(entry: BundleEntryRequest, index: EntryIndex): Set<number> {
  const out = new Set<number>();
  if (!entry.resource || entry.method === 'PATCH') return out;
  for (const { holder } of findReferences(entry.resource as unknown as Record<string, unknown>)) {
    const j = index.entryOf(holder.reference);
    if (j !== undefined && j !== entry.index) out.add(j);
  }
  return out;
}

/**
 * A copy of the entry's resource with its references to other entries rewritten to `Type/id` of
 * what they wrote, and its conditional references resolved by search (inside `trx`, among what the
 * caller may read). A urn: reference to no entry, or criteria matching none or several, fail
 * naming the entry and the element.
 */
export async function resolveReferences(
  ctx: FhirContext, trx: Knex.Transaction, entry: BundleEntryRequest, index: EntryIndex, written: Map<number, string>, batch: boolean,
): Promise<Resource | undefined> {
  if (!entry.resource || entry.method === 'PATCH') return entry.resource;
  const resource = structuredClone(entry.resource);
  const at = (path: string): string => entryPath(entry.index, `.resource${path.replace(/^[A-Za-z]+/, '')}`);
  for (const { path, holder } of findReferences(resource as unknown as Record<string, unknown>)) {
    const ref = holder.reference;
    const j = index.entryOf(ref);
    if (j !== undefined && j !== entry.index) {
      const target = written.get(j);
      if (batch) throw unprocessable(`Bundle.entry[${entry.index}]: ${path} refers to entry ${j}: the entries of a batch cannot refer to one another (send a transaction)`, at(path));
      if (!target) throw unprocessable(`Bundle.entry[${entry.index}]: ${path} refers to entry ${j}, which writes no resource before this one`, at(path));
      holder.reference = target;
      continue;
    }
    if (/^urn:/i.test(ref)) {
      throw unprocessable(`Bundle.entry[${entry.index}]: ${path} refers to ${ref.slice(0, 100)}, which is the fullUrl of no entry of this Bundle${batch ? ' (the entries of a batch cannot refer to one another: send a transaction)' : ''}`, at(path), 'not-found');
    }
    const c = CONDITIONAL.exec(ref);
    if (c) holder.reference = await resolveConditional(ctx, trx, entry.index, path, c[1]!, c[2]!, at(path));
  }
  return resource;
}

async function resolveConditional(ctx: FhirContext, trx: Knex.Transaction, i: number, path: string, type: string, criteria: string, expression: string): Promise<string> {
  const def = resourceDefinition(type);
  if (!def) throw unprocessable(`Bundle.entry[${i}]: ${path} is a conditional reference to '${type}', which this server does not store`, expression);
  // the same criteria again in this transaction (a record names its practitioner 200 times): the
  // lock is held already and nothing of the type was written since, so the answer is the same
  // (criteria on the type's own elements only: a chain or _has would also depend on other types)
  // and only for the directory types a record names over and over, whose rows only their own type
  // writes (ServiceRequest's lab_results rows come with Observations, PractitionerRole's users
  // rows with Practitioners, a CoverageEligibilityResponse with its request: not cached)
  const own = CACHED_CONDITIONALS.has(type) && [...new URLSearchParams(criteria).keys()].every((k) => !k.includes('.') && !k.startsWith('_has'));
  const verified = own ? ctx.verified?.for(ctx.access) : undefined;
  const key = `${type}?${canonicalCriteria(criteria)}`;
  const known = verified?.resolution(key);
  if (known) return `${type}/${known}`;
  const matches = await conditionalMatches(ctx, trx, def, criteria, 'A conditional reference');
  if (matches.length === 1) {
    verified?.resolve(key, matches[0]!);
    return `${type}/${matches[0]}`;
  }
  throw new FhirError(412, [{
    severity: 'error', code: matches.length ? 'multiple-matches' : 'not-found', expression: [expression],
    diagnostics: `Bundle.entry[${i}]: the conditional reference ${path} = ${type}?${criteria.slice(0, 200)} matches ${matches.length ? 'more than one' : 'no'} ${type} (it must match exactly one)`,
  }]);
}
