import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Message } from 'node-hl7-client';
import t from 'tap';
import { ackForError, ackMessage } from '../../src/ingest/hl7-ack.js';
import { Hl7Error, parseLabMessage, peekHeader } from '../../src/ingest/hl7.js';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'hl7v2');
const names = readdirSync(dir).filter((f) => f.endsWith('.hl7'));
const now = new Date('2024-03-01T10:20:30.456Z');
/** An ACK read back with the library HMS parses with. */
const read = (ack: string): Message => new Message({ text: ack });
const get = (m: Message, path: string): string => m.get(path).toString();

t.test('AA for every fixture: addressed back to the sender, same version and processing id, CR endings', async (t) => {
  for (const name of names) {
    const msg = parseLabMessage(readFileSync(join(dir, name)));
    const ack = ackMessage(msg.header, 'AA', { now, controlId: 'ACK-1' });
    t.notOk(ack.includes('\n'), `${name}: no LF`);
    t.ok(ack.endsWith('\r'), `${name}: the last segment ends with CR`);
    t.same(ack.split('\r').filter(Boolean).map((s) => s.slice(0, 3)), ['MSH', 'MSA'], `${name}: MSH and MSA, no ERR`);
    const m = read(ack);
    const h = msg.header;
    t.equal(get(m, 'MSH.3'), h.receivingApplication?.namespaceId ?? (h.receivingApplication ? '' : 'HMS'), `${name}: MSH-3 is the original receiver`);
    t.equal(get(m, 'MSH.4'), h.receivingFacility?.namespaceId ?? '', `${name}: MSH-4`);
    t.equal(get(m, 'MSH.5'), h.sendingApplication?.namespaceId ?? '', `${name}: MSH-5 is the original sender`);
    t.equal(get(m, 'MSH.6'), h.sendingFacility?.namespaceId ?? '', `${name}: MSH-6`);
    t.equal(get(m, 'MSH.7'), '20240301102030+0000');
    t.equal(m.get('MSH.9').toRaw(), msg.version === '2.3' ? 'ACK^R01' : 'ACK^R01^ACK', `${name}: MSH-9`);
    t.equal(get(m, 'MSH.10'), 'ACK-1');
    t.equal(get(m, 'MSH.11'), msg.processingId);
    t.equal(get(m, 'MSH.12'), msg.version);
    t.equal(get(m, 'MSA.1'), 'AA');
    t.equal(get(m, 'MSA.2'), msg.controlId, `${name}: MSA-2 is the original control id`);
    t.same(peekHeader(ack).messageType?.code, 'ACK', 'HMS reads its own ACK');
  }
});

t.test('the HD components of the sender are copied whole (ORU-R01-01 has OIDs)', async (t) => {
  const msg = parseLabMessage(readFileSync(join(dir, 'ORU-R01-01.hl7')));
  const m = read(ackMessage(msg.header, 'AA'));
  t.equal(m.get('MSH.3').toRaw(), 'IA.DOH.IDSS^2.16.840.1.114222.4.3.3.19^ISO');
  t.equal(m.get('MSH.5').toRaw(), 'IA PHIMS Stage^2.16.840.1.114222.4.3.3.5.1.2^ISO');
  t.equal(m.get('MSH.6').toRaw(), 'IA Public Health Lab^2.16.840.1.114222.4.1.10411^ISO');
});

t.test('AE with a reason that holds separators and line breaks: escaped, read back as sent', async (t) => {
  const msg = parseLabMessage(readFileSync(join(dir, 'LRI_2.0-NG_CBC_Typ_Message.hl7')));
  const reason = 'PID-3 | empty ^ or & bad ~ \\ here\r\nsecond line';
  const ack = ackMessage(msg.header, 'AE', { text: reason, errorCode: 101, errorLocation: 'PID-3', now });
  t.equal(ack.split('\r').filter(Boolean).length, 3, 'MSH, MSA, ERR: the reason broke no segment');
  t.match(ack, /\\F\\ empty \\S\\ or \\T\\ bad \\R\\ \\E\\ here/);
  const m = read(ack);
  t.equal(get(m, 'MSA.1'), 'AE');
  t.equal(get(m, 'MSA.2'), 'NIST-LRI-NG-002.00');
  t.equal(get(m, 'MSA.3'), 'PID-3 | empty ^ or & bad ~ \\ here second line');
  t.equal(m.get('ERR.2').toRaw(), 'PID^1^3', 'ERR-2 error location (v2.5+)');
  t.equal(m.get('ERR.3').toRaw(), '101^Required field missing^HL70357');
  t.equal(get(m, 'ERR.4'), 'E');
  t.equal(get(m, 'ERR.8'), 'PID-3 | empty ^ or & bad ~ \\ here second line');
});

t.test('AR before v2.5: ERR-1 holds location and code', async (t) => {
  const msg = parseLabMessage(readFileSync(join(dir, 'ORU-R01-RMGEAD.hl7')));
  const m = read(ackMessage(msg.header, 'AR', { text: 'Sending facility not accepted', errorCode: '103', errorLocation: 'MSH-4' }));
  t.equal(get(m, 'MSA.1'), 'AR');
  t.equal(get(m, 'MSA.2'), 'CNTRL-3456');
  t.equal(get(m, 'MSH.12'), '2.4');
  t.equal(m.get('ERR.1').toRaw(), 'MSH^1^4^103&Table value not found&HL70357');
});

t.test('AR for junk: no header to copy, still a valid ACK', async (t) => {
  const ack = ackMessage(peekHeader('GET / HTTP/1.1\r\n'), 'AR', { text: 'Not an HL7 v2 message', errorCode: 100 });
  const m = read(ack);
  t.equal(get(m, 'MSH.3'), 'HMS');
  t.equal(m.get('MSH.9').toRaw(), 'ACK^R01^ACK');
  t.equal(get(m, 'MSH.12'), '2.5.1');
  t.equal(get(m, 'MSH.11'), 'P');
  t.equal(get(m, 'MSA.1'), 'AR');
  t.equal(get(m, 'MSA.2'), '');
  t.equal(m.get('ERR.3').toRaw(), '100^Segment sequence error^HL70357');
  t.equal(m.get('ERR.2').toRaw(), '', 'no location');
});

t.test('a refused ADT^A01 v2.2 is answered in its own terms', async (t) => {
  const text = 'MSH|^~\\&|ADT1|GOOD HEALTH|HMS|HOSP|20240101||ADT^A01|MSG00001|T|2.2\rEVN|A01\r';
  let err: Hl7Error | undefined;
  try { parseLabMessage(text); } catch (e) { err = e as Hl7Error; }
  t.ok(err);
  const { code, errorCode } = ackForError(err!);
  t.same([code, errorCode], ['AR', 200]);
  const m = read(ackMessage(peekHeader(text), code, { text: err!.message, errorCode, errorLocation: err!.location }));
  t.equal(m.get('MSH.9').toRaw(), 'ACK^A01^ACK', 'the original trigger event');
  t.equal(get(m, 'MSH.12'), '2.2');
  t.equal(get(m, 'MSH.11'), 'T');
  t.equal(get(m, 'MSA.2'), 'MSG00001');
  t.equal(m.get('ERR.2').toRaw(), 'MSH^1^9');
});

t.test('other separators in the original: the ACK uses the standard ones and escapes what needs it', async (t) => {
  const h = peekHeader('MSH#^~\\&#LAB|1#FAC#HMS#HOSP#2024##ORU^R01#C|7#P#2.5\r');
  t.equal(h.sendingApplication?.namespaceId, 'LAB|1');
  const ack = ackMessage(h, 'AA');
  t.ok(ack.startsWith('MSH|^~\\&|HMS|HOSP|LAB\\F\\1|FAC|'));
  const m = read(ack);
  t.equal(get(m, 'MSH.5'), 'LAB|1');
  t.equal(get(m, 'MSA.2'), 'C|7');
});

t.test('control ids are fresh; long texts are cut', async (t) => {
  const h = peekHeader('MSH|^~\\&|A|B|C|D|2024||ORU^R01|X|P|2.5');
  const ids = new Set(Array.from({ length: 50 }, () => get(read(ackMessage(h, 'AA')), 'MSH.10')));
  t.equal(ids.size, 50);
  t.ok([...ids].every((id) => /^[0-9a-f]{20}$/.test(id)), 'at most 20 characters (MSH-10 is ST(20) before v2.7)');
  const m = read(ackMessage(h, 'AE', { text: 'x'.repeat(2000) }));
  t.equal(get(m, 'MSA.3').length, 80);
  t.equal(get(m, 'ERR.8').length, 500);
  t.equal(m.get('ERR.3').toRaw(), '207^Application internal error^HL70357', 'default error code');
});

t.test('ackForError: AR for what HMS does not take, AE for content errors', async (t) => {
  const cases: [Hl7Error['code'], string, number][] = [
    ['unparseable', 'AR', 100], ['unsupported-type', 'AR', 200], ['unsupported-version', 'AR', 203],
    ['missing-segment', 'AE', 100], ['missing-field', 'AE', 101], ['invalid-field', 'AE', 102],
  ];
  for (const [c, code, errorCode] of cases) t.same(ackForError(new Hl7Error(c, 'x')), { code, errorCode }, c);
});
