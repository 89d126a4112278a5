/** Creation of admin accounts (the `hms create-admin` command): a thin wrapper over the account service. */
import type { Knex } from 'knex';
import { FhirError } from '../fhir/outcome.js';
import { createUser, toolActor } from './accounts.js';

/** Creates an active admin user; throws with a readable message on bad input or a taken email. */
export async function createAdmin(db: Knex, input: { email: string; password: string; name: string; cost: number }): Promise<string> {
  try {
    const user = await createUser({ db, bcryptCost: input.cost }, toolActor(db), { email: input.email, password: input.password, name: input.name, role: 'admin' });
    return user.id;
  } catch (err) {
    if (err instanceof FhirError && err.status === 409) throw new Error(`a user with email ${input.email} already exists`);
    if (err instanceof FhirError) throw new Error(err.message);
    throw err;
  }
}
