import type { Access } from './access.js';

/**
 * The references a transaction has already found to exist and to be within the writer's reach,
 * so that the 200 entries of a patient's Bundle that name one Patient and a few Encounters look
 * each of them up once, not 200 times. Kept for one transaction only (FhirContext.verified); a
 * resource the transaction writes again (update, patch) is forgotten and looked up afresh. A
 * transaction runs its deletes first, so nothing it found is deleted by it afterwards. What was
 * found holds for the caller whose access checked it (`for`): the server's own context inside the
 * transaction (an eligibility answer) neither reads nor adds to it. It also holds what the
 * transaction created and the conditional references it resolved, so a Synthea record's 200
 * `Practitioner?identifier=...` references are searched for once.
 */
export class VerifiedReferences {
  constructor(private readonly access: Access) {}

  /** This cache when `access` is the one it was made for, else none. */
  for(access: Access): VerifiedReferences | undefined {
    return access === this.access ? this : undefined;
  }

  /** `Type/id` -> the shapes of check it passed (table, row filter, narrowing). */
  private readonly passed = new Map<string, Set<string>>();

  has(target: string, check: string): boolean {
    return this.passed.get(target)?.has(check) ?? false;
  }

  add(target: string, check: string): void {
    const checks = this.passed.get(target);
    if (checks) checks.add(check);
    else this.passed.set(target, new Set([check]));
  }

  /** Resources the transaction created (`Type/id`): they exist, undeleted, until it commits. */
  private readonly made = new Set<string>();

  /** Conditional references resolved (`Type?criteria` -> id), until the transaction writes that type. */
  private readonly resolved = new Map<string, string>();

  /**
   * The transaction created the resource. For an unrestricted caller (an admin, the server: no
   * narrowing by reach) a reference to it needs no lookup: it exists and is not deleted (a
   * transaction runs its deletes first).
   */
  created(target: string): void {
    this.made.add(target);
  }

  /** Whether a reference to `target` needs no lookup: created here, and the caller reaches everything. */
  createdHere(target: string): boolean {
    return this.access.unrestricted && this.made.has(target);
  }

  /** The id a conditional reference resolved to earlier in this transaction, if nothing of its type was written since. */
  resolution(key: string): string | undefined {
    return this.resolved.get(key);
  }

  resolve(key: string, id: string): void {
    this.resolved.set(key, id);
  }

  /** The resource was written again in the transaction: what was found of it may no longer hold. */
  forget(target: string): void {
    this.passed.delete(target);
  }

  /** A resource of `type` was written: a conditional reference to the type may now match another. */
  wroteType(type: string): void {
    for (const key of this.resolved.keys()) if (key.startsWith(`${type}?`)) this.resolved.delete(key);
  }

  /** The caller's reach may have changed (a write to what assigns patients): nothing found holds. */
  clear(): void {
    this.passed.clear();
    this.resolved.clear();
  }
}
