/**
 * Revocations that every API process must see at once: a suspended user, a changed password, a
 * revoked client. The database is changed first (sessions and tokens end there); then the subject
 * (`user:<id>`, `client:<id>`) is published so that every process drops what its authentication
 * cache holds for it. With REDIS_URL the message travels over Redis pub/sub; the embedded default
 * runs one process, so an in-process emitter is enough. A process that cannot hear revocations
 * (MySQL without Redis, or while its subscription is down) must not cache authentications at all.
 */
import { EventEmitter } from 'node:events';
import { redisClient } from '../workers/redis.js';

export const REVOCATION_CHANNEL = 'hms:auth:revoked';

export interface RevocationBus {
  /** Tells every process, this one included, to forget what it cached for the subject. */
  publish(subject: string): Promise<void>;
  /** Called for every subject published (by any process); `'*'` means forget everything. */
  subscribe(listener: (subject: string) => void): void;
  /** Whether revocations by other processes reach this one now (only then may it cache). */
  readonly live: boolean;
  close(): Promise<void>;
}

export const userSubject = (userId: string): string => `user:${userId}`;
/** A logged-out session, by the SHA-256 of its token (what the database keeps too; never the token). */
export const SESSION_SUBJECT = 'session:';
export const sessionSubject = (tokenHash: string): string => `${SESSION_SUBJECT}${tokenHash}`;
export const clientSubject = (clientId: string): string => `client:${clientId}`;

/** One process alone on its database (embedded SQLite): revocations are local. */
export function localBus(live: boolean): RevocationBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    live,
    async publish(subject) { emitter.emit('revoked', subject); },
    subscribe(listener) { emitter.on('revoked', listener); },
    async close() { emitter.removeAllListeners(); },
  };
}

interface BusLogger { warn(obj: object, msg: string): void; error(obj: object, msg: string): void }

/**
 * Revocations over Redis pub/sub. The subscriber reconnects forever; while it is not subscribed
 * the bus is not live, and when it comes back every listener is told to forget everything, since
 * messages published meanwhile were lost.
 */
export function redisBus(url: string, log: BusLogger): RevocationBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const subscriber = redisClient(url, { maxRetriesPerRequest: null, lazyConnect: false });
  const publisher = redisClient(url, { maxRetriesPerRequest: 2, connectTimeout: 2000 });
  let subscribed = false;
  let everSubscribed = false;
  subscriber.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'revocation subscriber: redis error'));
  publisher.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'revocation publisher: redis error'));
  subscriber.on('ready', () => {
    subscriber.subscribe(REVOCATION_CHANNEL).then(() => {
      if (everSubscribed) emitter.emit('revoked', '*');
      subscribed = true;
      everSubscribed = true;
    }, (err: Error) => log.warn({ err: { message: err.message } }, 'revocation subscriber: subscribe failed'));
  });
  const down = (): void => {
    if (subscribed) emitter.emit('revoked', '*');
    subscribed = false;
  };
  subscriber.on('close', down);
  subscriber.on('end', down);
  subscriber.on('message', (_channel: string, message: string) => emitter.emit('revoked', message));
  return {
    get live() { return subscribed; },
    async publish(subject) {
      emitter.emit('revoked', subject);
      try {
        await publisher.publish(REVOCATION_CHANNEL, subject);
      } catch (err) {
        // the database change stands; other processes stop caching while Redis is unreachable
        log.error({ err: { message: (err as Error).message } }, 'revocation could not be published');
      }
    },
    subscribe(listener) { emitter.on('revoked', listener); },
    async close() {
      emitter.removeAllListeners();
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}
