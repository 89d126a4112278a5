/**
 * The `hms` command: start (embedded all-in-one), serve, migrate, create-admin, seed.
 * Entry file only: it parses arguments and starts things.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createDb, migrateLatest } from './db/knex.js';
import { startServer } from './api/server.js';
import { startLocalRunner } from './workers/local-runner.js';
import { createAdmin } from './auth/admin.js';
import { seedDatabase } from './db/seed/seed-all.js';

const USAGE = `Usage: hms <command> [options]

Commands:
  start                       embedded all-in-one: migrate, serve the API and run jobs in-process
  serve                       serve the API (run 'hms migrate' first; stateless, run as many as you like)
  migrate                     apply pending database migrations
  create-admin --email E --password P [--name N]
                              create an admin user (works while the server runs)
  seed --patients N           add N synthetic patients with their records (visits, vitals, labs,
                              conditions, prescriptions, invoices, coverage, appointments)

Configuration comes from environment variables; see README.md.`;

function fail(message: string): never {
  process.stderr.write(`hms: ${message}\n`);
  process.exit(1);
}

async function migrate(config: Config): Promise<void> {
  const db = createDb(config);
  try {
    const applied = await migrateLatest(db);
    process.stdout.write(applied.length ? `Applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'Database is up to date\n');
  } finally {
    await db.destroy();
  }
}

async function checkMigrated(config: Config): Promise<void> {
  const db = createDb(config);
  try {
    const [, pending] = (await db.migrate.list()) as [unknown[], unknown[]];
    if (pending.length) fail(`${pending.length} migration(s) pending: run 'hms migrate' first`);
  } finally {
    await db.destroy();
  }
}

function onSignals(close: () => Promise<void>): void {
  let closing = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (closing) return;
      closing = true;
      close().then(() => process.exit(0), () => process.exit(1));
    });
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  switch (command) {
    case 'migrate':
      await migrate(config);
      return;
    case 'serve': {
      await checkMigrated(config);
      const app = await startServer(config);
      onSignals(() => app.close());
      return;
    }
    case 'start': {
      await migrate(config);
      const runner = startLocalRunner();
      const app = await startServer(config);
      onSignals(async () => { await app.close(); await runner.close(); });
      const base = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${config.PORT}`;
      process.stdout.write([
        '',
        `HMS is running (${config.DATABASE_URL ? 'MySQL' : `SQLite at ${config.HMS_DATA_DIR}`}, jobs ${runner.mode}).`,
        `  FHIR base:  ${base}/fhir   (CapabilityStatement: ${base}/fhir/metadata)`,
        `  API docs:   ${base}/docs`,
        `  Health:     ${base}/health`,
        'Create an admin in another terminal:',
        '  npx hms create-admin --email admin@example.org --password "choose-a-long-one"',
        '',
      ].join('\n'));
      return;
    }
    case 'create-admin': {
      const { values } = parseArgs({ args: rest, options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' } } });
      if (!values.email || !values.password) fail('create-admin needs --email and --password');
      const db = createDb(config);
      try {
        await migrateLatest(db);
        const id = await createAdmin(db, { email: values.email, password: values.password, name: values.name ?? 'Administrator', cost: config.HMS_BCRYPT_COST });
        process.stdout.write(`Created admin ${values.email} (id ${id})\n`);
      } catch (err) {
        fail((err as Error).message);
      } finally {
        await db.destroy();
      }
      return;
    }
    case 'seed': {
      const { values } = parseArgs({ args: rest, options: { patients: { type: 'string', default: '100' }, batch: { type: 'string', default: '200' } } });
      const patients = Number(values.patients);
      const batch = Number(values.batch);
      if (!Number.isInteger(patients) || patients < 1) fail('seed --patients needs a whole number >= 1');
      if (!Number.isInteger(batch) || batch < 1) fail('seed --batch needs a whole number >= 1');
      const db = createDb(config);
      try {
        await migrateLatest(db);
        const stats = await seedDatabase(db, {
          patients, batch,
          progress: (done, rows) => { if (done % 2000 === 0) process.stdout.write(`  ${done} patients, ${rows} rows\n`); },
        });
        process.stdout.write(`Seeded ${stats.patients} patients: ${stats.rows} rows + ${stats.indexRows} search index rows in ${stats.seconds.toFixed(1)} s (${Math.round(stats.rowsPerSecond)} rows/s)\n`);
      } finally {
        await db.destroy();
      }
      return;
    }
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE + '\n');
      return;
    default:
      fail(`unknown command '${command}'\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`hms: ${(err as Error).message}\n`);
  process.exit(1);
});
