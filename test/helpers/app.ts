/**
 * Builds the real app for a test file: the database DATABASE_URL names (MariaDB in CI) or a
 * fresh embedded SQLite file, migrated, plus a logged-in admin. Nothing is mocked.
 */
import type { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Knex } from 'knex';
import { loadConfig, type Config } from '../../src/config.js';
import { createDb, migrateLatest } from '../../src/db/knex.js';
import { buildApp } from '../../src/api/app.js';
import { createAdmin } from '../../src/auth/admin.js';
import { startSession } from '../../src/auth/sessions.js';

export interface TestApp {
  app: FastifyInstance;
  db: Knex;
  config: Config;
  token: string;
  userId: string;
  /** inject with the admin's bearer token and FHIR JSON content type. */
  fhir(opts: InjectOptions & { token?: string | null }): Promise<LightMyRequestResponse>;
}

/** A test-scoped config: embedded SQLite in a temp dir unless DATABASE_URL is set. */
export function testConfig(t: Test, overrides: Partial<Config> = {}): Config {
  const dir = mkdtempSync(join(tmpdir(), 'hms-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // no overload refusals (plugins/overload.ts) in tests: a loaded CI machine lags; metrics.test.ts turns them on
  return loadConfig(process.env, { HMS_DATA_DIR: dir, LOG_LEVEL: 'silent', HMS_MAX_EVENT_LOOP_DELAY: 0, ...overrides });
}

/** A migrated database for a test (closed at teardown). */
export async function testDb(t: Test, config = testConfig(t)): Promise<Knex> {
  const db = createDb(config, { statementTimeout: config.HMS_STATEMENT_TIMEOUT });
  t.teardown(() => db.destroy());
  await migrateLatest(db);
  return db;
}

/** Builds the app on a migrated database with an admin session. */
export async function testApp(t: Test, overrides: Partial<Config> = {}): Promise<TestApp> {
  const config = testConfig(t, overrides);
  const db = await testDb(t, config);
  const app = await buildApp({ config, db, logger: false });
  t.teardown(() => app.close());
  const email = `admin-${randomUUID()}@test.example.org`;
  const userId = await createAdmin(db, { email, password: 'correct horse battery', name: 'Test Admin', cost: 12 });
  const token = await startSession(db, userId, { ttlSeconds: 3600 });
  const fhir = (opts: InjectOptions & { token?: string | null }) => {
    const { token: tok, ...rest } = opts;
    const headers: Record<string, string> = { ...(rest.headers as Record<string, string>) };
    if (tok !== null) headers.authorization ??= `Bearer ${tok ?? token}`;
    if (rest.payload !== undefined && typeof rest.payload === 'object') headers['content-type'] ??= 'application/fhir+json';
    return app.inject({ ...rest, headers });
  };
  return { app, db, config, token, userId, fhir };
}

/**
 * MySQL: a new empty database for one test (dropped at teardown), for tests that need a security
 * log or tables of their own; SQLite: undefined (each test config has its own file).
 */
export async function privateDatabase(t: Test, prefix: string): Promise<string | undefined> {
  const shared = process.env.DATABASE_URL;
  if (!shared) return undefined;
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = createDb({ DATABASE_URL: shared, HMS_DATA_DIR: '', HMS_DB_POOL_MAX: 1 });
  await admin.raw(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  t.teardown(async () => {
    await admin.raw(`DROP DATABASE IF EXISTS ${name}`);
    await admin.destroy();
  });
  const url = new URL(shared);
  url.pathname = `/${name}`;
  return url.toString();
}
