/**
 * A doctor's or nurse's users row is the FHIR Practitioner. Account changes the resource shows
 * (name, phone, department, specialization, role, status, deletion) go through the FHIR write
 * path, so the row, its versions in resource_history, its ETag and its search index stay one.
 * A role change across the clinician line moves the row out of the Practitioner view (a DELETE
 * version first) or into it (a new version after the change). docs/admin-api.md.
 */
import type { Knex } from 'knex';
import '../fhir/resources/index.js';
import { createResource, deleteResource, readResource, updateResource, type AuditEvent, type FhirContext } from '../fhir/interactions.js';
import { Access } from '../fhir/access.js';
import { definitionOf } from '../fhir/resource-view.js';
import { latestVersion } from '../db/resource-repository.js';
import { patchAccount, type AccountColumns } from '../db/account-repository.js';
import { practitionerFields, practitionerFromRow, type Practitioner } from '../mappers/practitioner-mapper.js';
import { CLINICIAN_ROLES, type Role, type UserPrincipal } from './principal.js';

/** A security_logs event of an account change (who and from where are added by the sink). */
export interface AccountAuditEvent {
  action: string;
  resourceType?: string | null;
  resourceId?: string | null;
  patientId?: string | null;
  success: boolean;
  failureReason?: string | null;
  additionalData?: Record<string, unknown>;
}

/** Writes audit events; inside `trx` when given, so a change and its audit rows commit together. */
export type AccountAuditSink = (events: AccountAuditEvent[], trx?: Knex.Transaction) => Promise<void>;

/** Who changes accounts: an admin's session (the admin API) or the server's own tooling (no principal: the CLI). */
export interface AccountActor {
  principal?: UserPrincipal;
  audit: AccountAuditSink;
  /** FHIR base URL for anything the write path links to (defaults to a relative base). */
  baseUrl?: string;
}

/** Whether a role's users rows are Practitioners. */
export const isClinician = (role: Role): boolean => CLINICIAN_ROLES.includes(role);

const PRACTITIONER = 'Practitioner';

/**
 * The FHIR context of an account change: inside the change's transaction (the write path nests
 * in it, with no savepoint of its own), with the acting admin's access (full), auditing into the same transaction.
 */
function writeContext(trx: Knex.Transaction, actor: AccountActor): FhirContext {
  const sink = (events: AuditEvent | AuditEvent[], own?: Knex.Transaction): Promise<void> => {
    // the read of the current version that an update starts from is part of this change, not an access of its own
    const list = (Array.isArray(events) ? events : [events]).filter((e) => e.action !== 'read');
    if (list.length === 0) return Promise.resolve();
    // always the change's transaction: on SQLite the one pooled connection is held by it
    return actor.audit(list.map((e) => ({
      action: e.action, resourceType: e.resourceType, resourceId: e.resourceId ?? null, patientId: e.patientId ?? null,
      success: e.success, failureReason: e.reason ?? null, ...(e.data ? { additionalData: e.data } : {}),
    })), own ?? trx);
  };
  return {
    db: trx,
    baseUrl: actor.baseUrl ?? '/fhir',
    userId: actor.principal?.userId,
    access: new Access(actor.principal),
    strict: true,
    maxCount: 1,
    audit: sink,
    // the account service ends sessions, publishes and records the privilege change itself
    accountEffectsHandled: true,
  };
}

/** The Practitioner a new clinician account starts as: what its columns imply (as a native row would read). */
function initialPractitioner(columns: { email: string; name: string; role: Role } & AccountColumns): Practitioner {
  const resource = practitionerFromRow({
    id: '', email: columns.email, name: columns.name, role: columns.role, status: columns.status ?? 'active',
    department: columns.department ?? null, specialization: columns.specialization ?? null, phone: columns.phone ?? null, avatar: null,
  });
  delete resource.id;
  return resource;
}

/** Creates a clinician's account as Practitioner version 1 (no password yet: NO_PASSWORD); returns its id. */
export async function createPractitionerAccount(trx: Knex.Transaction, actor: AccountActor, columns: { email: string; name: string; role: Role } & AccountColumns): Promise<string> {
  const { resource } = await createResource(writeContext(trx, actor), PRACTITIONER, initialPractitioner(columns));
  return resource.id!;
}

/**
 * Applies column changes to a Practitioner as one new version, the way the column overlay shows a
 * native change (the mapper's own fromColumn), so every other element written through FHIR stays.
 * No version when nothing the resource shows changes.
 */
export async function updatePractitionerAccount(trx: Knex.Transaction, actor: AccountActor, id: string, changes: AccountColumns): Promise<void> {
  const ctx = writeContext(trx, actor);
  const current = (await readResource(ctx, PRACTITIONER, id)) as Practitioner;
  const next = structuredClone(current);
  for (const f of practitionerFields) {
    if (f.column in changes) f.fromColumn(next, (changes as Record<string, unknown>)[f.column] ?? null);
  }
  if (JSON.stringify(next) === JSON.stringify(current)) return;
  await updateResource(ctx, PRACTITIONER, id, next, `W/"${current.meta?.versionId}"`);
}

/** Deletes a clinician's account through the write path (soft: deleted_at, a DELETE version, 410 on read). */
export async function deletePractitionerAccount(trx: Knex.Transaction, actor: AccountActor, id: string): Promise<void> {
  await deleteResource(writeContext(trx, actor), PRACTITIONER, id);
}

/**
 * A clinician becomes admin, patient or finance: the Practitioner ends with a DELETE version (reads
 * answer 410, search no longer finds it), then the row takes its new role and stays a live account.
 */
export async function leavePractitionerView(trx: Knex.Transaction, actor: AccountActor, id: string, changes: AccountColumns): Promise<void> {
  await deleteResource(writeContext(trx, actor), PRACTITIONER, id);
  await patchAccount(trx, id, { ...changes, deleted_at: null });
}

/**
 * An admin, patient or finance account becomes a doctor or nurse: the row takes its new role and
 * the Practitioner it now is gets written as the next version of its history (version 1 when it
 * never was one; after an earlier DELETE, the version after it).
 */
export async function enterPractitionerView(trx: Knex.Transaction, actor: AccountActor, id: string, changes: AccountColumns): Promise<void> {
  const previous = (await latestVersion(trx, definitionOf(PRACTITIONER), id))?.versionId ?? 0;
  // the row's own counter means nothing outside the view; the history's numbering continues
  await patchAccount(trx, id, { ...changes, version_id: previous });
  const ctx = writeContext(trx, actor);
  const current = (await readResource(ctx, PRACTITIONER, id)) as Practitioner;
  await updateResource(ctx, PRACTITIONER, id, current);
}
