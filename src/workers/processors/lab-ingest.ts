/**
 * Processes one stored lab message (docs/lab-ingestion.md). Exactly once: the message row is
 * locked for the whole transaction that writes its results and marks it done, so a second
 * worker (a resend, the sweeper, a stalled job run again) waits and then finds it done, and a
 * worker killed half-way leaves nothing (the database rolls the transaction back).
 * A message that cannot succeed (no single patient, an invalid result, a refused scope) ends
 * failed with its OperationOutcome and no retries; anything else (the database down) is retried.
 */
import type { Knex } from 'knex';
import { parseScopes } from '../../auth/scopes.js';
import type { ClientKind, Principal } from '../../auth/principal.js';
import { FhirError, operationOutcome, type OperationOutcome } from '../../fhir/outcome.js';
import { dbErrorCode, inTransaction } from '../../db/transactions.js';
import { lockMessage, setMessageStatus, findMessage, type StoredMessage } from '../../ingest/messages.js';
import { fhirPlan, hl7Plan } from '../../ingest/plans.js';
import { writePlan } from '../../ingest/write-plan.js';
import { Hl7Error } from '../../ingest/hl7.js';
import { workerContext } from '../context.js';
import type { SecurityLogEntry } from '../../db/audit-log.js';
import { PermanentJobError, type JobDeps, type JobResult } from '../jobs.js';
import { faultFor } from '../faults.js';

/** The principal a message's writes are made as: the lab client with the token's scopes, or the admin who sent it. */
async function senderOf(db: Knex, m: StoredMessage): Promise<Principal> {
  if (m.clientId) {
    const client = await db('api_clients').where({ id: m.clientId }).first('kind');
    const scope = m.scope ?? '';
    return { kind: 'client', clientId: m.clientId, clientKind: (client?.kind ?? 'lab') as ClientKind, scope, scopes: parseScopes(scope).scopes, tokenId: `message:${m.id}` };
  }
  if (m.userId) return { kind: 'user', userId: m.userId, role: 'admin', sessionId: `message:${m.id}`, grants: [] };
  throw new PermanentJobError(`Lab message ${m.id} has no sender (its client or user was deleted)`);
}

/** Whether an error means the message itself is at fault (retrying cannot help). */
function permanentOutcome(err: unknown): OperationOutcome | undefined {
  if (err instanceof PermanentJobError) return err.outcome ?? operationOutcome([{ severity: 'error', code: 'processing', diagnostics: err.message }]);
  if (err instanceof Hl7Error) return operationOutcome([{ severity: 'error', code: 'structure', diagnostics: err.message }]);
  // 4xx: the content or the sender's rights; 409 and 429 are races and limits, 5xx the server's
  if (err instanceof FhirError && err.status >= 400 && err.status < 500 && err.status !== 409 && err.status !== 429) return err.outcome;
  if (err instanceof SyntaxError) return operationOutcome([{ severity: 'error', code: 'structure', diagnostics: `The stored message is not valid JSON: ${(err as Error).message}` }]);
  return undefined;
}

/** Whether an error is the infrastructure's (database, network, a busy server), which waiting mends. */
function infrastructural(err: unknown): boolean {
  if (err instanceof FhirError) return err.status === 503 || err.status === 409 || err.status === 429;
  // mysql2 marks the errors of a connection that died fatal; some have no code ("Can't add new
  // command when connection is in closed state", met when the server went away mid-transaction)
  if ((err as { fatal?: unknown } | null)?.fatal === true) return true;
  const code = dbErrorCode(err) ?? (err as { code?: string } | null)?.code ?? '';
  return /^(ER_|SQLITE_|ECONN|PROTOCOL_|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND)/.test(code) || (err as Error | null)?.name === 'KnexTimeoutError';
}

export async function labIngest(payload: { messageId: string }, deps: JobDeps): Promise<JobResult> {
  const { messageId } = payload;
  const job = { queue: 'lab-ingest', id: messageId };
  const before = await findMessage(deps.db, messageId);
  if (!before) throw new PermanentJobError(`No lab message ${messageId}`);
  if (before.status === 'done' || before.status === 'failed') return { messageId, skipped: before.status };
  // another run (a stalled job run again) may have finished it since: then it is left as it is
  if (!(await setMessageStatus(deps.db, messageId, 'processing', { attempt: true }))) return { messageId, skipped: 'finished meanwhile' };
  let outcome: { refused: OperationOutcome } | { done: JobResult };
  try {
    outcome = await inTransaction(deps.db, async (trx): Promise<{ refused: OperationOutcome } | { done: JobResult }> => {
      faultFor(before.controlId, 'throw');
      const m = await lockMessage(trx, messageId);
      if (!m) throw new PermanentJobError(`No lab message ${messageId}`);
      if (m.status === 'done' || m.status === 'failed') return { done: { messageId, skipped: m.status } };
      const principal = await senderOf(trx, m);
      const auditRows: SecurityLogEntry[] = [];
      const ctx = workerContext(deps, { principal, job, db: trx, auditRows });
      const server = workerContext(deps, { job, db: trx, auditRows });
      let result;
      try {
        // a savepoint: a refused message leaves none of its writes, and its failure is recorded in this transaction
        result = await trx.transaction(async (sp) => {
          const plan = m.format === 'hl7v2' ? await hl7Plan({ ...server, db: sp }, sp, m.body) : await fhirPlan({ ...server, db: sp }, sp, m.body);
          const written = await writePlan({ ...ctx, db: sp }, { ...server, db: sp }, sp, messageId, plan);
          faultFor(m.controlId, 'exit');
          return written;
        });
      } catch (err) {
        const refused = permanentOutcome(err);
        if (!refused) throw err;
        // committed with the transaction: the failure is recorded, none of the writes
        await setMessageStatus(trx, messageId, 'failed', { outcome: refused });
        return { refused };
      }
      await setMessageStatus(trx, messageId, 'done', { result });
      await deps.auditLog.record(auditRows, trx);
      return { done: { messageId, ...Object.fromEntries(Object.entries(result).map(([k, v]) => [k, v.length])) } };
    });
  } catch (err) {
    // an unexpected error (not the database's) that every attempt met is the message's: it fails alone
    if (!infrastructural(err) && before.attempts + 1 >= deps.config.HMS_JOB_ATTEMPTS) {
      const outcome = operationOutcome([{ severity: 'error', code: 'exception', diagnostics: `Processing failed ${before.attempts + 1} times: ${(err as Error)?.message ?? String(err)}`.slice(0, 1000) }]);
      await setMessageStatus(deps.db, messageId, 'failed', { outcome });
      throw new PermanentJobError(`Lab message ${messageId} failed`, outcome);
    }
    // a transient failure: back to queued for the retry (and the sweeper's, once retries run out)
    await setMessageStatus(deps.db, messageId, 'queued').catch(() => undefined);
    throw err;
  }
  if ('refused' in outcome) {
    const diagnostics = outcome.refused.issue.map((i) => i.diagnostics).filter(Boolean).join('; ');
    throw new PermanentJobError(`Lab message ${messageId} failed: ${diagnostics.slice(0, 500)}`, outcome.refused);
  }
  return outcome.done;
}

/** The sweeper gave up on a message whose processing never finished (it ends its worker): failed, with why. */
export async function abandonLabMessage(payload: { messageId: string }, reason: string, deps: JobDeps): Promise<void> {
  const m = await findMessage(deps.db, payload.messageId);
  if (!m || m.status === 'done' || m.status === 'failed') return;
  await setMessageStatus(deps.db, payload.messageId, 'failed', { outcome: operationOutcome([{ severity: 'error', code: 'exception', diagnostics: `Processing was abandoned: ${reason}` }]) });
}
