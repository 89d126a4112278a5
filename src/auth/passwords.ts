/** Password hashing with bcrypt (cost >= 12). Hashing is deliberately slow: login and admin tools only. */
import bcrypt from 'bcrypt';

export const MIN_PASSWORD_LENGTH = 8;
/** bcrypt reads at most 72 bytes; longer passwords would be silently cut, so they are refused. */
export const MAX_PASSWORD_BYTES = 72;

/** Why a password is unacceptable, or undefined when it is fine. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH) return `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return `password must be at most ${MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)`;
  return undefined;
}

export async function hashPassword(password: string, cost: number): Promise<string> {
  if (cost < 12) throw new Error('bcrypt cost must be at least 12');
  return bcrypt.hash(password, cost);
}

let dummyHash: Promise<string> | undefined;

/**
 * Compares a password with a hash; with no hash (unknown user) it compares against a dummy hash
 * of the same cost, so both failures take the same time.
 */
export async function verifyPassword(password: string, hash: string | undefined, cost: number): Promise<boolean> {
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
  // an account without a password (a Practitioner created through FHIR: '!') takes as long as an unknown email
  if (!hash || !/^\$2[aby]\$/.test(hash)) {
    dummyHash ??= bcrypt.hash('hms-timing-equaliser', cost);
    await bcrypt.compare(password, await dummyHash);
    return false;
  }
  return bcrypt.compare(password, hash);
}

/** Prepares the dummy hash ahead of the first failed login for an unknown email. */
export function warmPasswordTiming(cost: number): void {
  dummyHash ??= bcrypt.hash('hms-timing-equaliser', cost);
}
