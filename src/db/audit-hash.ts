/**
 * The hash of a security_logs row: the link of the tamper-evident chain (docs/audit-log.md).
 *
 * `hash` = lowercase hex SHA-256 of the UTF-8 bytes of the row's canonical form, which is the JSON
 * text (JavaScript's `JSON.stringify`, no spaces) of this array:
 *
 * ```
 * ["hms-audit-v1", id, seq, prev_hash, timestamp, user_id, client_id, role, action, resource_type,
 *  resource_id, patient_id, ip_address, user_agent, success, failure_reason, request_id,
 *  break_glass, additional_data]
 * ```
 *
 * - every column of the row except `hash` itself, in that order; a NULL is `null`;
 * - `seq` as a decimal string (a BIGINT may exceed JavaScript's exact integers);
 * - `timestamp` as the database gives it back: 'YYYY-MM-DD HH:MM:SS' (UTC, both dialects);
 * - `success` and `break_glass` as the numbers 0 and 1 (any other stored number as itself);
 * - `additional_data` as a string: the JSON re-serialized canonically (object keys sorted by
 *   UTF-16 code units at every level, no spaces), because MySQL 8 stores JSON in its own key order
 *   and spacing; a stored text that is not JSON is taken as it is;
 * - `prev_hash` of the first row (seq 1) is {@link AUDIT_GENESIS_HASH}.
 *
 * Pure: no I/O, so the writer, the verifier and the migration's backfill share it.
 */
import { createHash } from 'node:crypto';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';

/** prev_hash of the first row of the chain (seq 1). */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** Tag of the canonical form (first element): a later form would use another tag. */
export const AUDIT_HASH_VERSION = 'hms-audit-v1';

/** The columns the hash covers, in canonical order (every column but `hash`). */
export const AUDIT_HASHED_COLUMNS = [
  'id', 'seq', 'prev_hash', 'timestamp', 'user_id', 'client_id', 'role', 'action', 'resource_type', 'resource_id', 'patient_id',
  'ip_address', 'user_agent', 'success', 'failure_reason', 'request_id', 'break_glass', 'additional_data',
] as const;

const BOOLEAN_COLUMNS = new Set<string>(['success', 'break_glass']);

/** JSON text with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** additional_data as hashed: canonical JSON text, or the stored text when it is not JSON. */
function canonicalData(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') return canonicalJson(v); // mysql2 hands MySQL 8 JSON columns over parsed
  try {
    return canonicalJson(JSON.parse(v));
  } catch {
    return v;
  }
}

function canonicalValue(column: string, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (column === 'additional_data') return canonicalData(v);
  if (BOOLEAN_COLUMNS.has(column)) return typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
  if (column === 'seq') return typeof v === 'bigint' ? v.toString() : String(v);
  if (v instanceof Date) return dateToSqlTimestamp(v); // a driver without dateStrings
  return String(v);
}

/** The canonical text of a row (see the module's description). */
export function canonicalSecurityLog(row: Record<string, unknown>): string {
  return JSON.stringify([AUDIT_HASH_VERSION, ...AUDIT_HASHED_COLUMNS.map((c) => canonicalValue(c, row[c]))]);
}

/** The hash of a row: hex SHA-256 of its canonical text. */
export function securityLogHash(row: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalSecurityLog(row), 'utf8').digest('hex');
}
