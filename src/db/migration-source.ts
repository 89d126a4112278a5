import type { Knex } from 'knex';
import { migrations } from '../../migrations/index.js';

/** Knex migration source over the explicit list in migrations/index.ts (works from src and dist alike). */
export const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    return Object.keys(migrations);
  },
  getMigrationName(name) {
    return name;
  },
  async getMigration(name) {
    return migrations[name]!;
  },
};
