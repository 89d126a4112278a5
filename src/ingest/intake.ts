/**
 * Accepting a lab message (HTTP POST /ingest/lab-results and the MLLP listener alike): cheap
 * checks at the door (the message parses, is an ORU^R01 or a Bundle of Observation and
 * DiagnosticReport, comes from an accepted facility), then the raw message and its outbox row
 * in one transaction, then a best-effort enqueue. Once this resolves the message is stored:
 * the answer (202, an AA) may be sent, and the sweeper processes it even if Redis lost the job.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { Principal } from '../auth/principal.js';
import { FhirError, badRequest, unprocessable } from '../fhir/outcome.js';
import { canonicalJson } from '../db/audit-hash.js';
import { inTransaction, dbErrorCode } from '../db/transactions.js';
import { recordJob } from '../workers/outbox.js';
import type { JobLogger, JobQueues } from '../workers/jobs.js';
import { MAX_MESSAGE_BYTES, parseLabMessage, peekHeader, Hl7Error } from './hl7.js';
import { findBySourceControl, findMessage, insertMessage, type MessageFormat, type StoredMessage } from './messages.js';

export interface IntakeDeps {
  db: Knex;
  queues?: JobQueues;
  log: JobLogger;
  /** HMS_LAB_FACILITIES, parsed: the sending facilities accepted (undefined: any). */
  facilities?: Set<string>;
}

export interface IntakeInput {
  format: MessageFormat;
  /** The message: HL7 v2 text, or the parsed FHIR JSON. */
  body: string | unknown;
  contentType: string;
  principal: Principal;
  channel: 'http' | 'mllp';
}

export interface Intake {
  message: StoredMessage;
  /** The same message (source + control id) was stored before: this is the first one. */
  duplicate: boolean;
}

/** The facilities HMS_LAB_FACILITIES accepts (undefined: any). */
export function acceptedFacilities(setting: string | undefined): Set<string> | undefined {
  const list = (setting ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return list.length ? new Set(list) : undefined;
}

/** Who sent it, as the first half of the resend key. */
export function sourceOf(p: Principal): string {
  return p.kind === 'client' ? `client:${p.clientId}` : `user:${p.userId}`;
}

/** A key of at most 191 characters (a long one is shortened with its hash). */
function key(text: string): string {
  return text.length <= 191 ? text : `${text.slice(0, 126)}#${createHash('sha256').update(text).digest('hex')}`;
}

const LAB_TYPES = new Set(['Observation', 'DiagnosticReport']);
const BUNDLE_TYPES = new Set(['batch', 'transaction', 'collection']);

interface Checked { controlId: string; sendingApplication?: string; sendingFacility?: string; text: string }

function checkFhir(body: unknown): Checked {
  const r = body as { resourceType?: unknown; type?: unknown; entry?: unknown; identifier?: { system?: string; value?: string } } | null;
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw badRequest('The body must be a FHIR Bundle or Observation (JSON object)');
  if (r.resourceType === 'Bundle') {
    if (!BUNDLE_TYPES.has(String(r.type))) throw unprocessable(`Bundle.type must be batch, transaction or collection (got ${JSON.stringify(r.type)})`, 'Bundle.type', 'value');
    if (!Array.isArray(r.entry) || r.entry.length === 0) throw unprocessable('The Bundle has no entries', 'Bundle.entry', 'required');
    r.entry.forEach((e: { resource?: { resourceType?: unknown } }, i: number) => {
      const type = e?.resource?.resourceType;
      if (!LAB_TYPES.has(String(type))) throw unprocessable(`Bundle.entry[${i}] is ${type === undefined ? 'not a resource' : `a ${String(type)}`}: lab results are Observation and DiagnosticReport`, `Bundle.entry[${i}].resource`, 'not-supported');
    });
  } else if (r.resourceType !== 'Observation') {
    throw unprocessable(`Lab results are a Bundle or an Observation (got ${JSON.stringify(r.resourceType)})`, 'resourceType', 'not-supported');
  }
  const text = JSON.stringify(body);
  const ident = r.resourceType === 'Bundle' && r.identifier?.value ? `bundle:${r.identifier.system ?? ''}|${r.identifier.value}` : undefined;
  return { controlId: key(ident ?? `sha256:${createHash('sha256').update(canonicalJson(body)).digest('hex')}`), text };
}

/**
 * Messages up to this size are parsed whole at the door (a few ms); a larger one only has its
 * header checked here and is parsed by the worker, where a slow parse (the parser takes seconds
 * over a crafted 1 MB message) holds up one job, not the API's event loop.
 */
export const PARSE_AT_DOOR_BYTES = 64 * 1024;

/** What the door checks of a message too large to parse there: its MSH, as the parser would. */
function headerOnly(text: string): { controlId: string; sendingApplication?: string; sendingFacility?: string } {
  if (Buffer.byteLength(text) > MAX_MESSAGE_BYTES) throw new Hl7Error('unparseable', `The message has more than ${MAX_MESSAGE_BYTES} bytes`);
  const header = peekHeader(text);
  const type = header.messageType;
  if (!header.separators) throw new Hl7Error('unparseable', 'The message does not start with an MSH segment');
  if (type?.code !== 'ORU' || type.trigger !== 'R01') throw new Hl7Error('unsupported-type', `Message type ${`${type?.code ?? ''}^${type?.trigger ?? ''}`.slice(0, 20)} is not accepted: only ORU^R01 (unsolicited observation results)`);
  if (!header.version || !/^2\.[3-6](\.\d+)?$/.test(header.version)) throw new Hl7Error('unsupported-version', `HL7 version ${(header.version ?? '').slice(0, 10)} is not accepted: 2.3 to 2.6 are`);
  if (!header.controlId) throw new Hl7Error('missing-field', 'MSH-10 (message control id) is empty');
  const name = (hd?: { namespaceId?: string; universalId?: string }) => hd?.namespaceId || hd?.universalId || undefined;
  return { controlId: header.controlId, sendingApplication: name(header.sendingApplication), sendingFacility: name(header.sendingFacility) };
}

function checkHl7(text: string, facilities?: Set<string>): Checked {
  let msg;
  try {
    msg = Buffer.byteLength(text) <= PARSE_AT_DOOR_BYTES ? parseLabMessage(text) : headerOnly(text);
  } catch (err) {
    if (err instanceof Hl7Error) throw new IntakeRefusal((err as Hl7Error).message, 'unparseable', err as Hl7Error);
    throw err;
  }
  if (facilities && !facilities.has(msg.sendingFacility ?? '')) {
    throw new IntakeRefusal(`Sending facility ${JSON.stringify(msg.sendingFacility ?? '')} (MSH-4) is not accepted here (HMS_LAB_FACILITIES)`, 'facility');
  }
  const app = msg.sendingApplication ?? '';
  const fac = msg.sendingFacility ?? '';
  return { controlId: key(`hl7:${app}|${fac}|${msg.controlId}`), sendingApplication: msg.sendingApplication, sendingFacility: msg.sendingFacility, text };
}

/** A message refused at the door: 400/422 over HTTP, AR over MLLP. */
export class IntakeRefusal extends FhirError {
  constructor(message: string, readonly reason: 'unparseable' | 'facility', readonly hl7?: Hl7Error) {
    super(reason === 'facility' ? 422 : 400, message, reason === 'facility' ? 'business-rule' : 'structure');
  }
}

/** Checks and stores a message (or finds the earlier copy of a resend), then enqueues it. */
export async function acceptLabMessage(deps: IntakeDeps, input: IntakeInput): Promise<Intake> {
  const checked = input.format === 'fhir' ? checkFhir(input.body) : checkHl7(String(input.body), deps.facilities);
  const p = input.principal;
  const source = sourceOf(p);
  const id = uuidv7();
  try {
    await inTransaction(deps.db, async (trx) => {
      await insertMessage(trx, {
        id, source, controlId: checked.controlId, clientId: p.kind === 'client' ? p.clientId : undefined, userId: p.kind === 'user' ? p.userId : undefined,
        scope: p.kind === 'client' ? p.scope : undefined, format: input.format, contentType: input.contentType,
        sendingApplication: checked.sendingApplication?.slice(0, 227), sendingFacility: checked.sendingFacility?.slice(0, 227), channel: input.channel, body: checked.text,
      });
      // the outbox row shares the message's id: the job id is the message id
      await recordJob(trx, 'lab-ingest', { messageId: id }, id);
    });
  } catch (err) {
    const code = dbErrorCode(err) ?? '';
    if (/DUP_ENTRY|CONSTRAINT_UNIQUE/.test(code)) {
      const first = await findBySourceControl(deps.db, source, checked.controlId);
      if (first) return { message: first, duplicate: true };
    }
    throw err;
  }
  if (deps.queues) {
    await deps.queues.enqueue('lab-ingest', id, { messageId: id }).catch((err: unknown) => {
      // stored: the sweeper enqueues it once the transport is back
      deps.log.warn({ messageId: id, err }, 'lab message stored but not enqueued');
    });
  }
  return { message: (await findMessage(deps.db, id))!, duplicate: false };
}
