/**
 * Column fields built from a path into the resource: the common shapes of the mappers (a value
 * at a path, a code mapped to an enum, a reference to a stored type, a date). Pure, no I/O.
 *
 * Paths are dot-separated element names with optional numeric indexes: `code.text`,
 * `reasonCode.0.text`, `dispenseRequest.quantity.value`. Setting a path creates what is missing
 * on the way; clearing it removes the value and any object or array left empty.
 */
import type { Reference, Resource } from '../fhir/types.js';
import type { ColumnField, WriteDefaults } from './column-map.js';
import { dateToSql, referenceId } from './datatypes.js';

type Obj = Record<string, unknown>;
const isIndex = (k: string): boolean => /^\d+$/.test(k);
const empty = (v: unknown): boolean =>
  v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as Obj).length === 0);

/** The value at a path, or undefined. */
export function getPath(root: unknown, path: string): unknown {
  let cur: unknown = root;
  for (const k of path.split('.')) {
    if (cur === null || cur === undefined || typeof cur !== 'object') return undefined;
    cur = (cur as Obj)[k];
  }
  return cur;
}

/** Sets the value at a path (null/undefined/'' clears it and prunes what is left empty). */
export function setPath(root: Obj, path: string, value: unknown): void {
  const keys = path.split('.');
  if (value === null || value === undefined || value === '') {
    const trail: { holder: Obj; key: string }[] = [];
    let cur: unknown = root;
    for (const k of keys) {
      if (cur === null || cur === undefined || typeof cur !== 'object') return;
      trail.push({ holder: cur as Obj, key: k });
      cur = (cur as Obj)[k];
    }
    for (let i = trail.length - 1; i >= 0; i--) {
      const { holder, key } = trail[i]!;
      if (i === trail.length - 1 || empty(holder[key])) {
        if (Array.isArray(holder) && isIndex(key)) holder.splice(Number(key), 1);
        else delete holder[key];
      }
      if (!empty(holder)) break;
    }
    return;
  }
  let cur: Obj = root;
  keys.forEach((k, i) => {
    if (i === keys.length - 1) { cur[k] = value; return; }
    let next = cur[k];
    if (next === null || next === undefined || typeof next !== 'object') {
      next = isIndex(keys[i + 1]!) ? [] : {};
      cur[k] = next;
    }
    cur = next as Obj;
  });
}

export interface Sized { maxLength?: number; maxBytes?: number }

/** A column that mirrors the value at a path, with optional conversions each way. */
export function pathField<R extends Resource>(
  column: string, path: string, opts: Sized & { toColumn?: (v: unknown) => unknown; fromColumn?: (v: unknown) => unknown } = {},
): ColumnField<R> {
  const { toColumn = (v) => v, fromColumn = (v) => v, ...size } = opts;
  return {
    column, path: path.replace(/\.(\d+)/g, '[$1]'), ...size,
    toColumn: (r) => { const v = getPath(r, path); return v === undefined ? undefined : toColumn(v); },
    fromColumn: (r, v) => setPath(r as unknown as Obj, path, v === null || v === undefined ? undefined : fromColumn(v)),
  };
}

/**
 * A code at a path mapped onto an enum column. `toCode` maps column values to codes; a code with
 * no column value maps to `fallback` (undefined: NULL). The column's DEFAULT is what an absent
 * code stores (`absent`).
 */
export function codeField<R extends Resource>(
  column: string, path: string, toCode: Record<string, string>, opts: { absent?: string; fromCode?: Record<string, string> } = {},
): ColumnField<R> {
  const fromCode = opts.fromCode ?? Object.fromEntries(Object.entries(toCode).map(([col, code]) => [code, col]));
  return {
    column, path,
    toColumn: (r) => { const code = getPath(r, path); return code === undefined ? opts.absent : fromCode[String(code)] ?? opts.absent; },
    fromColumn: (r, v) => setPath(r as unknown as Obj, path, v === null || v === undefined ? undefined : toCode[String(v)]),
  };
}

/**
 * A column holding the id of a stored resource, mirrored by a Reference at a path. With
 * `defaultToUser` the column is NOT NULL and a resource without the reference stores the writing
 * user (see WriteDefaults).
 */
export function referenceField<R extends Resource>(column: string, path: string, type: string, opts: { defaultToUser?: boolean } = {}): ColumnField<R> {
  return {
    column, path,
    toColumn: (r, d: WriteDefaults) => referenceId(getPath(r, path) as Reference | undefined, type) ?? (opts.defaultToUser ? d.userId : undefined),
    fromColumn: (r, v) => setPath(r as unknown as Obj, path, v === null || v === undefined ? undefined : { reference: `${type}/${String(v)}` }),
  };
}

/** A DATE column mirrored by a FHIR date (or the date part of a dateTime) at a path. */
export function dateField<R extends Resource>(column: string, path: string, opts: { defaultToNow?: boolean } = {}): ColumnField<R> {
  return {
    column, path,
    toColumn: (r, d: WriteDefaults) => dateToSql(getPath(r, path) as string | undefined) ?? (opts.defaultToNow ? d.now?.slice(0, 10) : undefined),
    fromColumn: (r, v) => setPath(r as unknown as Obj, path, v === null || v === undefined ? undefined : String(v).slice(0, 10)),
  };
}
