/**
 * Appends to security_logs. Entries from concurrent requests are written together in one
 * multi-row INSERT (group commit): each caller still waits until its row is stored, but under
 * load the database sees one write per batch instead of one per request.
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { nowSeconds } from './resource-repository.js';

export interface SecurityLogEntry {
  /** The acting user (users.id), for people. */
  userId?: string | null;
  /** The acting system (api_clients.id), for SMART Backend Services clients. */
  clientId?: string | null;
  /** The role the actor acted in (admin, doctor, nurse, patient, finance, system). */
  role?: string | null;
  action: string;
  resourceType?: string | null;
  resourceId?: string | null;
  /** The patient whose data was accessed (one row per patient: the accounting of disclosures). */
  patientId?: string | null;
  ipAddress?: string | null;
  userAgent?: string | null;
  success: boolean;
  failureReason?: string | null;
  /** The request id (Fastify's), to tie the rows of one request together. */
  requestId?: string | null;
  /** The access was made under a break-glass grant. */
  breakGlass?: boolean;
  additionalData?: Record<string, unknown> | null;
}

interface Pending { row: Record<string, unknown>; resolve: () => void; reject: (e: unknown) => void }

const MAX_BATCH = 500;

/** The security_logs row of an entry (columns cut to their widths). */
export function securityLogRow(entry: SecurityLogEntry): Record<string, unknown> {
  return {
    id: uuidv7(),
    user_id: entry.userId ?? null,
    action: entry.action.slice(0, 100),
    resource_type: entry.resourceType?.slice(0, 50) ?? null,
    resource_id: entry.resourceId?.slice(0, 36) ?? null,
    ip_address: entry.ipAddress?.slice(0, 45) ?? null,
    user_agent: entry.userAgent ?? null,
    timestamp: nowSeconds().sql,
    success: entry.success,
    failure_reason: entry.failureReason ?? null,
    additional_data: entry.additionalData ? JSON.stringify(entry.additionalData) : null,
  };
}

export class AuditLog {
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly db: Knex) {}

  /**
   * Stores one entry; resolves once it is committed. Given a transaction, the row is written in it,
   * so a data change and its audit row commit (or roll back) together.
   */
  record(entries: SecurityLogEntry | SecurityLogEntry[], trx?: Knex.Transaction): Promise<void> {
    const rows = (Array.isArray(entries) ? entries : [entries]).map(securityLogRow);
    if (rows.length === 0) return Promise.resolve();
    if (trx) return trx('security_logs').insert(rows).then(() => undefined);
    return Promise.all(rows.map((row) => new Promise<void>((resolve, reject) => {
      this.pending.push({ row, resolve, reject });
      this.flushing ??= this.drain();
    }))).then(() => undefined);
  }

  /** Resolves when everything recorded so far is stored. */
  async settle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, MAX_BATCH);
        try {
          await this.db('security_logs').insert(batch.map((p) => p.row));
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}
