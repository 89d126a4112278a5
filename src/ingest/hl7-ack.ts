/**
 * HL7 v2 original-mode acknowledgements (ACK) of received messages: MSH addressed back to the
 * sender, MSA with the outcome, and for AE / AR an ERR with the HL7 table 0357 error code. Built
 * with node-hl7-client, which escapes every value (a `|` or `^` in a reason stays text). Pure.
 */
import { randomBytes } from 'node:crypto';
import { Message, type HL7Node } from 'node-hl7-client';
import type { HierarchicDesignator, Hl7Header } from './lab-message.js';
import type { Hl7Error, Hl7ErrorCode } from './hl7.js';

/** MSA-1: AA accepted, AE error (send it again, or fix the content), AR rejected (not for us). */
export type AckCode = 'AA' | 'AE' | 'AR';

/** HL7 table 0357 (message error condition codes) used here. */
export const HL7_ERROR_CODES = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  207: 'Application internal error',
} as const satisfies Record<number, string>;

export interface AckOptions {
  /** MSA-3 (and ERR-7 / ERR-8): why; at most 80 characters go into MSA-3, 500 into ERR */
  text?: string;
  /** HL7 table 0357 code for the ERR segment (default 207 for AE and AR) */
  errorCode?: number | string;
  /** Where the error is: `PID-3`, `OBX-14`, `PID` (ERR-2, or ERR-1 before v2.5) */
  errorLocation?: string;
  /** Which occurrence of that segment (default 1) */
  errorSequence?: number;
  /** MSH-7 (default: now) */
  now?: Date;
  /** MSH-10 of the ACK (default: 20 random hex characters) */
  controlId?: string;
}

/** The ACK code and error code that answer a parse failure: AR for what HMS does not take, AE for content errors. */
export function ackForError(err: Hl7Error): { code: AckCode; errorCode: number } {
  const table: Record<Hl7ErrorCode, { code: AckCode; errorCode: number }> = {
    unparseable: { code: 'AR', errorCode: 100 },
    'unsupported-type': { code: 'AR', errorCode: 200 },
    'unsupported-version': { code: 'AR', errorCode: 203 },
    'missing-segment': { code: 'AE', errorCode: 100 },
    'missing-field': { code: 'AE', errorCode: 101 },
    'invalid-field': { code: 'AE', errorCode: 102 },
  };
  return table[err.code];
}

/** Text as one line: the ACK's own segment breaks never come from a value. Escaping is the library's. */
function line(s: string, max: number): string {
  const flat = s.replace(/[\r\n]+/g, ' ').replace(/[\u0000-\u001F\u007F]|\p{Cs}/gu, ' ').trim();
  return [...flat].slice(0, max).join('');
}

const YYYYMMDDHHMMSS = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);

const VERSION = /^\d\.\d{1,2}(\.\d{1,2})?$/;

/** Sets field `path` (MSH.3, MSA.1 ...) from the components of an HD. */
function setHd(m: Message, path: string, hd: HierarchicDesignator | undefined, fallback?: string): void {
  const parts = [hd?.namespaceId, hd?.universalId, hd?.universalIdType].map((p) => (p ? line(p, 227) : ''));
  if (!parts.some(Boolean) && fallback) parts[0] = fallback;
  parts.forEach((p, i) => { if (p) m.set(`${path}.${i + 1}`, p); });
}

const setIf = (node: Message | HL7Node, path: string, value: string | undefined): void => {
  if (value) node.set(path, value);
};

/**
 * An ACK of the message whose header is given (from `parseLabMessage(...).header`, or
 * `peekHeader(text)` when the message did not parse), with CR segment endings:
 * - MSH: the original's receiving application/facility as sender and its sender as receiver
 *   (HMS when the original named no receiving application), MSH-9 `ACK^<trigger>^ACK` (the
 *   original's trigger, R01 by default; `ACK^<trigger>` for v2.3, whose MSH-9 has two components),
 *   a new control id, the original's processing id (P by default) and version (2.5.1 when it
 *   sent none that reads as one);
 * - MSA: the code, the original's control id, the text;
 * - ERR for AE and AR: v2.5 and later ERR-2 location, ERR-3 code^text^HL70357, ERR-4 severity E,
 *   ERR-8 the text; before v2.5 ERR-1 `<segment>^<sequence>^<field>^<code>&<text>&HL70357`.
 */
export function ackMessage(header: Hl7Header, code: AckCode, opts: AckOptions = {}): string {
  const m = new Message({ text: 'MSH|^~\\&' });
  setHd(m, 'MSH.3', header.receivingApplication, 'HMS');
  setHd(m, 'MSH.4', header.receivingFacility);
  setHd(m, 'MSH.5', header.sendingApplication);
  setHd(m, 'MSH.6', header.sendingFacility);
  m.set('MSH.7', `${YYYYMMDDHHMMSS(opts.now ?? new Date())}+0000`);
  const version = header.version && VERSION.test(header.version) ? header.version : '2.5.1';
  const trigger = header.messageType?.trigger && /^[A-Z0-9]{3}$/.test(header.messageType.trigger) ? header.messageType.trigger : 'R01';
  m.set('MSH.9.1', 'ACK');
  m.set('MSH.9.2', trigger);
  if (version !== '2.3') m.set('MSH.9.3', 'ACK');
  m.set('MSH.10', line(opts.controlId ?? randomBytes(10).toString('hex'), 199));
  m.set('MSH.11.1', header.processingId && /^[A-Z]$/.test(header.processingId) ? header.processingId : 'P');
  m.set('MSH.12.1', version);

  const text = opts.text ? line(opts.text, 500) : '';
  const msa = m.addSegment('MSA');
  msa.set('1', code);
  setIf(msa, '2', header.controlId ? line(header.controlId, 199) : undefined);
  setIf(msa, '3', text ? [...text].slice(0, 80).join('') : undefined);

  if (code !== 'AA') {
    const errorCode = String(opts.errorCode ?? 207);
    const errorText = (HL7_ERROR_CODES as Record<string, string>)[errorCode] ?? 'Error';
    const [segment, field] = (opts.errorLocation ?? '').split('-') as [string, string | undefined];
    const located = /^[A-Z][A-Z0-9]{2}$/.test(segment);
    const sequence = String(opts.errorSequence ?? 1);
    const err = m.addSegment('ERR');
    if (/^2\.[34](\.|$)/.test(version)) {
      if (located) { err.set('1.1', segment); err.set('1.2', sequence); setIf(err, '1.3', field && /^\d+$/.test(field) ? field : undefined); }
      err.set('1.4.1', errorCode);
      err.set('1.4.2', errorText);
      err.set('1.4.3', 'HL70357');
    } else {
      if (located) { err.set('2.1', segment); err.set('2.2', sequence); setIf(err, '2.3', field && /^\d+$/.test(field) ? field : undefined); }
      err.set('3.1', errorCode);
      err.set('3.2', errorText);
      err.set('3.3', 'HL70357');
      err.set('4', 'E');
      setIf(err, '8', text || undefined);
    }
  }
  // the library joins the segments it was given with the newline it saw (none: \n); values hold no line breaks
  return `${m.toString().split('\n').join('\r').replace(/\r+$/, '')}\r`;
}
