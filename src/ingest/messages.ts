/**
 * ingest_messages (migration 0124): lab messages as received, with their processing status. A
 * message and its outbox row are inserted in one transaction before HMS answers, so an
 * accepted message is never lost; (source, control_id) is unique, so a resend is stored once.
 */
import type { Knex } from 'knex';
import type { OperationOutcome } from '../fhir/outcome.js';
import { nowSeconds } from '../db/resource-repository.js';
import { sqlToInstant } from '../mappers/datatypes.js';

export const MESSAGES_TABLE = 'ingest_messages';

export type MessageStatus = 'queued' | 'processing' | 'done' | 'failed';
export type MessageFormat = 'hl7v2' | 'fhir';

/** What a message wrote: ids by resource type. */
export type MessageResult = Record<string, string[]>;

export interface StoredMessage {
  id: string;
  source: string;
  controlId: string;
  clientId?: string;
  userId?: string;
  scope?: string;
  format: MessageFormat;
  contentType: string;
  sendingApplication?: string;
  sendingFacility?: string;
  channel: 'http' | 'mllp';
  status: MessageStatus;
  attempts: number;
  bodyBytes: number;
  result?: MessageResult;
  outcome?: OperationOutcome;
  receivedAt: string;
  updatedAt: string;
  finishedAt?: string;
}

/** What intake stores: the message as received, before any processing. */
export type NewMessage = Pick<StoredMessage, 'id' | 'source' | 'controlId' | 'clientId' | 'userId' | 'scope' | 'format' | 'contentType' | 'sendingApplication' | 'sendingFacility' | 'channel'> & {
  body: string;
};

const json = <T>(v: unknown): T | undefined => (v === null || v === undefined ? undefined : (typeof v === 'string' ? JSON.parse(v) : v) as T);
const opt = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

function fromRow(r: Record<string, unknown>): StoredMessage {
  return {
    id: String(r.id), source: String(r.source), controlId: String(r.control_id), clientId: opt(r.client_id), userId: opt(r.user_id), scope: opt(r.scope),
    format: r.format as MessageFormat, contentType: String(r.content_type), sendingApplication: opt(r.sending_application),
    sendingFacility: opt(r.sending_facility), channel: r.channel as 'http' | 'mllp', status: r.status as MessageStatus,
    attempts: Number(r.attempts), bodyBytes: Number(r.body_bytes), result: json(r.result), outcome: json(r.outcome),
    receivedAt: sqlToInstant(r.received_at)!, updatedAt: sqlToInstant(r.updated_at)!, finishedAt: sqlToInstant(r.finished_at),
  };
}

const SUMMARY_COLUMNS = [
  'id', 'source', 'control_id', 'client_id', 'user_id', 'scope', 'format', 'content_type', 'sending_application', 'sending_facility', 'channel',
  'status', 'attempts', 'body_bytes', 'result', 'outcome', 'received_at', 'updated_at', 'finished_at',
];

export async function insertMessage(trx: Knex, m: NewMessage): Promise<void> {
  const now = nowSeconds().sql;
  await trx(MESSAGES_TABLE).insert({
    id: m.id, source: m.source, control_id: m.controlId, client_id: m.clientId ?? null, user_id: m.userId ?? null, scope: m.scope ?? null,
    format: m.format, content_type: m.contentType, sending_application: m.sendingApplication ?? null, sending_facility: m.sendingFacility ?? null,
    channel: m.channel, status: 'queued', attempts: 0, body: m.body, body_bytes: Buffer.byteLength(m.body), received_at: now, updated_at: now,
  });
}

/** A message without its body. */
export async function findMessage(db: Knex, id: string): Promise<StoredMessage | undefined> {
  const r = await db(MESSAGES_TABLE).where({ id }).first(SUMMARY_COLUMNS);
  return r ? fromRow(r) : undefined;
}

export async function findBySourceControl(db: Knex, source: string, controlId: string): Promise<StoredMessage | undefined> {
  const r = await db(MESSAGES_TABLE).where({ source, control_id: controlId }).first(SUMMARY_COLUMNS);
  return r ? fromRow(r) : undefined;
}

/** The message with its body, its row locked until the transaction ends (one worker at a time). */
export async function lockMessage(trx: Knex.Transaction, id: string): Promise<(StoredMessage & { body: string }) | undefined> {
  const r = await trx(MESSAGES_TABLE).where({ id }).forUpdate().first([...SUMMARY_COLUMNS, 'body']);
  return r ? { ...fromRow(r), body: String(r.body) } : undefined;
}

/**
 * Moves an unfinished message on (returns whether it did): done and failed are final, so a run
 * that read the message before another run finished it cannot set it back to processing or
 * queued (and then process it a second time), nor fail a message another run completed.
 */
export async function setMessageStatus(db: Knex, id: string, status: MessageStatus, fields: { result?: MessageResult; outcome?: OperationOutcome; attempt?: boolean } = {}): Promise<boolean> {
  const now = nowSeconds().sql;
  const changed = await db(MESSAGES_TABLE).where({ id }).whereIn('status', ['queued', 'processing']).update({
    status,
    updated_at: now,
    ...(fields.attempt ? { attempts: db.raw('attempts + 1') } : {}),
    ...(fields.result ? { result: JSON.stringify(fields.result) } : {}),
    ...(fields.outcome ? { outcome: JSON.stringify(fields.outcome) } : {}),
    ...(status === 'done' || status === 'failed' ? { finished_at: now } : {}),
  });
  return Number(changed) > 0;
}
