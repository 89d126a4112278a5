import type { Access } from './access.js';

/**
 * The references a transaction has already found to exist and to be within the writer's reach,
 * so that the 200 entries of a patient's Bundle that name one Patient and a few Encounters look
 * each of them up once, not 200 times. Kept for one transaction only (FhirContext.verified); a
 * resource the transaction writes again (update, patch) is forgotten and looked up afresh. A
 * transaction runs its deletes first, so nothing it found is deleted by it afterwards. What was
 * found holds for the caller whose access checked it (`for`): the server's own context inside the
 * transaction (an eligibility answer) neither reads nor adds to it.
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

  /** The resource was written again in the transaction: what was found of it may no longer hold. */
  forget(target: string): void {
    this.passed.delete(target);
  }

  /** The caller's reach may have changed (a write to what assigns patients): nothing found holds. */
  clear(): void {
    this.passed.clear();
  }
}
