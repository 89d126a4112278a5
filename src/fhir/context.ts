/** What every FHIR interaction needs to know about its caller. */
import type { Knex } from 'knex';
import type { Access } from './access.js';
import type { SearchLimits } from './search/limits.js';
import type { VerifiedReferences } from './verified-references.js';

/** Who is asking and how to record it; filled by the HTTP layer (or a worker). */
export interface FhirContext {
  db: Knex;
  /** Base URL of the FHIR endpoint, e.g. https://hms.example.org/fhir */
  baseUrl: string;
  /** The acting user (users.id), when a person is asking: NOT NULL columns such as created_by default to it. */
  userId?: string;
  /** What the caller may do and see (src/fhir/access.ts). */
  access: Access;
  /** Prefer: handling=strict */
  strict: boolean;
  maxCount: number;
  /** Bounds on the cost of a search (DEFAULT_SEARCH_LIMITS when absent). */
  searchLimits?: SearchLimits;
  /** Aborts when the caller has gone away: its running statements are cancelled (src/db/cancellable.ts). */
  signal?: AbortSignal;
  /** Tells every API process to forget a user's cached sessions (absent: nothing caches them). */
  revokeUser?(userId: string): Promise<void>;
  /**
   * Work to run once the outermost transaction has committed (a transaction Bundle collects it
   * here); absent, an interaction runs it as soon as its own transaction has committed.
   */
  deferred?: (() => Promise<void>)[];
  /** References already checked in this transaction (a transaction Bundle's): each is looked up once. */
  verified?: VerifiedReferences;
  /** The caller manages user accounts itself (the admin API): definitions' account effects are left to it. */
  accountEffectsHandled?: boolean;
  /**
   * Records accesses (security_logs), one event per patient whose data was touched; inside `trx`
   * when given (data changes). Rejects with a 503 FhirError when the log cannot be written.
   */
  audit(events: AuditEvent | AuditEvent[], trx?: Knex.Transaction): Promise<void>;
}

export interface AuditEvent {
  action: string;
  resourceType: string;
  resourceId?: string;
  /** The patient whose data this event is about (the accounting of disclosures). */
  patientId?: string | null;
  success: boolean;
  reason?: string;
  data?: Record<string, unknown>;
  /** Made under a break-glass grant (default: whether the caller holds one for the patient). */
  breakGlass?: boolean;
}
