/** `hms seed` with every resource type's derived rows (the Observation projection). */
import type { Knex } from 'knex';
import '../../fhir/resources/index.js';
import { seed, type SeedOptions, type SeedStats } from './index.js';

export function seedDatabase(db: Knex, opts: Omit<SeedOptions, 'derive'>): Promise<SeedStats> {
  return seed(db, { ...opts });
}
