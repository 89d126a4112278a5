/** The search index rows a resource implies, from its definition's index-backed parameters. */
import type { IndexEntries } from '../../db/resource-repository.js';
import type { DateRangeValue, IndexSearchParam, QuantityIndexValue, ResourceDefinition, TokenValue } from '../registry.js';
import type { Resource } from '../types.js';
import { INDEX_VALUE_LENGTH, normalizeString } from './normalize.js';

const clip = (s: string): string => s.slice(0, INDEX_VALUE_LENGTH);
const clipOrNull = (s: string | undefined): string | null => (s ? clip(s) : null);

/** Adds the values of one parameter to `out`, each distinct value once. */
function addValues(out: Required<IndexEntries>, p: IndexSearchParam, values: unknown[]): void {
  const seen = new Set<string>();
  const once = (key: string): boolean => (seen.has(key) ? false : (seen.add(key), true));
  for (const v of values) {
    switch (p.type) {
      case 'string': {
        const value = clip(String(v));
        if (once(value)) out.strings.push({ param: p.name, value, norm: clip(normalizeString(String(v))) });
        break;
      }
      case 'date': {
        const d = v as DateRangeValue;
        if (Number.isFinite(d.low) && Number.isFinite(d.high) && once(`${d.low}|${d.high}`)) out.dates.push({ param: p.name, low: d.low, high: d.high });
        break;
      }
      case 'number': {
        const n = Number(v);
        if (Number.isFinite(n) && once(String(n))) out.numbers.push({ param: p.name, value: n });
        break;
      }
      case 'quantity': {
        const q = v as QuantityIndexValue;
        if (Number.isFinite(q.value) && once(`${q.value}|${q.system ?? ''}|${q.code ?? ''}`)) {
          out.quantities.push({ param: p.name, value: q.value, system: clipOrNull(q.system), code: clipOrNull(q.code) });
        }
        break;
      }
      default: {
        // token, reference, uri: a bare code, or a token with its system
        const t: TokenValue = typeof v === 'string' ? { code: v } : (v as TokenValue);
        if (!t.code) break;
        if (once(`${t.system ?? ''}|${t.code}`)) out.tokens.push({ param: p.name, system: clipOrNull(t.system), code: clip(t.code) });
      }
    }
  }
}

/** Extracts every index-backed search value of a resource (deduplicated per parameter). */
export function indexEntries(def: ResourceDefinition, resource: Resource): IndexEntries {
  const out: Required<IndexEntries> = { strings: [], tokens: [], dates: [], numbers: [], quantities: [] };
  for (const p of def.searchParams) if (p.source === 'index') addValues(out, p, p.extract(resource));
  return out;
}
