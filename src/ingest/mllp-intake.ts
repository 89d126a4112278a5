/**
 * Lab messages over MLLP (the way instruments and interface engines send): each message is
 * accepted exactly as over HTTP (src/ingest/intake.ts), attributed to the lab client
 * HMS_MLLP_CLIENT, and answered with an HL7 ACK: AA once it is stored, AR when it is refused
 * (unparseable, not an ORU^R01, a facility not accepted), AE when it could not be stored now
 * (the database down: send it again) or when the same message, sent before, failed.
 */
import type { Knex } from 'knex';
import type { ClientPrincipal, ClientKind } from '../auth/principal.js';
import { parseScopes } from '../auth/scopes.js';
import type { AuditLog } from '../db/audit-log.js';
import type { JobLogger, JobQueues } from '../workers/jobs.js';
import { ackForError, ackMessage, type AckCode } from './hl7-ack.js';
import { peekHeader } from './hl7.js';
import { acceptLabMessage, acceptedFacilities, IntakeRefusal } from './intake.js';

export interface MllpIntakeDeps {
  db: Knex;
  auditLog: AuditLog;
  queues?: JobQueues;
  log: JobLogger;
  clientId: string;
  facilities?: string;
}

/** The registered lab client MLLP messages are attributed to (active, kind lab), with its registered scopes. */
export async function mllpClient(db: Knex, clientId: string): Promise<ClientPrincipal> {
  const row = await db('api_clients').where({ id: clientId }).first('id', 'kind', 'scope', 'status');
  if (!row) throw new Error(`HMS_MLLP_CLIENT ${clientId} is not a registered client (POST /admin/clients)`);
  if (row.status !== 'active') throw new Error(`HMS_MLLP_CLIENT ${clientId} is revoked`);
  if (row.kind !== 'lab') throw new Error(`HMS_MLLP_CLIENT ${clientId} is a ${row.kind} client, not a lab`);
  const scope = String(row.scope);
  return { kind: 'client', clientId: String(row.id), clientKind: row.kind as ClientKind, scope, scopes: parseScopes(scope).scopes, tokenId: 'mllp' };
}

/** The handler of the MLLP listener: one message in, its ACK out. */
export function mllpHandler(deps: MllpIntakeDeps): (text: string, peer: { address: string; port: number }) => Promise<string> {
  const facilities = acceptedFacilities(deps.facilities);
  return async (text, peer) => {
    const header = peekHeader(text);
    const audit = (success: boolean, action: string, resourceId?: string, reason?: string) => deps.auditLog.record({
      clientId: deps.clientId, role: 'system', action, resourceType: 'LabMessage', resourceId: resourceId ?? null, ipAddress: peer.address,
      success, failureReason: reason ?? null, additionalData: { channel: 'mllp' },
    }).catch((err: unknown) => deps.log.error({ err }, 'security log write failed (MLLP)'));
    const ack = (code: AckCode, textOut?: string, errorCode?: string) => ackMessage(header, code, { text: textOut, errorCode });
    let principal: ClientPrincipal;
    try {
      principal = await mllpClient(deps.db, deps.clientId);
    } catch (err) {
      deps.log.error({ err }, 'MLLP message refused: the configured client cannot send');
      return ack('AE', 'The receiving system is not configured to accept messages now', '207');
    }
    try {
      const intake = await acceptLabMessage({ db: deps.db, queues: deps.queues, log: deps.log, facilities }, { format: 'hl7v2', body: text, contentType: 'x-application/hl7-v2+er7', principal, channel: 'mllp' });
      const m = intake.message;
      await audit(true, intake.duplicate ? 'ingest-resend' : 'ingest-accept', m.id);
      deps.log.info({ messageId: m.id, duplicate: intake.duplicate, bytes: m.bodyBytes, peer: peer.address }, 'MLLP message stored');
      if (intake.duplicate && m.status === 'failed') {
        const why = m.outcome?.issue.map((i) => i.diagnostics).filter(Boolean).join('; ') ?? 'failed';
        return ack('AE', `This message was received before (${m.id}) and failed: ${why}`.slice(0, 500), '207');
      }
      return ack('AA', intake.duplicate ? `Received before as ${m.id} (${m.status})` : `Stored as ${m.id}`);
    } catch (err) {
      if (err instanceof IntakeRefusal) {
        await audit(false, 'ingest-accept', undefined, err.message.slice(0, 500));
        if (err.hl7) {
          const { code, errorCode } = ackForError(err.hl7);
          return ackMessage(header, code, { text: err.message.slice(0, 500), errorCode, errorLocation: err.hl7.location });
        }
        return ack('AR', err.message.slice(0, 500), '103');
      }
      deps.log.error({ err }, 'MLLP message not stored');
      return ack('AE', 'The message could not be stored now: send it again', '207');
    }
  };
}
