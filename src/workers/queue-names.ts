/**
 * The names of HMS's queues and the schemas of their payloads (ids and options only: no patient
 * data ever reaches Redis), apart from their processors so that the outbox and the processors
 * themselves can check a payload without importing every processor (src/workers/queues.ts).
 */
import { Ajv, type ValidateFunction } from 'ajv';

export const QUEUE_NAMES = ['lab-ingest', 'overdue-billing', 'session-expiry', 'audit-archive', 'outbox-sweep', 'bulk-export', 'export-expiry'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

const id = { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' };
const date = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' };
const instant = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T' };
const object = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', properties, required, additionalProperties: false });

/** JSON Schema of each queue's payload. */
export const PAYLOADS: Record<QueueName, Record<string, unknown>> = {
  'lab-ingest': object({ messageId: id }, ['messageId']),
  'overdue-billing': object({ asOf: date }),
  'session-expiry': object({}),
  'audit-archive': object({ before: instant }),
  'outbox-sweep': object({}),
  'bulk-export': object({ exportId: id }, ['exportId']),
  'export-expiry': object({}),
};

export const isQueueName = (name: string): name is QueueName => (QUEUE_NAMES as readonly string[]).includes(name);

const ajv = new Ajv({ allErrors: false, strict: false });
const validators = new Map<QueueName, ValidateFunction>();

/** Checks a payload against its queue's schema (ids only); throws with the reason. */
export function checkPayload(queue: QueueName, payload: unknown): void {
  let v = validators.get(queue);
  if (!v) validators.set(queue, (v = ajv.compile(PAYLOADS[queue])));
  if (!v(payload)) throw new Error(`Invalid ${queue} payload: ${ajv.errorsText(v.errors)}`);
}

/** The stable id of a queue's job scheduler (BullMQ upsertJobScheduler). */
export const schedulerId = (queue: QueueName): string => `${queue}-schedule`;
