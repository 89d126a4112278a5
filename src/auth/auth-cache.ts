/**
 * Authentications this process checked in the last few seconds (HMS_SESSION_CACHE), so that a
 * burst of requests with one token costs one lookup. Entries are keyed by the token's hash and
 * tagged with their subject (`user:<id>`, `client:<id>`): a revocation drops every entry of its
 * subject at once, and a lookup that started before the revocation cannot put one back.
 */
export interface CacheEntry<V> {
  value: V;
  subject: string;
  /** Epoch ms after which the entry must not be served. */
  validUntil: number;
}

export class AuthCache<V> {
  private readonly entries = new Map<string, CacheEntry<V>>();
  /** When each subject (or '*': everything) was last revoked; lookups started before that are not cached. */
  private readonly revokedAt = new Map<string, number>();
  private everythingRevokedAt = 0;

  /**
   * @param ttlMs how long an entry may be served (0: nothing is cached)
   * @param live whether revocations from every process reach this cache now; when not, it caches nothing
   */
  constructor(private readonly ttlMs: number, private readonly live: () => boolean = () => true, private readonly maxEntries = 10_000) {}

  get(tokenHash: string, now: number): V | undefined {
    if (!this.live()) return undefined;
    const hit = this.entries.get(tokenHash);
    if (hit && hit.validUntil > now) return hit.value;
    if (hit) this.entries.delete(tokenHash);
    return undefined;
  }

  /**
   * Caches a lookup that started at `lookedUpAt` (epoch ms) and is valid until `expiresAt`, unless
   * its subject (or everything) was revoked since the lookup started.
   */
  set(tokenHash: string, value: V, subject: string, lookedUpAt: number, expiresAt: number): void {
    if (this.ttlMs <= 0 || !this.live()) return;
    const revoked = Math.max(this.revokedAt.get(subject) ?? 0, this.revokedAt.get(tokenHash) ?? 0, this.everythingRevokedAt);
    if (revoked >= lookedUpAt) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(tokenHash, { value, subject, validUntil: Math.min(lookedUpAt + this.ttlMs, expiresAt) });
  }

  /** Drops one token (a logout through this process) and keeps a lookup already in flight from caching it. */
  forget(tokenHash: string, now = Date.now()): void {
    this.entries.delete(tokenHash);
    this.revoke(tokenHash, now);
  }

  /** Drops every entry of a subject ('*': all of them; a token hash: that token) and keeps lookups already in flight out. */
  revoke(subject: string, now = Date.now()): void {
    if (subject === '*') {
      this.everythingRevokedAt = now;
      this.entries.clear();
      this.revokedAt.clear();
      return;
    }
    for (const [k, e] of this.entries) if (e.subject === subject) this.entries.delete(k);
    if (this.revokedAt.size >= this.maxEntries) this.revokedAt.delete(this.revokedAt.keys().next().value!);
    this.revokedAt.delete(subject);
    this.revokedAt.set(subject, now);
    // a revocation older than the longest lookup-to-cache window no longer matters
    const horizon = now - Math.max(this.ttlMs, 60_000);
    for (const [k, at] of this.revokedAt) { if (at >= horizon) break; this.revokedAt.delete(k); }
  }
}
