/** Shared FHIR datatype helpers for mappers: pure functions, no I/O. */
import type { Address, ContactPoint, Extension, HumanName, Reference, Resource } from '../fhir/types.js';

/** Canonical base of the StructureDefinitions HMS defines for elements FHIR R4 has no place for. */
export const HMS_CANONICAL = 'http://hms.example.org/fhir';
export const hmsExtensionUrl = (name: string): string => `${HMS_CANONICAL}/StructureDefinition/${name}`;

/** The name that columns mirror: the first official one, else the first not marked old, else the first. */
export function primaryIndex<T extends { use?: string }>(list: T[] | undefined, preferred: string[], avoid: string[] = []): number {
  if (!list || list.length === 0) return -1;
  for (const use of preferred) {
    const i = list.findIndex((x) => x.use === use);
    if (i >= 0) return i;
  }
  const j = list.findIndex((x) => !avoid.includes(x.use ?? ''));
  return j >= 0 ? j : 0;
}

export const primaryName = (names: HumanName[] | undefined): number => primaryIndex(names, ['official', 'usual'], ['old', 'maiden']);
export const primaryAddress = (addresses: Address[] | undefined): number => primaryIndex(addresses, ['home'], ['old']);

/** The element of a repeating list that columns mirror (chosen by `pick`), or undefined. */
export function primaryOf<T>(list: T[] | undefined, pick: (list: T[] | undefined) => number): T | undefined {
  const i = pick(list);
  return i >= 0 ? list![i] : undefined;
}

/** That element; when the list has none, `fresh` is appended and returned. */
export function ensurePrimary<H, K extends keyof H, T>(holder: H, key: K, pick: (list: T[] | undefined) => number, fresh: T): T {
  let list = holder[key] as unknown as T[] | undefined;
  const existing = primaryOf(list, pick);
  if (existing) return existing;
  if (!list) {
    list = [];
    (holder as Record<K, unknown>)[key] = list;
  }
  list.push(fresh);
  return fresh;
}

/** Index of the first ContactPoint of a system (lowest rank first when ranks are given). */
export function telecomIndex(telecom: ContactPoint[] | undefined, system: string): number {
  if (!telecom) return -1;
  let best = -1;
  telecom.forEach((t, i) => {
    if (t.system !== system || !t.value) return;
    if (best < 0 || (t.rank ?? Infinity) < (telecom[best]!.rank ?? Infinity)) best = i;
  });
  return best;
}

/** Sets (or with null removes) the value of the first ContactPoint of a system. */
export function setTelecom(holder: { telecom?: ContactPoint[] }, system: string, value: unknown): void {
  const i = telecomIndex(holder.telecom, system);
  if (value === null || value === undefined || value === '') {
    if (i >= 0) holder.telecom!.splice(i, 1);
    if (holder.telecom && holder.telecom.length === 0) delete holder.telecom;
    return;
  }
  if (i >= 0) holder.telecom![i]!.value = String(value);
  else (holder.telecom ??= []).push({ system, value: String(value) });
}

/** Value of a simple extension (value[x] of the given kind). */
export function extensionValue(resource: { extension?: Extension[] }, url: string, kind: string): unknown {
  return resource.extension?.find((e) => e.url === url)?.[kind];
}

/** Sets (or with null removes) a simple extension. */
export function setExtension(resource: { extension?: Extension[] }, url: string, kind: string, value: unknown): void {
  const list = resource.extension ?? [];
  const i = list.findIndex((e) => e.url === url);
  if (value === null || value === undefined || value === '') {
    if (i >= 0) list.splice(i, 1);
  } else if (i >= 0) {
    list[i] = { url, [kind]: value };
  } else {
    list.push({ url, [kind]: value });
  }
  if (list.length) resource.extension = list;
  else delete resource.extension;
}

/** Id part of a relative reference to a given type ("Practitioner/123" -> "123"), else undefined (absolute references to this server are made relative before a write: references.ts). */
export function referenceId(ref: Reference | undefined, type: string): string | undefined {
  const m = ref?.reference?.match(/^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/);
  return m && m[1] === type ? m[2] : undefined;
}

/** A FHIR date (YYYY, YYYY-MM, YYYY-MM-DD) as a full SQL DATE: partial dates start at their first day. */
export function dateToSql(date: string | undefined): string | undefined {
  if (!date) return undefined;
  const [y, m = '01', d = '01'] = date.slice(0, 10).split('-');
  return `${y}-${m}-${d}`;
}

/** Human-readable text of a HumanName: text, else given names and family. */
export function nameText(name: HumanName | undefined): string | undefined {
  if (!name) return undefined;
  if (name.text) return name.text;
  const parts = [...(name.given ?? []), name.family].filter(Boolean);
  return parts.length ? parts.join(' ') : undefined;
}

/** Drops keys whose value is undefined, an empty array or an empty object (FHIR JSON has no empties). */
export function prune<T extends Resource | Record<string, unknown>>(obj: T): T {
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0)) {
      delete (obj as Record<string, unknown>)[k];
    }
  }
  return obj;
}

/** SQL 'YYYY-MM-DD HH:MM:SS' (UTC) -> FHIR instant 'YYYY-MM-DDTHH:MM:SSZ'. */
export function sqlToInstant(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const s = String(value);
  if (/^\d+$/.test(s)) return new Date(Number(s)).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return s.replace(' ', 'T').replace(/\.\d+$/, '') + (/[Z+]/.test(s.slice(10)) ? '' : 'Z');
}

/** A JS Date -> SQL 'YYYY-MM-DD HH:MM:SS' in UTC (seconds precision, as TIMESTAMP columns hold). */
export function dateToSqlTimestamp(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/** A FHIR dateTime/instant -> SQL 'YYYY-MM-DD HH:MM:SS' in UTC (a bare date is its UTC midnight). */
export function dateTimeToSql(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (/^\d{4}(-\d{2}){0,2}$/.test(value)) return `${dateToSql(value)} 00:00:00`;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : dateToSqlTimestamp(new Date(t));
}

/** SQL DATE + TIME columns (UTC) -> FHIR instant. */
export function sqlDateTimeToInstant(date: unknown, time: unknown): string | undefined {
  if (date === null || date === undefined) return undefined;
  const d = date instanceof Date ? date.toISOString().slice(0, 10) : String(date).slice(0, 10);
  const t = time === null || time === undefined ? '00:00:00' : String(time).slice(0, 8);
  return `${d}T${t}Z`;
}
