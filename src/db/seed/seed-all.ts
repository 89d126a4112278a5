/**
 * `hms seed` with the rows other resource types derive from the seed tables: the Observation
 * projection of every vitals measurement and lab result.
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import '../../fhir/resources/index.js';
import { seed, type SeedOptions, type SeedStats } from './index.js';
import type { Row } from './generate.js';
import { observationRowsForVitals } from '../../mappers/vitals-mapper.js';
import { observationRowForLab } from '../../mappers/lab-result-mapper.js';

function observations(tables: Record<string, Row[]>): Record<string, Row[]> {
  return {
    observations: [
      ...(tables.vitals ?? []).flatMap((row) => observationRowsForVitals(row, uuidv7)),
      ...(tables.lab_results ?? []).map((row) => observationRowForLab(row, uuidv7)),
    ],
  };
}

export function seedDatabase(db: Knex, opts: Omit<SeedOptions, 'derive'>): Promise<SeedStats> {
  return seed(db, { ...opts, derive: observations });
}
