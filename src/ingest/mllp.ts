/**
 * An MLLP listener (HL7 v2 over TCP, the Minimal Lower Layer Protocol): each message framed as
 * 0x0B <message> 0x1C 0x0D, answered with the ACK the handler returns, in the order the messages
 * came, several per connection. Node's net with the framing here: no maintained MLLP library
 * answered our own ACKs after our own async work, in order, with a size bound (docs/hl7v2.md).
 *
 * Never logs message content (patient data): sizes, control ids, peers, ACK codes.
 */
import net from 'node:net';
import { ackMessage } from './hl7-ack.js';
import { MAX_MESSAGE_BYTES, peekHeader } from './hl7.js';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;
/** Frames waiting on one connection before HMS stops reading from it (TCP pushes back on the sender). */
const MAX_QUEUED = 32;
/** Bytes kept from the start of an oversized frame, for the MSH its AR answers. */
const HEAD_BYTES = 4096;
/** How long a closed-by-us connection may take to close before it is destroyed. */
const LINGER_MS = 2000;

export interface MllpLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MllpPeer {
  address: string;
  port: number;
}

export interface MllpServerOptions {
  host: string;
  /** 0 for any free port (the one taken is in the result) */
  port: number;
  /**
   * Handles one message (decoded as UTF-8) and resolves to the ACK to send (an HL7 message, without
   * framing). A rejection or a non-string is answered with AE (207, application internal error).
   */
  onMessage(text: string, peer: MllpPeer): Promise<string>;
  log: MllpLogger;
  /** Largest frame accepted (default 1 MB); a larger one is answered with AR and the connection closed */
  maxMessageBytes?: number;
  /** A connection with no traffic and nothing in flight for this long is closed (default: never) */
  idleTimeoutMs?: number;
  /** How long close() waits for messages in flight before it destroys their connections (default 10 s) */
  closeTimeoutMs?: number;
}

export interface MllpServer {
  port: number;
  /** Stops accepting, lets the messages received finish and be answered (bounded wait), then closes the connections. */
  close(): Promise<void>;
}

type Item = { kind: 'message'; bytes: Buffer } | { kind: 'oversize'; head: Buffer; bytes: number };

const frame = (ack: string): Buffer => Buffer.concat([Buffer.from([VT]), Buffer.from(ack, 'utf8'), Buffer.from([FS, CR])]);
const ackCode = (ack: string): string | undefined => /(?:^|\r)MSA\|([A-Z]{2})/.exec(ack)?.[1];
const errorName = (err: unknown): string => (err instanceof Error ? err.name : typeof err);

class Connection {
  private inFrame = false;
  private parts: Buffer[] = [];
  private frameBytes = 0;
  private junk = 0;
  /** the CR of an FS CR may arrive in the next packet */
  private skipCr = false;
  private readonly queue: Item[] = [];
  private processing = false;
  /** no more frames are taken (oversize, server closing, peer ended) */
  private stopped = false;
  private answered = 0;
  private idleWaiters: (() => void)[] = [];
  readonly peer: MllpPeer;
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket, private readonly opts: MllpServerOptions & { maxMessageBytes: number }) {
    this.peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setKeepAlive(true, 60_000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      // the peer sent all it will (half-close): answer what came, then close our side
      this.stopped = true;
      this.whenIdle().then(() => this.end(), () => {});
    });
    socket.on('error', (err: NodeJS.ErrnoException) => opts.log.warn({ peer: this.peer, code: err.code ?? err.name }, 'MLLP connection error'));
    socket.on('close', () => {
      if (this.junk) opts.log.warn({ peer: this.peer, bytes: this.junk }, 'MLLP bytes outside a frame ignored');
      if (this.inFrame && this.frameBytes) opts.log.warn({ peer: this.peer, bytes: this.frameBytes }, 'MLLP connection closed in the middle of a frame: the partial message is dropped');
      opts.log.info({ peer: this.peer, answered: this.answered }, 'MLLP connection closed');
      for (const w of this.idleWaiters.splice(0)) w();
    });
    if (opts.idleTimeoutMs) {
      socket.setTimeout(opts.idleTimeoutMs);
      socket.on('timeout', () => {
        if (this.idle && !this.inFrame) {
          opts.log.info({ peer: this.peer, idleMs: opts.idleTimeoutMs }, 'MLLP connection idle: closed');
          this.stopped = true;
          this.end();
        }
      });
    }
  }

  private get idle(): boolean {
    return !this.processing && this.queue.length === 0;
  }

  /** Resolves once nothing is queued or in flight (or the socket closed). */
  whenIdle(): Promise<void> {
    if (this.idle || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Takes no more frames: for close(). */
  stop(): void {
    if (this.inFrame && this.frameBytes) this.opts.log.warn({ peer: this.peer, bytes: this.frameBytes }, 'MLLP listener closing: a partial message is dropped');
    this.stopped = true;
    this.inFrame = false;
    this.parts = [];
  }

  end(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), LINGER_MS);
    t.unref();
  }

  private logJunk(): void {
    if (!this.junk) return;
    this.opts.log.warn({ peer: this.peer, bytes: this.junk }, 'MLLP bytes outside a frame ignored');
    this.junk = 0;
  }

  private onData(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.stopped) return; // read and dropped, so the peer can read our last answer
      if (!this.inFrame) {
        if (this.skipCr) {
          this.skipCr = false;
          if (chunk[i] === CR) { i++; continue; }
        }
        const vt = chunk.indexOf(VT, i);
        if (vt < 0) { this.junk += chunk.length - i; return; }
        this.junk += vt - i;
        this.logJunk();
        this.inFrame = true;
        this.parts = [];
        this.frameBytes = 0;
        i = vt + 1;
        continue;
      }
      const fs = chunk.indexOf(FS, i);
      const vt = chunk.indexOf(VT, i);
      if (vt >= 0 && (fs < 0 || vt < fs)) {
        // a new frame starts before this one ended: the sender gave up on it
        this.opts.log.warn({ peer: this.peer, bytes: this.frameBytes + (vt - i) }, 'MLLP frame without its end (0x1C 0x0D) before a new one: dropped');
        this.parts = [];
        this.frameBytes = 0;
        i = vt + 1;
        continue;
      }
      const end = fs < 0 ? chunk.length : fs;
      const part = chunk.subarray(i, end);
      if (this.frameBytes + part.length > this.opts.maxMessageBytes) {
        const head = Buffer.concat([...this.parts, part]).subarray(0, HEAD_BYTES);
        this.opts.log.warn({ peer: this.peer, bytes: this.frameBytes + part.length, limit: this.opts.maxMessageBytes }, 'MLLP message too large: answered AR, connection closed');
        this.stopped = true;
        this.inFrame = false;
        this.parts = [];
        this.enqueue({ kind: 'oversize', head: Buffer.from(head), bytes: this.frameBytes + part.length });
        return;
      }
      this.parts.push(part);
      this.frameBytes += part.length;
      if (fs < 0) return;
      const bytes = Buffer.concat(this.parts); // a copy: the socket's chunks are not kept
      this.inFrame = false;
      this.parts = [];
      this.frameBytes = 0;
      this.skipCr = true;
      i = fs + 1;
      this.enqueue({ kind: 'message', bytes });
    }
  }

  private enqueue(item: Item): void {
    this.queue.push(item);
    if (this.queue.length >= MAX_QUEUED) this.socket.pause();
    void this.pump();
  }

  private async answer(item: Item): Promise<{ ack: string; controlId?: string; bytes: number }> {
    const { log, onMessage, maxMessageBytes } = this.opts;
    if (item.kind === 'oversize') {
      const header = peekHeader(item.head);
      return { ack: ackMessage(header, 'AR', { text: `The message is larger than ${maxMessageBytes} bytes`, errorCode: 207 }), controlId: header.controlId, bytes: item.bytes };
    }
    const text = item.bytes.toString('utf8');
    const header = peekHeader(text);
    try {
      const ack = await onMessage(text, this.peer);
      if (typeof ack === 'string' && ack.startsWith('MSH')) return { ack, controlId: header.controlId, bytes: item.bytes.length };
      log.error({ peer: this.peer, controlId: header.controlId }, 'MLLP handler gave no ACK: answered AE');
    } catch (err) {
      log.error({ peer: this.peer, controlId: header.controlId, error: errorName(err) }, 'MLLP handler failed: answered AE');
    }
    return { ack: ackMessage(header, 'AE', { text: 'The message could not be processed now: send it again', errorCode: 207 }), controlId: header.controlId, bytes: item.bytes.length };
  }

  private async pump(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length) {
        const item = this.queue.shift()!;
        if (this.queue.length < MAX_QUEUED / 2 && this.socket.isPaused()) this.socket.resume();
        const started = Date.now();
        const { ack, controlId, bytes } = await this.answer(item);
        if (this.socket.destroyed || this.socket.writableEnded) {
          this.opts.log.warn({ peer: this.peer, controlId, bytes }, 'MLLP connection gone before the ACK was sent');
          continue;
        }
        this.socket.write(frame(ack));
        this.answered++;
        this.opts.log.info({ peer: this.peer, controlId, bytes, ack: ackCode(ack), ms: Date.now() - started }, 'MLLP message answered');
        if (item.kind === 'oversize') {
          this.queue.length = 0;
          this.end();
        }
      }
    } finally {
      this.processing = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}

/** Starts an MLLP listener; resolves once it listens. */
export async function startMllpServer(options: MllpServerOptions): Promise<MllpServer> {
  const opts = { ...options, maxMessageBytes: options.maxMessageBytes ?? MAX_MESSAGE_BYTES };
  const connections = new Set<Connection>();
  let closing = false;
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (closing) { socket.destroy(); return; }
    const c = new Connection(socket, opts);
    connections.add(c);
    opts.log.info({ peer: c.peer }, 'MLLP connection');
    void c.closed.then(() => connections.delete(c));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err: NodeJS.ErrnoException) => opts.log.error({ code: err.code ?? err.name }, 'MLLP listener error'));
  const address = server.address() as net.AddressInfo;
  opts.log.info({ host: opts.host, port: address.port }, 'MLLP listening');

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      const all = [...connections];
      for (const c of all) c.stop();
      const timeoutMs = opts.closeTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
      const drained = Promise.all(all.map(async (c) => { await c.whenIdle(); c.end(); await c.closed; }));
      const outcome = await Promise.race([drained.then(() => 'drained' as const), deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        const left = [...connections];
        opts.log.warn({ connections: left.length, timeoutMs }, 'MLLP listener closing: connections still busy are cut');
        for (const c of left) c.socket.destroy();
      }
      await serverClosed;
      opts.log.info({ port: address.port }, 'MLLP listener closed');
    })();
    return closed;
  };
  return { port: address.port, close };
}
