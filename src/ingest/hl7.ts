/**
 * HL7 v2 ORU^R01 (v2.3 to v2.6) -> LabMessage (lab-message.ts). The message is split into
 * segments, fields, repetitions, components and subcomponents, and its escape sequences decoded,
 * by the node-hl7-client library (docs/hl7v2.md says why that one); this module only prepares the
 * text (size limits, UTF-8 BOM, CR / LF / CRLF segment endings), checks what an ORU^R01 must
 * have, and reads the fields HMS uses. Pure, no I/O.
 */
import { Message, type HL7Node } from 'node-hl7-client';
import { forbiddenCharacter } from '../characters.js';
import type {
  Coding, Concept, HierarchicDesignator, Hl7Header, Hl7Person, Hl7Separators, LabMessage, LabPatient, LabReferenceRange, LabReport,
  LabResult, LabUnits, LabValue, PatientIdentifier,
} from './lab-message.js';

/** Largest message accepted (bytes of UTF-8). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Most segments accepted in one message. */
export const MAX_SEGMENTS = 10_000;

export type Hl7ErrorCode =
  | 'unparseable'
  | 'unsupported-type'
  | 'unsupported-version'
  | 'missing-segment'
  | 'missing-field'
  | 'invalid-field';

/**
 * Why a message was refused. The message never holds field values (they may be patient data):
 * only what was expected, where, and sizes.
 */
export class Hl7Error extends Error {
  readonly code: Hl7ErrorCode;
  /** The segment concerned, e.g. PID */
  readonly segment?: string;
  /** Which occurrence of that segment (1-based) */
  readonly sequence?: number;
  /** The field number, e.g. 3 for PID-3 */
  readonly field?: number;

  constructor(code: Hl7ErrorCode, message: string, where?: { segment?: string; sequence?: number; field?: number }) {
    super(message);
    this.name = 'Hl7Error';
    this.code = code;
    if (where?.segment) this.segment = where.segment;
    if (where?.sequence !== undefined) this.sequence = where.sequence;
    if (where?.field !== undefined) this.field = where.field;
  }

  /** The location as HL7 writes it: `PID-3`, `OBX-14`, `PID` (undefined when none). */
  get location(): string | undefined {
    if (!this.segment) return undefined;
    return this.field === undefined ? this.segment : `${this.segment}-${this.field}`;
  }
}

export interface ParseOptions {
  /**
   * The UTC offset (`+0100`, `-05:00`, `Z`) of times the sender gives without one. HL7 means the
   * sender's local time then; without this option such a time keeps its date only (FHIR allows a
   * time of day only with a zone).
   */
  defaultOffset?: string;
}

/** The versions accepted: 2.3, 2.3.1, 2.4, 2.5, 2.5.1, 2.6 (and any 2.3.x to 2.6.x). */
const SUPPORTED_VERSION = /^2\.[3-6](\.\d{1,2})?$/;
const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;
/** Segments that would make the text a batch or file of messages. */
const BATCH_SEGMENTS = new Set(['MSH', 'BHS', 'BTS', 'FHS', 'FTS']);

// ---------------------------------------------------------------------------------------------
// Text preparation

/** The message as one string: UTF-8 decoded, size-checked, without BOM or MLLP framing bytes. */
function messageText(input: string | Buffer): string {
  let text: string;
  if (Buffer.isBuffer(input)) {
    if (input.length > MAX_MESSAGE_BYTES) throw new Hl7Error('unparseable', `The message has ${input.length} bytes; at most ${MAX_MESSAGE_BYTES} are accepted`);
    text = input.toString('utf8');
  } else if (typeof input === 'string') {
    // a quick bound before counting bytes
    if (input.length > MAX_MESSAGE_BYTES || Buffer.byteLength(input, 'utf8') > MAX_MESSAGE_BYTES) {
      throw new Hl7Error('unparseable', `The message has more than ${MAX_MESSAGE_BYTES} bytes`);
    }
    text = input;
  } else {
    throw new Hl7Error('unparseable', 'The message must be text');
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // an MLLP frame posted as it is: VT ... FS CR
  if (text.charCodeAt(0) === 0x0b) text = text.slice(1);
  text = text.replace(/\x1c\r?\n?$/, '');
  return text.replace(/^[\s]+/, '');
}

/** The encoding characters at the start of an MSH segment, or undefined when they are not five distinct ones. */
function separatorsOf(msh: string): Hl7Separators | undefined {
  if (!msh.startsWith('MSH') || msh.length < 8) return undefined;
  const chars = msh.slice(3, 8).split('');
  if (new Set(chars).size !== 5 || chars.some((c) => /[A-Za-z0-9\s]/.test(c))) return undefined;
  if (msh.length > 8 && msh[8] !== chars[0]) return undefined;
  const [field, component, repetition, escape, subcomponent] = chars as [string, string, string, string, string];
  return { field, component, repetition, escape, subcomponent };
}

/** The segments of the message text, checked to be segments; separators from the MSH. */
function segmentLines(text: string): { lines: string[]; separators: Hl7Separators } {
  const lines: string[] = [];
  for (const line of text.split(/\r\n|\n|\r/)) {
    if (line.trim() === '') continue;
    lines.push(line);
    if (lines.length > MAX_SEGMENTS) throw new Hl7Error('unparseable', `The message has more than ${MAX_SEGMENTS} segments`);
  }
  if (lines.length === 0) throw new Hl7Error('unparseable', 'The message is empty');
  const first = lines[0]!;
  if (!first.startsWith('MSH')) throw new Hl7Error('unparseable', 'Not an HL7 v2 message: it does not start with an MSH segment', { segment: 'MSH' });
  const separators = separatorsOf(first);
  if (!separators) throw new Hl7Error('unparseable', 'The MSH segment does not start with five distinct encoding characters (MSH-1, MSH-2), such as |^~\\&', { segment: 'MSH', field: 2 });
  lines.forEach((line, i) => {
    const bad = forbiddenCharacter(line);
    if (bad !== undefined) {
      throw new Hl7Error('unparseable', `Segment ${i + 1} holds the control character U+${bad.toString(16).toUpperCase().padStart(4, '0')} (binary data is not HL7 text)`);
    }
    const name = line.slice(0, 3);
    if (!SEGMENT_NAME.test(name) || (line.length > 3 && line[3] !== separators.field)) {
      throw new Hl7Error('unparseable', `Line ${i + 1} is not a segment (a segment starts with a three-character name and the field separator)`);
    }
    if (i > 0 && BATCH_SEGMENTS.has(name)) {
      throw new Hl7Error('unparseable', `A second ${name} segment (line ${i + 1}): batches and files of messages are not accepted, send one message at a time`, { segment: name });
    }
  });
  return { lines, separators };
}

// ---------------------------------------------------------------------------------------------
// Reading nodes of the library's tree

/** A value as HMS keeps it: `""` (HL7's explicit null) as empty, characters no FHIR string holds replaced, trimmed. */
function clean(s: string | undefined): string {
  if (s === undefined) return '';
  let v = s.trim();
  if (v === '""') return '';
  if (forbiddenCharacter(v) !== undefined) v = v.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]|\p{Cs}/gu, '\uFFFD');
  return v;
}

interface Seg {
  node: HL7Node;
  name: string;
  /** the n-th segment of this name, 1-based */
  sequence: number;
}

function fieldOf(seg: Seg, n: number): HL7Node | undefined {
  const f = seg.node.read([String(n)]) as HL7Node | undefined;
  return f ?? undefined;
}
/** The repetitions of a field (none when empty or absent). */
function reps(seg: Seg, n: number): HL7Node[] {
  const f = fieldOf(seg, n);
  return f ? f.toArray() : [];
}
const firstRep = (seg: Seg, n: number): HL7Node | undefined => reps(seg, n)[0];
/** The decoded subcomponents of component `i` (1-based) of a repetition. */
function subs(rep: HL7Node | undefined, i: number): string[] {
  const c = rep?.toArray()[i - 1];
  return c ? c.toArray().map((s) => s.toString()) : [];
}
/** Component `i` of a repetition (its first subcomponent), decoded and cleaned. */
const comp = (rep: HL7Node | undefined, i: number): string => clean(subs(rep, i)[0]);
/** Subcomponent `j` of component `i`. */
const sub = (rep: HL7Node | undefined, i: number, j: number): string => clean(subs(rep, i)[j - 1]);
/** Component 1 of the first repetition of a field. */
const val = (seg: Seg, n: number): string => comp(firstRep(seg, n), 1);
/**
 * A repetition as text: components and subcomponents joined back with the separators they were
 * split on, so that a `^` or `&` a sender left unescaped in a text stays in it.
 */
function repText(rep: HL7Node, sep: Hl7Separators): string {
  const comps = rep.toArray().map((c) => c.toArray().map((s) => s.toString()).join(sep.subcomponent));
  while (comps.length && comps[comps.length - 1] === '') comps.pop();
  return clean(comps.join(sep.component));
}
/** FT/TX formatting commands: \.br\ and \.sp\ become line breaks, the others are dropped. */
function formatted(text: string, sep: Hl7Separators): string {
  const e = sep.escape.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text
    .replace(new RegExp(`${e}\\.(br|sp\\s*\\d*)${e}`, 'gi'), '\n')
    .replace(new RegExp(`${e}\\.(fi|nf|ce|in\\s*[+-]?\\d*|ti\\s*[+-]?\\d*|sk\\s*[+-]?\\d*)${e}`, 'gi'), '')
    .trim();
}

// ---------------------------------------------------------------------------------------------
// Datatypes

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
/** What a coding system name (HL7 table 0396) must look like to be taken as one. */
const SYSTEM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,29}$/;

/** A coding system name as a URI (see Coding.system). */
export function codingSystemUri(name: string): string | undefined {
  if (!SYSTEM_NAME.test(name)) return undefined;
  const upper = name.toUpperCase();
  if (upper === 'LN' || upper === 'LOINC') return LOINC;
  if (upper === 'SCT' || upper === 'SNM' || upper === 'SNM3' || upper === 'SN' || upper === 'SNOMED') return SNOMED;
  if (upper === 'UCUM') return UCUM;
  const table = /^HL7(\d{4})$/.exec(upper);
  if (table) return `http://terminology.hl7.org/CodeSystem/v2-${table[1]}`;
  return `urn:hl7v2:${encodeURIComponent(name)}`;
}

function coding(code: string, display: string, systemName: string): Coding | undefined {
  if (!code) return undefined;
  const system = systemName ? codingSystemUri(systemName) : undefined;
  const c: Coding = { code };
  if (system) { c.system = system; c.systemName = systemName; }
  if (display) c.display = display;
  return c;
}

/** A CE / CWE / CNE repetition as a Concept (undefined when it holds nothing). */
function concept(rep: HL7Node | undefined): Concept | undefined {
  if (!rep) return undefined;
  const [code, text, system, alt, altText, altSystem] = [1, 2, 3, 4, 5, 6].map((i) => comp(rep, i)) as [string, string, string, string, string, string];
  const original = comp(rep, 9);
  const codings = [coding(code, text, system), coding(alt, altText, altSystem)].filter((c): c is Coding => c !== undefined);
  const conceptText = original || (!code && text ? text : '') || (!code && !alt && altText ? altText : '');
  if (!codings.length && !conceptText) return undefined;
  return conceptText ? { codings, text: conceptText } : { codings };
}

/** An HD given as a whole field (components). */
function hdField(rep: HL7Node | undefined): HierarchicDesignator | undefined {
  const hd: HierarchicDesignator = {};
  const [ns, uid, type] = [comp(rep, 1), comp(rep, 2), comp(rep, 3)];
  if (ns) hd.namespaceId = ns;
  if (uid) hd.universalId = uid;
  if (type) hd.universalIdType = type;
  return Object.keys(hd).length ? hd : undefined;
}
const hdName = (hd: HierarchicDesignator | undefined): string | undefined => hd?.namespaceId ?? hd?.universalId;

/** An XCN repetition (OBR-16, ORC-12) as a person. */
function person(rep: HL7Node | undefined): Hl7Person | undefined {
  if (!rep) return undefined;
  const p: Hl7Person = {};
  const id = comp(rep, 1);
  const family = comp(rep, 2);
  const given = [comp(rep, 3), comp(rep, 4)].filter(Boolean);
  const assigner = sub(rep, 9, 1) || sub(rep, 9, 2);
  if (id) p.id = id;
  if (family) p.family = family;
  if (given.length) p.given = given;
  if (assigner) p.assigner = assigner;
  return Object.keys(p).length ? p : undefined;
}

const TS = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?([+-]\d{4})?$/;
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A UTC offset as FHIR writes it (+HH:MM), or undefined when it is none FHIR allows. */
function fhirOffset(offset: string): string | undefined {
  if (offset === 'Z' || offset === 'z') return 'Z';
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(offset);
  if (!m) return undefined;
  const h = Number(m[2]);
  const min = Number(m[3]);
  if (min > 59 || h > 14 || (h === 14 && min !== 0)) return undefined;
  return `${m[1]}${m[2]}:${m[3]}`;
}

export interface Hl7Time {
  /** FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss[.f]±hh:mm) */
  dateTime: string;
  /** FHIR instant: only when the time was given to the second and its offset is known */
  instant?: string;
}

/**
 * An HL7 TS / DTM (YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ], only its first component) as a
 * FHIR dateTime at the precision sent: a time to the hour or minute is given with zero minutes
 * and seconds (FHIR needs them), the offset as sent (else `defaultOffset`; with neither, only the
 * date is kept). Undefined for an empty value; throws invalid-field for one that is no time.
 */
export function hl7Time(raw: string, where: { segment: string; sequence?: number; field: number }, opts: ParseOptions = {}): Hl7Time | undefined {
  const v = raw.trim();
  if (v === '' || v === '""') return undefined;
  const m = TS.exec(v);
  const bad = (): Hl7Error => new Hl7Error('invalid-field', `${where.segment}-${where.field} is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])`, where);
  if (!m) throw bad();
  const [, y, mo, d, h, mi, s, frac, off] = m;
  if (y === '0000') throw bad();
  if (mo !== undefined && (Number(mo) < 1 || Number(mo) > 12)) throw bad();
  if (d !== undefined) {
    const day = Number(d);
    const leap = (Number(y) % 4 === 0 && Number(y) % 100 !== 0) || Number(y) % 400 === 0;
    if (day < 1 || day > DAYS[Number(mo) - 1]! || (Number(mo) === 2 && day === 29 && !leap)) throw bad();
  }
  if (h !== undefined && Number(h) > 23) throw bad();
  if (mi !== undefined && Number(mi) > 59) throw bad();
  if (s !== undefined && Number(s) > 59) throw bad();
  let offset: string | undefined;
  if (off !== undefined) {
    offset = fhirOffset(off);
    if (!offset) throw bad();
  }
  const date = [y, mo, d].filter((x) => x !== undefined).join('-');
  if (h === undefined) return { dateTime: date };
  offset ??= opts.defaultOffset ? fhirOffset(opts.defaultOffset) : undefined;
  if (!offset) return { dateTime: date };
  const time = `${h}:${mi ?? '00'}:${s ?? '00'}${frac !== undefined ? `.${frac}` : ''}`;
  const dateTime = `${date}T${time}${offset}`;
  return s !== undefined ? { dateTime, instant: dateTime } : { dateTime };
}

/** A date field (PID-7): the date part of a TS, time and offset left out. */
function hl7Date(raw: string, where: { segment: string; sequence?: number; field: number }): string | undefined {
  const t = hl7Time(raw.replace(/^(\d{4,8}).*$/, '$1'), where);
  return t?.dateTime;
}

// ---------------------------------------------------------------------------------------------
// MSH

function headerOf(msh: Seg, separators: Hl7Separators): Hl7Header {
  const h: Hl7Header = { separators };
  const controlId = val(msh, 10);
  if (controlId) h.controlId = controlId;
  const set = (k: 'sendingApplication' | 'sendingFacility' | 'receivingApplication' | 'receivingFacility', n: number): void => {
    const hd = hdField(firstRep(msh, n));
    if (hd) h[k] = hd;
  };
  set('sendingApplication', 3);
  set('sendingFacility', 4);
  set('receivingApplication', 5);
  set('receivingFacility', 6);
  const type = firstRep(msh, 9);
  const [code, trigger, structure] = [comp(type, 1), comp(type, 2), comp(type, 3)];
  if (code || trigger || structure) {
    h.messageType = {};
    if (code) h.messageType.code = code;
    if (trigger) h.messageType.trigger = trigger;
    if (structure) h.messageType.structure = structure;
  }
  const processingId = val(msh, 11);
  if (processingId) h.processingId = processingId;
  const version = val(msh, 12);
  if (version) h.version = version;
  return h;
}

/** The library's tree of prepared segment lines (throws unparseable when it refuses them). */
function libraryMessage(lines: string[]): HL7Node[] {
  try {
    return new Message({ text: lines.join('\r') }).toArray();
  } catch {
    throw new Hl7Error('unparseable', 'The HL7 parser could not read the message');
  }
}

/**
 * Best-effort MSH fields of a text that may not parse as a message (junk, another message type,
 * an unsupported version, a frame cut short): what an ACK needs. Empty when no MSH is found in
 * the first 1,024 characters.
 */
export function peekHeader(input: string | Buffer): Hl7Header {
  let text = Buffer.isBuffer(input) ? input.subarray(0, 65536).toString('utf8') : typeof input === 'string' ? input.slice(0, 65536) : '';
  const at = text.indexOf('MSH');
  if (at < 0 || at > 1024) return {};
  text = text.slice(at);
  const line = (text.split(/\r|\n/, 1)[0] ?? '').slice(0, 8192).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u001C]|\p{Cs}/gu, ' ');
  const separators = separatorsOf(line);
  if (!separators) return {};
  try {
    const [msh] = new Message({ text: line }).toArray();
    return msh ? headerOf({ node: msh, name: 'MSH', sequence: 1 }, separators) : { separators };
  } catch {
    return { separators };
  }
}

// ---------------------------------------------------------------------------------------------
// PID

function identifier(rep: HL7Node): PatientIdentifier | undefined {
  const value = comp(rep, 1);
  if (!value) return undefined;
  const id: PatientIdentifier = { value };
  const [ns, uid, uidType] = [sub(rep, 4, 1), sub(rep, 4, 2), sub(rep, 4, 3).toUpperCase()];
  if (uid && uidType === 'ISO' && /^[0-2](\.(0|[1-9]\d*))+$/.test(uid)) id.system = `urn:oid:${uid}`;
  else if (uid && (uidType === 'UUID' || uidType === 'GUID') && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uid)) id.system = `urn:uuid:${uid.toLowerCase()}`;
  if (ns || uid) id.assigner = ns || uid;
  const type = comp(rep, 5);
  if (type) id.type = type;
  return id;
}

const GENDER: Record<string, LabPatient['gender']> = { M: 'male', F: 'female', O: 'other', A: 'other', N: 'other', U: 'unknown' };

function patientOf(pid: Seg): LabPatient {
  const identifiers: PatientIdentifier[] = [];
  const seen = new Set<string>();
  for (const rep of [...reps(pid, 3), ...reps(pid, 2)]) {
    const id = identifier(rep);
    if (!id) continue;
    const k = `${id.value}\u0000${id.assigner ?? ''}\u0000${id.type ?? ''}`;
    if (!seen.has(k)) { seen.add(k); identifiers.push(id); }
  }
  if (!identifiers.length) throw new Hl7Error('missing-field', 'PID-3 (patient identifier list) holds no identifier', { segment: 'PID', sequence: 1, field: 3 });
  const patient: LabPatient = { identifiers };
  const names = reps(pid, 5);
  const name = names.find((r) => comp(r, 7) === 'L') ?? names[0];
  const family = comp(name, 1);
  const given = [comp(name, 2), comp(name, 3)].filter(Boolean);
  if (family) patient.family = family;
  if (given.length) patient.given = given;
  const birthDate = hl7Date(val(pid, 7), { segment: 'PID', sequence: 1, field: 7 });
  if (birthDate) patient.birthDate = birthDate;
  const gender = GENDER[val(pid, 8).toUpperCase()];
  if (gender) patient.gender = gender;
  return patient;
}

// ---------------------------------------------------------------------------------------------
// OBR / OBX

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
const COMPARATORS = new Set(['<', '<=', '>=', '>']);

function quantity(text: string, comparator?: string): LabValue | undefined {
  if (!NUMBER.test(text)) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) return undefined;
  return comparator && COMPARATORS.has(comparator) ? { kind: 'quantity', value, comparator: comparator as '<' | '<=' | '>=' | '>' } : { kind: 'quantity', value };
}

/** NM: a number, or `<5` / `>= 10` written in the field, else the text. */
function numericValue(text: string): LabValue {
  const m = /^(<=|>=|<|>)\s*(\S+)$/.exec(text);
  return quantity(text) ?? (m ? quantity(m[2]!, m[1]) : undefined) ?? { kind: 'string', value: text };
}

/** SN: comparator ^ number ^ separator/suffix ^ number (`^182`, `<^5`, `^10^-^20`, `^1^:^128`). */
function structuredNumeric(rep: HL7Node, sep: Hl7Separators): LabValue | undefined {
  const [cmp, n1, separator, n2] = [comp(rep, 1), comp(rep, 2), comp(rep, 3), comp(rep, 4)];
  if (!n2 && !separator && (cmp === '' || cmp === '=' || COMPARATORS.has(cmp))) {
    const q = quantity(n1, cmp === '=' ? undefined : cmp);
    if (q) return q;
  }
  const text = `${cmp === '=' ? '' : cmp}${n1}${separator}${n2}` || repText(rep, sep);
  return text ? { kind: 'string', value: text } : undefined;
}

const TEXT_TYPES = new Set(['ST', 'TX', 'FT']);
const CODED_TYPES = new Set(['CE', 'CWE', 'CNE', 'CF']);

function valueOf(obx: Seg, valueType: string, sep: Hl7Separators): { value?: LabValue; moreValues?: string[] } {
  const all = reps(obx, 5);
  if (!all.length || valueType === 'ED') return {};
  const rest = (): string[] | undefined => {
    const more = all.slice(1).map((r) => repText(r, sep)).filter(Boolean);
    return more.length ? more : undefined;
  };
  const withRest = (value: LabValue | undefined): { value?: LabValue; moreValues?: string[] } => {
    const out: { value?: LabValue; moreValues?: string[] } = {};
    if (value) out.value = value;
    const more = rest();
    if (more) out.moreValues = more;
    return out;
  };
  const first = all[0]!;
  if (TEXT_TYPES.has(valueType) || valueType === '') {
    const lines = all.map((r) => repText(r, sep));
    const text = valueType === 'ST' || valueType === '' ? lines.join('\n').trim() : formatted(lines.join('\n'), sep);
    return text ? { value: { kind: 'string', value: text } } : {};
  }
  if (valueType === 'NM') {
    const text = repText(first, sep);
    return withRest(text ? numericValue(text) : undefined);
  }
  if (valueType === 'SN') return withRest(structuredNumeric(first, sep));
  if (CODED_TYPES.has(valueType)) {
    const c = concept(first);
    return withRest(c ? { kind: 'coded', concept: c } : undefined);
  }
  if (valueType === 'RP') {
    const pointer = comp(first, 1);
    return withRest(pointer ? { kind: 'string', value: pointer } : undefined);
  }
  const text = repText(first, sep);
  return withRest(text ? { kind: 'string', value: text } : undefined);
}

function unitsOf(obx: Seg): LabUnits | undefined {
  const rep = firstRep(obx, 6);
  const [code, text, systemName] = [comp(rep, 1), comp(rep, 2), comp(rep, 3)];
  if (!code && !text) return undefined;
  const u: LabUnits = { code: code || text };
  if (code && text) u.display = text;
  const system = systemName ? codingSystemUri(systemName) : undefined;
  if (system) u.system = system;
  return u;
}

const RANGE_NUMBER = '[+-]?(?:\\d+(?:\\.\\d+)?|\\.\\d+)';
const BETWEEN = new RegExp(`^\\[?\\s*(${RANGE_NUMBER})\\s*(?:-|–|_|to|\\.\\.)\\s*(${RANGE_NUMBER})\\s*\\]?$`, 'i');
const BOUND = new RegExp(`^\\[?\\s*(<=|>=|<|>|≤|≥)\\s*(${RANGE_NUMBER})\\s*\\]?$`);

/** OBX-7 as low/high when it reads as a range (see LabReferenceRange). */
export function referenceRangeOf(text: string): LabReferenceRange | undefined {
  const t = text.trim();
  if (!t) return undefined;
  const between = BETWEEN.exec(t);
  if (between) {
    const low = Number(between[1]);
    const high = Number(between[2]);
    if (Number.isFinite(low) && Number.isFinite(high) && low <= high) return { low, high, text: t };
  }
  const bound = BOUND.exec(t);
  if (bound) {
    const v = Number(bound[2]);
    if (Number.isFinite(v)) return bound[1]!.startsWith('<') || bound[1] === '≤' ? { high: v, text: t } : { low: v, text: t };
  }
  return { text: t };
}

function resultOf(obx: Seg, position: number, report: LabReport | undefined, sep: Hl7Separators, opts: ParseOptions): LabResult {
  const setId = val(obx, 1);
  const subId = val(obx, 4);
  const valueType = val(obx, 2).toUpperCase();
  const r: LabResult = { key: setId ? (subId ? `${setId}.${subId}` : setId) : String(position), abnormalFlags: [], notes: [] };
  if (setId) r.setId = setId;
  if (subId) r.subId = subId;
  if (valueType) r.valueType = valueType;
  const code = concept(firstRep(obx, 3));
  if (code) r.code = code;
  Object.assign(r, valueOf(obx, valueType, sep));
  const units = unitsOf(obx);
  if (units) r.units = units;
  const rangeRep = firstRep(obx, 7);
  const range = rangeRep ? referenceRangeOf(repText(rangeRep, sep)) : undefined;
  if (range) r.referenceRange = range;
  r.abnormalFlags = reps(obx, 8).map((rep) => comp(rep, 1)).filter(Boolean);
  const status = val(obx, 11).toUpperCase();
  if (status) r.status = status;
  const observed = hl7Time(val(obx, 14), { segment: 'OBX', sequence: obx.sequence, field: 14 }, opts);
  const observedAt = observed?.dateTime ?? report?.observedAt;
  if (observedAt) r.observedAt = observedAt;
  return r;
}

function reportOf(obr: Seg, orc: Seg | undefined, opts: ParseOptions): LabReport {
  const code = concept(firstRep(obr, 4));
  if (!code) throw new Hl7Error('missing-field', 'OBR-4 (universal service identifier: the test ordered) is empty', { segment: 'OBR', sequence: obr.sequence, field: 4 });
  const report: LabReport = { code, notes: [], results: [] };
  const ei = (own: number, fallback: number): { id?: string; assigner?: string } => {
    let rep = firstRep(obr, own);
    if (!comp(rep, 1) && orc) rep = firstRep(orc, fallback);
    const id = comp(rep, 1);
    return id ? { id, assigner: comp(rep, 2) || comp(rep, 3) || undefined } : {};
  };
  const placer = ei(2, 2);
  const filler = ei(3, 3);
  if (placer.id) report.placerId = placer.id;
  if (placer.assigner) report.placerAssigner = placer.assigner;
  if (filler.id) report.fillerId = filler.id;
  if (filler.assigner) report.fillerAssigner = filler.assigner;
  const status = val(obr, 25).toUpperCase();
  if (status) report.status = status;
  const observed = hl7Time(val(obr, 7), { segment: 'OBR', sequence: obr.sequence, field: 7 }, opts);
  if (observed) report.observedAt = observed.dateTime;
  const issued = hl7Time(val(obr, 22), { segment: 'OBR', sequence: obr.sequence, field: 22 }, opts);
  if (issued) {
    report.issuedAt = issued.dateTime;
    if (issued.instant) report.issuedInstant = issued.instant;
  }
  const provider = person(firstRep(obr, 16)) ?? (orc ? person(firstRep(orc, 12)) : undefined);
  if (provider) report.orderingProvider = provider;
  return report;
}

/** NTE-3 (FT, repeating) as text. */
function noteOf(nte: Seg, sep: Hl7Separators): string {
  return formatted(reps(nte, 3).map((r) => repText(r, sep)).join('\n'), sep);
}

/** Keys made unique within a report: a repeated key gets `#2`, `#3` ... */
function uniqueKeys(results: LabResult[]): void {
  const count = new Map<string, number>();
  for (const r of results) {
    const n = (count.get(r.key) ?? 0) + 1;
    count.set(r.key, n);
    if (n > 1) r.key = `${r.key}#${n}`;
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Parses one HL7 v2 ORU^R01 message (v2.3 to v2.6) given as text or bytes (UTF-8; a BOM and CR,
 * LF or CRLF segment endings are fine). Throws Hl7Error: unparseable (not HL7, over 1 MB or
 * 10,000 segments, binary, a batch), unsupported-type (not ORU^R01, or more than one patient),
 * unsupported-version, missing-segment (PID, OBR), missing-field (MSH-9/10/12, PID-3, OBR-4),
 * invalid-field (a date/time that is none).
 */
export function parseLabMessage(input: string | Buffer, opts: ParseOptions = {}): LabMessage {
  const { lines, separators } = segmentLines(messageText(input));
  const nodes = libraryMessage(lines);
  const counts = new Map<string, number>();
  const segs: Seg[] = nodes.map((node, i) => {
    const name = lines[i]!.slice(0, 3);
    const sequence = (counts.get(name) ?? 0) + 1;
    counts.set(name, sequence);
    return { node, name, sequence };
  });
  if (segs.length !== lines.length) throw new Hl7Error('unparseable', 'The HL7 parser read a different number of segments than the message has');
  const msh = segs[0]!;
  const header = headerOf(msh, separators);

  const type = header.messageType;
  if (!type?.code) throw new Hl7Error('missing-field', 'MSH-9 (message type) is empty', { segment: 'MSH', sequence: 1, field: 9 });
  const messageType = `${type.code}^${type.trigger ?? ''}`;
  if (type.code !== 'ORU' || type.trigger !== 'R01') {
    throw new Hl7Error('unsupported-type', `Message type ${messageType.slice(0, 20)} is not accepted: only ORU^R01 (unsolicited observation results)`, { segment: 'MSH', sequence: 1, field: 9 });
  }
  if (!header.version) throw new Hl7Error('missing-field', 'MSH-12 (version id) is empty', { segment: 'MSH', sequence: 1, field: 12 });
  if (!SUPPORTED_VERSION.test(header.version)) {
    throw new Hl7Error('unsupported-version', `HL7 version ${header.version.slice(0, 10)} is not accepted: 2.3 to 2.6 are`, { segment: 'MSH', sequence: 1, field: 12 });
  }
  if (!header.controlId) throw new Hl7Error('missing-field', 'MSH-10 (message control id) is empty', { segment: 'MSH', sequence: 1, field: 10 });
  const sentAt = hl7Time(val(msh, 7), { segment: 'MSH', sequence: 1, field: 7 }, opts);

  let patient: LabPatient | undefined;
  const reports: LabReport[] = [];
  const patientResults: LabResult[] = [];
  let report: LabReport | undefined;
  let orc: Seg | undefined;
  let target: { notes: string[] } | undefined;
  for (const seg of segs.slice(1)) {
    switch (seg.name) {
      case 'PID':
        if (patient) throw new Hl7Error('unsupported-type', 'The message holds results of more than one patient (a second PID): send one message per patient', { segment: 'PID', sequence: seg.sequence });
        patient = patientOf(seg);
        target = undefined;
        break;
      case 'ORC':
        // a new order starts: an NTE before its OBR belongs to nothing HMS keeps
        orc = seg;
        target = undefined;
        break;
      case 'OBR':
        report = reportOf(seg, orc, opts);
        orc = undefined;
        reports.push(report);
        target = report;
        break;
      case 'OBX': {
        const list = report ? report.results : patientResults;
        const result = resultOf(seg, list.length + 1, report, separators, opts);
        list.push(result);
        target = result;
        break;
      }
      case 'NTE': {
        const text = noteOf(seg, separators);
        if (text && target) target.notes.push(text);
        break;
      }
      case 'PRT':
        break;
      default:
        // segments of the order (TQ1, CTD, FT1, CTI, SPM ...): a stray NTE after them goes to the report
        target = report;
    }
  }
  if (!patient) throw new Hl7Error('missing-segment', 'The message has no PID segment (patient identification)', { segment: 'PID' });
  if (!reports.length) throw new Hl7Error('missing-segment', 'The message has no OBR segment (observation request)', { segment: 'OBR' });
  for (const r of reports) uniqueKeys(r.results);
  uniqueKeys(patientResults);

  const msg: LabMessage = { header, controlId: header.controlId, version: header.version, messageType, patient, reports, patientResults };
  const names = {
    sendingApplication: hdName(header.sendingApplication), sendingFacility: hdName(header.sendingFacility),
    receivingApplication: hdName(header.receivingApplication), receivingFacility: hdName(header.receivingFacility),
  };
  for (const [k, v] of Object.entries(names)) if (v) (msg as unknown as Record<string, string>)[k] = v;
  if (header.processingId) msg.processingId = header.processingId;
  if (sentAt) msg.sentAt = sentAt.dateTime;
  return msg;
}
