/**
 * The overlay that keeps resources lossless while table columns stay authoritative.
 *
 * A mapper is a list of column fields. Writing: each field derives its column value from the
 * resource. Reading: start from the resource as last written (kept beside the row), derive each
 * column again, and only where the stored column differs (a native change, e.g. a worker marking
 * an invoice overdue) write the column's value into the resource. A resource written through
 * the API therefore reads back exactly as sent.
 */
import type { Resource } from '../fhir/types.js';
import { unprocessable } from '../fhir/outcome.js';

export type Row = Record<string, unknown>;

/**
 * What a version was written with, for NOT NULL columns the resource may leave open: such a
 * column is filled with the writing user (created_by, recorded_by ...) or the write's time. The
 * same values are known again on read (the version's recorded_by / recorded_at in
 * resource_history), so a defaulted column reads back as "implied", not as a native change.
 */
export interface WriteDefaults {
  userId?: string;
  /** SQL 'YYYY-MM-DD HH:MM:SS' UTC. */
  now?: string;
}

/** The defaults of the version a row was read with (currentQuery selects them as _recorded_by / _recorded_at). */
export function defaultsOfRow(row: Row): WriteDefaults {
  const at = row._recorded_at;
  return {
    userId: row._recorded_by === null || row._recorded_by === undefined ? undefined : String(row._recorded_by),
    now: at === null || at === undefined ? undefined : at instanceof Date ? at.toISOString().slice(0, 19).replace('T', ' ') : String(at),
  };
}

export interface ColumnField<R extends Resource = Resource> {
  column: string;
  /** FHIRPath of the element the column comes from (used in error messages). */
  path: string;
  /** The column value this resource implies (undefined/null = NULL), given the write's defaults. */
  toColumn(resource: R, defaults: WriteDefaults): unknown;
  /** Writes a stored column value into the resource. */
  fromColumn(resource: R, value: unknown): void;
  /** Column width in characters (VARCHAR): longer values are stored cut, the resource keeps them whole. */
  maxLength?: number;
  /** Column size in UTF-8 bytes (TEXT: 65,535): longer values are stored cut, the resource keeps them whole. */
  maxBytes?: number;
  /** A numeric column's range: a value outside it (or finer than its scale) is refused, 422, on every database. */
  numeric?: NumericColumn;
}

/** DECIMAL(precision, scale), or INT (signed 32-bit). */
export type NumericColumn = { precision: number; scale: number } | 'int';
export const DECIMAL = (precision: number, scale: number): NumericColumn => ({ precision, scale });

/**
 * Why a number does not fit a numeric column, or undefined when it does. MySQL refuses values out
 * of range (and rounds extra decimal places away), SQLite stores anything: checked here so that
 * both answer alike and nothing is stored other than as sent.
 */
export function numericProblem(value: unknown, column: NumericColumn): string | undefined {
  if (typeof value !== 'number') return undefined;
  if (column === 'int') {
    return Number.isInteger(value) && Math.abs(value) <= 2_147_483_647 ? undefined : 'is outside the whole numbers HMS stores here (up to ±2147483647)';
  }
  const limit = 10 ** (column.precision - column.scale);
  if (!(Math.abs(value) < limit)) return `is outside the range HMS stores here (less than ${limit} in magnitude)`;
  const places = /\.(\d+)/.exec(String(value))?.[1]?.length ?? (/e-(\d+)/.exec(String(value)) ? Infinity : 0);
  return places > column.scale ? `has more decimal places than HMS stores here (${column.scale})` : undefined;
}

/** MySQL TEXT holds at most this many bytes. */
export const TEXT_BYTES = 65_535;

/** Normalises DB and JS values for comparison: DECIMAL strings vs numbers, 0/1 vs booleans. */
export function sameValue(a: unknown, b: unknown): boolean {
  const na = a === undefined || a === '' ? null : a;
  const nb = b === undefined || b === '' ? null : b;
  if (na === null || nb === null) return na === nb;
  if (typeof na === 'boolean' || typeof nb === 'boolean') return Number(na) === Number(nb);
  if (typeof na === 'number' || typeof nb === 'number') return Number(na) === Number(nb);
  return String(na) === String(nb);
}

/** Cuts a string to a column's size on code-point boundaries (never inside a surrogate pair). */
function cut(value: unknown, f: { maxLength?: number; maxBytes?: number }): unknown {
  if (typeof value !== 'string') return value;
  let out = value;
  if (f.maxLength !== undefined && out.length > f.maxLength) {
    const points = Array.from(out);
    if (points.length > f.maxLength) out = points.slice(0, f.maxLength).join('');
  }
  if (f.maxBytes !== undefined && Buffer.byteLength(out, 'utf8') > f.maxBytes) {
    let bytes = 0;
    let end = 0;
    for (const ch of out) {
      bytes += Buffer.byteLength(ch, 'utf8');
      if (bytes > f.maxBytes) break;
      end += ch.length;
    }
    out = out.slice(0, end);
  }
  return out;
}

/** The columns a resource implies. */
export function columnsFromResource<R extends Resource>(fields: ColumnField<R>[], resource: R, defaults: WriteDefaults = {}): Row {
  const row: Row = {};
  for (const f of fields) {
    const v = f.toColumn(resource, defaults);
    const problem = f.numeric && numericProblem(v, f.numeric);
    if (problem) {
      const path = f.path.startsWith(`${resource.resourceType}.`) ? f.path : `${resource.resourceType}.${f.path}`;
      throw unprocessable(`${path} (stored as ${f.column} = ${String(v)}) ${problem}`, path, 'value');
    }
    row[f.column] = v === undefined ? null : cut(v, f);
  }
  return row;
}

/**
 * The resource a row and its kept resource read as: kept content, corrected by the authoritative
 * columns. Works on `resource` in place (callers pass a copy they own) and returns it.
 */
export function resourceFromColumns<R extends Resource>(fields: ColumnField<R>[], row: Row, resource: R, defaults: WriteDefaults = defaultsOfRow(row)): R {
  // a row read without a kept version (the history join found none: written natively) has no
  // elements to compare with, so every column it holds is written in, defaults included
  const native = row._recorded_at === null;
  for (const f of fields) {
    const stored = row[f.column];
    if (native ? stored !== null && stored !== undefined : !sameValue(cut(f.toColumn(resource, defaults), f), stored)) {
      f.fromColumn(resource, stored === undefined ? null : stored);
    }
  }
  return resource;
}
