/** What every FHIR interaction needs to know about its caller. */
import type { Knex } from 'knex';

/** Who is asking and how to record it; filled by the HTTP layer (or a worker). */
export interface FhirContext {
  db: Knex;
  /** Base URL of the FHIR endpoint, e.g. https://hms.example.org/fhir */
  baseUrl: string;
  userId?: string;
  /** Prefer: handling=strict */
  strict: boolean;
  maxCount: number;
  /** Records an access to patient data (security_logs); inside `trx` when given (data changes). */
  audit(event: AuditEvent, trx?: Knex.Transaction): Promise<void>;
}

export interface AuditEvent {
  action: string;
  resourceType: string;
  resourceId?: string;
  success: boolean;
  reason?: string;
  data?: Record<string, unknown>;
}

