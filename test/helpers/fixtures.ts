/** Loads the official FHIR example resources copied under test/fixtures. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'r4');

/** Every official example of a type, by file name. */
export function officialExamples(type: string): { name: string; resource: Record<string, unknown> }[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${type}-`) && f.endsWith('.json'))
    .map((f) => ({ name: f, resource: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown> }));
}

/** A resource without id and meta (what a round trip must preserve). */
export function withoutIdAndMeta(r: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, meta: _meta, ...rest } = r;
  return rest;
}
