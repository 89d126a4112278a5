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

export type Row = Record<string, unknown>;

export interface ColumnField<R extends Resource = Resource> {
  column: string;
  /** FHIRPath of the element the column comes from (used in error messages). */
  path: string;
  /** The column value this resource implies (undefined/null = NULL). */
  toColumn(resource: R): unknown;
  /** Writes a stored column value into the resource. */
  fromColumn(resource: R, value: unknown): void;
  /** Column width in characters: longer values are stored cut, the resource keeps them whole. */
  maxLength?: number;
}

/** Normalises DB and JS values for comparison: DECIMAL strings vs numbers, 0/1 vs booleans. */
export function sameValue(a: unknown, b: unknown): boolean {
  const na = a === undefined || a === '' ? null : a;
  const nb = b === undefined || b === '' ? null : b;
  if (na === null || nb === null) return na === nb;
  if (typeof na === 'boolean' || typeof nb === 'boolean') return Number(na) === Number(nb);
  if (typeof na === 'number' || typeof nb === 'number') return Number(na) === Number(nb);
  return String(na) === String(nb);
}

function cut(value: unknown, maxLength?: number): unknown {
  if (maxLength !== undefined && typeof value === 'string' && value.length > maxLength) return value.slice(0, maxLength);
  return value;
}

/** The columns a resource implies. */
export function columnsFromResource<R extends Resource>(fields: ColumnField<R>[], resource: R): Row {
  const row: Row = {};
  for (const f of fields) {
    const v = f.toColumn(resource);
    row[f.column] = v === undefined ? null : cut(v, f.maxLength);
  }
  return row;
}

/** The resource a row and its kept resource read as: kept content, corrected by the authoritative columns. */
export function resourceFromColumns<R extends Resource>(fields: ColumnField<R>[], row: Row, kept: R): R {
  const resource = structuredClone(kept);
  for (const f of fields) {
    const implied = cut(f.toColumn(resource), f.maxLength);
    const stored = row[f.column];
    if (!sameValue(implied, stored)) f.fromColumn(resource, stored === undefined ? null : stored);
  }
  return resource;
}
