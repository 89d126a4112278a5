/** Loads the official FHIR example resources copied under test/fixtures. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestApp } from './app.js';

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

/** Every official example under test/fixtures/r4, by file name. */
export function allOfficialExamples(): { name: string; resource: Record<string, unknown> }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f, resource: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown> }));
}

/** A value as a search parameter states it: `\`, `,`, `$` and `|` escaped (https://hl7.org/fhir/R4/search.html#escaping). */
export function searchValue(v: unknown): string {
  return String(v).replace(/[\\,$|]/g, (c) => `\\${c}`);
}

/** A Coding or Identifier as a token search value: `system|code` (`code` alone without a system). */
export function searchToken(c: { system?: string; code?: string; value?: string } | undefined): string {
  const code = searchValue(c?.code ?? c?.value);
  return c?.system ? `${searchValue(c.system)}|${code}` : code;
}

/**
 * Every page of Patient/<id>/$everything (following its next links, `_count` a page): the
 * `Type/id` of its matches and includes, the resources by `Type/id`, the number of pages, or the
 * first failing answer.
 */
export async function everythingOf(h: TestApp, patient: string, count: number): Promise<{ matches: string[]; included: string[]; pages: number; resources: Record<string, any> } | string> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const matches: string[] = [];
  const resources: Record<string, Record<string, unknown>> = {};
  const included: string[] = [];
  let pages = 0;
  let url: string | undefined = `/fhir/Patient/${patient}/$everything?_count=${count}`;
  while (url) {
    const res = await h.fhir({ method: 'GET', url });
    if (res.statusCode !== 200) return `GET ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`;
    const b = res.json() as { entry?: { resource: { resourceType: string; id: string }; search?: { mode?: string } }[]; link?: { relation: string; url: string }[] };
    for (const e of b.entry ?? []) {
      const key = `${e.resource.resourceType}/${e.resource.id}`;
      (e.search?.mode === 'include' ? included : matches).push(key);
      resources[key] = e.resource;
    }
    const next = b.link?.find((l) => l.relation === 'next')?.url;
    url = next ? new URL(next).pathname + new URL(next).search : undefined;
    if (++pages > 1000) return `GET ${url}: runaway paging`;
  }
  return { matches, included, pages, resources };
}
