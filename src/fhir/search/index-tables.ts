/**
 * The search index tables of each parameter kind, and the _sort expression of an index-backed
 * parameter (parsing needs it, compiling the filters needs the tables; neither needs the other).
 */
import type { IndexSearchParam } from '../registry.js';

/** The index table of a parameter's kind: strings; tokens, references and uris; dates; numbers; quantities. */
export function indexTable(def: Pick<IndexSearchParam, 'type'>): string {
  switch (def.type) {
    case 'string': return 'search_string';
    case 'date': return 'search_date';
    case 'number': return 'search_number';
    case 'quantity': return 'search_quantity';
    default: return 'search_token';
  }
}

/** A registry name as SQL text; names are letters, digits, '-', '_' and '.', anything else is a definition's error. */
function sqlText(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`Cannot sort by the index of '${name}': not a plain name`);
  return `'${name}'`;
}

/**
 * The _sort expression of an index-backed parameter (without a `sort` of its own), over the
 * resource at alias t: a correlated subquery of the resource's rows for the parameter, NULL when it
 * has none (orderKeys puts those last). Ascending sorts by the least value, descending by the
 * greatest (a resource with several values sorts by the one that comes first in that order):
 * dates by their range's start ascending and its end descending, strings by the normalised value
 * (case and accents ignored, as the search compares them), tokens, references and uris by the
 * code, numbers and quantities by the value (whatever the unit). The type and parameter names
 * are the registry's, written in as SQL text (SortKey.expressions are spliced, they bind nothing).
 */
export function indexSortExpression(type: string, def: IndexSearchParam, descending: boolean): string {
  const column = def.type === 'date' ? (descending ? 'high' : 'low') : def.type === 'string' ? 'norm' : def.type === 'number' || def.type === 'quantity' ? 'value' : 'code';
  const k = 'hms_sort';
  return `(SELECT ${descending ? 'MAX' : 'MIN'}(${k}.${column}) FROM ${indexTable(def)} ${k}`
    + ` WHERE ${k}.resource_type = ${sqlText(type)} AND ${k}.param = ${sqlText(def.name)} AND ${k}.resource_id = t.id)`;
}
