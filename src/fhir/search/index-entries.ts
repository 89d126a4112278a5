/** The search index rows a resource implies, from its definition's index-backed parameters. */
import type { IndexEntries } from '../../db/resource-repository.js';
import type { ResourceDefinition, TokenValue } from '../registry.js';
import type { Resource } from '../types.js';
import { INDEX_VALUE_LENGTH, normalizeString } from './normalize.js';

const clip = (s: string): string => s.slice(0, INDEX_VALUE_LENGTH);

/** Extracts every index-backed search value of a resource (deduplicated per parameter). */
export function indexEntries(def: ResourceDefinition, resource: Resource): IndexEntries {
  const out: IndexEntries = { strings: [], tokens: [] };
  for (const p of def.searchParams) {
    if (p.source !== 'index') continue;
    const seen = new Set<string>();
    for (const v of p.extract(resource)) {
      if (typeof v === 'string') {
        const entry = p.type === 'string'
          ? { kind: 's' as const, value: clip(v), norm: clip(normalizeString(v)) }
          : { kind: 't' as const, system: null, code: clip(v) };
        const key = JSON.stringify(entry);
        if (seen.has(key)) continue;
        seen.add(key);
        if (entry.kind === 's') out.strings.push({ param: p.name, value: entry.value, norm: entry.norm });
        else out.tokens.push({ param: p.name, system: entry.system, code: entry.code });
      } else {
        const t = v as TokenValue;
        const key = `${t.system ?? ''}|${t.code}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.tokens.push({ param: p.name, system: t.system ? clip(t.system) : null, code: clip(t.code) });
      }
    }
  }
  return out;
}
