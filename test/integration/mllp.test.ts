/**
 * The MLLP listener over real TCP (loopback): framing, order, split packets, junk, oversize,
 * graceful close. The handler is the real parser and ACK builder (no mocks).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Message } from 'node-hl7-client';
import t, { type Test } from 'tap';
import { ackForError, ackMessage } from '../../src/ingest/hl7-ack.js';
import { Hl7Error, parseLabMessage, peekHeader } from '../../src/ingest/hl7.js';
import { startMllpServer, type MllpServer, type MllpServerOptions } from '../../src/ingest/mllp.js';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'hl7v2');
const fixture = (name: string): Buffer => readFileSync(join(dir, name));
const VT = Buffer.from([0x0b]);
const END = Buffer.from([0x1c, 0x0d]);
const framed = (msg: Buffer | string): Buffer => Buffer.concat([VT, Buffer.isBuffer(msg) ? msg : Buffer.from(msg, 'utf8'), END]);
const small = (id: string, name = 'Doe^Jane'): string => [
  `MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000+0100||ORU^R01^ORU_R01|${id}|P|2.5.1`,
  `PID|1||A1^^^H^MR||${name}||19800101|F`,
  'OBR|1||F1^LAB|24317-0^Hemogram^LN',
  'OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|||||F',
].join('\r') + '\r';

interface Log { level: string; obj: object; msg: string }

/** The real handler: parse, answer AA, or AR/AE as the parse error says. */
async function realHandler(text: string): Promise<string> {
  try {
    const m = parseLabMessage(text);
    return ackMessage(m.header, 'AA', { text: `${m.reports.length} report(s)` });
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
    const { code, errorCode } = ackForError(err);
    return ackMessage(peekHeader(text), code, { text: err.message, errorCode, errorLocation: err.location });
  }
}

async function server(t: Test, opts: Partial<MllpServerOptions> = {}): Promise<{ s: MllpServer; logs: Log[] }> {
  const logs: Log[] = [];
  const log = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg: string) => logs.push({ level: 'error', obj, msg }),
  };
  const s = await startMllpServer({ host: '127.0.0.1', port: 0, log, onMessage: realHandler, ...opts });
  t.teardown(() => s.close());
  return { s, logs };
}

/** A sender: collects the ACK frames it gets back. */
class Sender {
  readonly socket: net.Socket;
  readonly acks: string[] = [];
  readonly closed: Promise<void>;
  readonly connected: Promise<void>;
  private buf = Buffer.alloc(0);
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.connected = new Promise((resolve, reject) => { this.socket.once('connect', resolve); this.socket.once('error', reject); });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('error', () => {});
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const end = this.buf.indexOf(END);
        if (end < 0) break;
        const start = this.buf.indexOf(VT);
        this.acks.push(this.buf.subarray(start + 1, end).toString('utf8'));
        this.buf = this.buf.subarray(end + 2);
      }
      this.waiters = this.waiters.filter((w) => (this.acks.length >= w.n ? (w.resolve(), false) : true));
    });
    this.socket.on('close', () => { for (const w of this.waiters) w.resolve(); });
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(b, (err) => (err ? reject(err) : resolve())));
  }

  /** Resolves once `n` ACKs came (or the connection closed). */
  waitAcks(n: number): Promise<string[]> {
    if (this.acks.length >= n) return Promise.resolve(this.acks);
    return new Promise((resolve) => this.waiters.push({ n, resolve: () => resolve(this.acks) }));
  }
}

const msa = (ack: string): [string, string, string] => {
  const m = new Message({ text: ack });
  return [m.get('MSA.1').toString(), m.get('MSA.2').toString(), m.get('MSA.3').toString()];
};

t.test('one message, one ACK', async (t) => {
  const { s, logs } = await server(t);
  const c = new Sender(s.port);
  await c.write(framed(fixture('LRI_2.0-NG_CBC_Typ_Message.hl7')));
  const [ack] = await c.waitAcks(1);
  t.same(msa(ack!), ['AA', 'NIST-LRI-NG-002.00', '1 report(s)']);
  t.ok(ack!.startsWith('MSH|^~\\&|'));
  c.socket.end();
  await c.closed;
  const answered = logs.find((l) => l.msg === 'MLLP message answered');
  t.match(answered?.obj, { controlId: 'NIST-LRI-NG-002.00', ack: 'AA', bytes: fixture('LRI_2.0-NG_CBC_Typ_Message.hl7').length });
});

t.test('every fixture over one connection, answered in order', async (t) => {
  const { s } = await server(t);
  const c = new Sender(s.port);
  const names = ['LAB-ORU-1.hl7', 'LAB-ORU-2.hl7', 'LRI_2.0-NG_CBC_Typ_Message.hl7', 'ORU-R01-01.hl7', 'ORU-R01-RMGEAD.hl7', 'ORU-multiline-short-mixed.hl7', 'ORU-multiline-short.hl7', 'hl7.message.2.ORU_R01.hl7', 'hl7.message.4.ORU_R01.hl7'];
  for (const [i, name] of names.entries()) {
    await c.write(framed(fixture(name)));
    const acks = await c.waitAcks(i + 1);
    t.same(msa(acks[i]!).slice(0, 2), ['AA', parseLabMessage(fixture(name)).controlId], name);
  }
  c.socket.end();
  await c.closed;
});

t.test('three messages in one write: three ACKs in the order sent, though the first takes longest', async (t) => {
  const calls: string[] = [];
  const ticks = (n: number) => new Promise<void>((resolve) => { const step = (k: number) => (k === 0 ? resolve() : setImmediate(() => step(k - 1))); step(n); });
  const { s } = await server(t, {
    onMessage: async (text) => {
      const id = peekHeader(text).controlId!;
      calls.push(`start ${id}`);
      await ticks(id === 'M1' ? 50 : id === 'M2' ? 20 : 1);
      calls.push(`end ${id}`);
      return realHandler(text);
    },
  });
  const c = new Sender(s.port);
  await c.write(Buffer.concat([framed(small('M1')), framed(small('M2')), framed(small('M3'))]));
  const acks = await c.waitAcks(3);
  t.same(acks.map((a) => msa(a).slice(0, 2)), [['AA', 'M1'], ['AA', 'M2'], ['AA', 'M3']]);
  t.same(calls, ['start M1', 'end M1', 'start M2', 'end M2', 'start M3', 'end M3'], 'one at a time per connection');
  c.socket.end();
  await c.closed;
});

t.test('one message in 1-byte writes, with a UTF-8 character split between them', async (t) => {
  const texts: string[] = [];
  const { s } = await server(t, { onMessage: async (text) => { texts.push(text); return realHandler(text); } });
  const c = new Sender(s.port);
  await c.connected;
  const bytes = framed(small('BYTES-1', 'Nuñez^José'));
  for (const b of bytes) await c.write(Buffer.from([b]));
  const [ack] = await c.waitAcks(1);
  t.same(msa(ack!).slice(0, 2), ['AA', 'BYTES-1']);
  t.equal(texts[0], small('BYTES-1', 'Nuñez^José'), 'decoded as UTF-8, whole');
  c.socket.end();
  await c.closed;
});

t.test('a frame split at its end: the CR of FS CR in the next packet is not junk', async (t) => {
  const { s, logs } = await server(t);
  const c = new Sender(s.port);
  const first = framed(small('SPLIT-1'));
  await c.write(first.subarray(0, first.length - 1)); // up to the FS
  await c.waitAcks(1);
  await c.write(Buffer.concat([Buffer.from([0x0d]), framed(small('SPLIT-2'))]));
  const acks = await c.waitAcks(2);
  t.same(acks.map((a) => msa(a)[1]), ['SPLIT-1', 'SPLIT-2']);
  c.socket.end();
  await c.closed;
  t.notOk(logs.some((l) => l.msg.includes('outside a frame')), 'no junk reported');
});

t.test('bytes outside frames are ignored and logged by count only', async (t) => {
  const { s, logs } = await server(t);
  const c = new Sender(s.port);
  await c.write(Buffer.concat([Buffer.from('SECRET-JUNK\r\n'), framed(small('J1')), Buffer.from('more SECRET'), framed(small('J2')), Buffer.from('tail')]));
  const acks = await c.waitAcks(2);
  t.same(acks.map((a) => msa(a).slice(0, 2)), [['AA', 'J1'], ['AA', 'J2']]);
  c.socket.end();
  await c.closed;
  const junk = logs.filter((l) => l.msg === 'MLLP bytes outside a frame ignored').map((l) => (l.obj as { bytes: number }).bytes);
  t.same(junk, [13, 11, 4], 'counted before each frame and at close');
  t.notMatch(JSON.stringify(logs), /SECRET/, 'junk is not logged');
});

t.test('messages that are not ORU^R01 or not HL7 are answered AR, the connection stays', async (t) => {
  const { s } = await server(t);
  const c = new Sender(s.port);
  await c.write(Buffer.concat([
    framed('this is not HL7'),
    framed('MSH|^~\\&|ADT1|GH|HMS|H|2024||ADT^A01|ADT-9|P|2.5\rEVN|A01\r'),
    framed(small('OK-3')),
  ]));
  const acks = await c.waitAcks(3);
  t.same(acks.map((a) => msa(a).slice(0, 2)), [['AR', ''], ['AR', 'ADT-9'], ['AA', 'OK-3']]);
  t.match(new Message({ text: acks[1]! }).get('ERR.3').toRaw(), /^200\^/);
  c.socket.end();
  await c.closed;
});

t.test('an oversized frame is answered AR and the connection closed', async (t) => {
  const { s, logs } = await server(t, { maxMessageBytes: 4096 });
  const c = new Sender(s.port);
  await c.write(framed(small('OK-1')));
  await c.waitAcks(1);
  const big = small('BIG-1') + `NTE|1||${'x'.repeat(8000)}\r`;
  c.write(framed(big)).catch(() => {});
  const acks = await c.waitAcks(2);
  t.same(msa(acks[1]!).slice(0, 2), ['AR', 'BIG-1'], 'the control id read from the start of the frame');
  t.match(msa(acks[1]!)[2], /larger than 4096 bytes/);
  await c.closed;
  t.pass('the server closed the connection');
  t.ok(logs.some((l) => l.msg.startsWith('MLLP message too large') && (l.obj as { limit: number }).limit === 4096));
});

t.test('the default limit is 1 MB', async (t) => {
  const { s } = await server(t);
  const c = new Sender(s.port);
  c.write(framed(small('HUGE-1') + `NTE|1||${'x'.repeat(1024 * 1024)}\r`)).catch(() => {});
  const acks = await c.waitAcks(1);
  t.same(msa(acks[0]!).slice(0, 2), ['AR', 'HUGE-1']);
  await c.closed;
});

t.test('a handler that fails is answered AE (207); the next message still goes through', async (t) => {
  const { s, logs } = await server(t, {
    onMessage: async (text) => {
      if (peekHeader(text).controlId === 'FAIL-1') throw new Error('database down with Jane Doe in the message');
      return realHandler(text);
    },
  });
  const c = new Sender(s.port);
  await c.write(Buffer.concat([framed(small('FAIL-1')), framed(small('OK-2'))]));
  const acks = await c.waitAcks(2);
  t.same(msa(acks[0]!).slice(0, 2), ['AE', 'FAIL-1']);
  t.match(new Message({ text: acks[0]! }).get('ERR.3').toRaw(), /^207\^/);
  t.same(msa(acks[1]!).slice(0, 2), ['AA', 'OK-2']);
  c.socket.end();
  await c.closed;
  t.notMatch(JSON.stringify(logs), /Jane|Doe/, 'no patient data in the logs');
});

t.test('a sender that half-closes after its message still gets the ACK', async (t) => {
  const { s } = await server(t);
  const c = new Sender(s.port);
  c.socket.end(framed(small('HALF-1')));
  const acks = await c.waitAcks(1);
  t.same(msa(acks[0]!).slice(0, 2), ['AA', 'HALF-1']);
  await c.closed;
});

t.test('close() stops accepting, lets the message in flight finish and be answered, then closes', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  let started!: () => void;
  const inFlight = new Promise<void>((resolve) => { started = resolve; });
  const logs: Log[] = [];
  const s = await startMllpServer({
    host: '127.0.0.1', port: 0,
    log: { info: (obj, msg) => logs.push({ level: 'info', obj, msg }), warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }), error: (obj, msg) => logs.push({ level: 'error', obj, msg }) },
    onMessage: async (text) => { started(); await gate; return realHandler(text); },
  });
  const c = new Sender(s.port);
  await c.write(framed(small('SLOW-1')));
  await inFlight;
  let closedDone = false;
  const closing = s.close().then(() => { closedDone = true; });
  const refused = await new Promise<string>((resolve) => {
    const probe = net.connect({ host: '127.0.0.1', port: s.port });
    probe.once('connect', () => { probe.destroy(); resolve('connected'); });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  t.equal(refused, 'ECONNREFUSED', 'no new connections once closing');
  t.equal(c.acks.length, 0);
  t.notOk(closedDone, 'close() waits for the message in flight');
  release();
  const acks = await c.waitAcks(1);
  t.same(msa(acks[0]!).slice(0, 2), ['AA', 'SLOW-1'], 'answered before the connection closed');
  await c.closed;
  await closing;
  t.ok(closedDone);
  t.ok(logs.some((l) => l.msg === 'MLLP listener closed'));
});

t.test('close() waits a bounded time for a handler that never ends', async (t) => {
  let called!: () => void;
  const inFlight = new Promise<void>((resolve) => { called = resolve; });
  const s = await startMllpServer({
    host: '127.0.0.1', port: 0, closeTimeoutMs: 300,
    log: { info: () => {}, warn: () => {}, error: () => {} },
    onMessage: () => { called(); return new Promise<string>(() => {}); },
  });
  const c = new Sender(s.port);
  await c.write(framed(small('STUCK-1')));
  await inFlight;
  const started = Date.now();
  await s.close();
  const took = Date.now() - started;
  t.ok(took >= 250 && took < 5000, `close() took ${took} ms`);
  await c.closed;
  t.equal(c.acks.length, 0, 'no ACK: the sender will send it again');
});

t.test('idle connections are closed after idleTimeoutMs', async (t) => {
  const { s, logs } = await server(t, { idleTimeoutMs: 200 });
  const c = new Sender(s.port);
  await c.write(framed(small('IDLE-1')));
  await c.waitAcks(1);
  await c.closed;
  t.ok(logs.some((l) => l.msg === 'MLLP connection idle: closed'));
});

t.test('the logs hold no message content', async (t) => {
  const { s, logs } = await server(t);
  const c = new Sender(s.port);
  for (const name of ['LAB-ORU-1.hl7', 'ORU-R01-01.hl7', 'hl7.message.2.ORU_R01.hl7']) {
    await c.write(framed(fixture(name)));
  }
  await c.waitAcks(3);
  c.socket.end();
  await c.closed;
  const text = JSON.stringify(logs);
  for (const secret of ['DUCK', 'DONALD', 'Finn', 'Huckleberry', 'Alexander', '10006579', '19241010', 'Salmonella', 'Memory stair']) {
    t.notOk(text.includes(secret), `no ${secret}`);
  }
});
