/** Creation of admin accounts (the `hms create-admin` command). */
import type { Knex } from 'knex';
import { insertUser } from '../db/user-repository.js';
import { hashPassword, passwordProblem } from './passwords.js';

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Creates an active admin user; throws with a readable message on bad input or a taken email. */
export async function createAdmin(db: Knex, input: { email: string; password: string; name: string; cost: number }): Promise<string> {
  if (!EMAIL_RE.test(input.email) || input.email.length > 255) throw new Error(`'${input.email}' is not a valid email address`);
  const problem = passwordProblem(input.password);
  if (problem) throw new Error(problem);
  const passwordHash = await hashPassword(input.password, input.cost);
  try {
    return await insertUser(db, { email: input.email, passwordHash, name: input.name, role: 'admin' });
  } catch (err) {
    if ((err as Error).message === 'duplicate-email') throw new Error(`a user with email ${input.email} already exists`);
    throw err;
  }
}
