/**
 * The `hms` command: start (embedded all-in-one), serve, worker, jobs, migrate, create-admin, create-user, seed,
 * audit (verify, export, archives), policy.
 * Entry file only: it parses arguments and starts things.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.js';
import { onShutdownSignals } from './shutdown.js';
import { createDb, migrateLatest } from './db/knex.js';
import { FhirError } from './fhir/outcome.js';

// Each command loads what it needs when it runs (the API server, BullMQ, the registry ...): a
// tool command such as create-user or audit verify starts in a fraction of the time serve takes.
async function usage(): Promise<string> {
  const [{ JOBS_USAGE }, { AUDIT_USAGE }, { IMPORT_USAGE }, { EXPORT_USAGE }, { BACKUP_USAGE }, { CLIENT_TOKEN_USAGE }] = await Promise.all([
    import('./jobs-commands.js'), import('./audit-commands.js'), import('./import-command.js'), import('./export-command.js'), import('./backup-command.js'),
    import('./client-token-command.js'),
  ]);
  return `Usage: hms <command> [options]

Commands:
  start                       embedded all-in-one: migrate, serve the API and run jobs in-process
  serve                       serve the API (run 'hms migrate' first; stateless, run as many as you
                              like; never processes jobs: run 'hms worker' beside it)
${JOBS_USAGE}
  migrate                     apply pending database migrations
  create-admin --email E --password P [--name N]
                              create an admin user (works while the server runs)
  create-user --email E --password P --role R --name N [--patient ID]
              [--department D] [--specialization S] [--phone T]
                              create a user (admin, doctor, nurse, patient, finance); a doctor
                              or nurse is also a FHIR Practitioner (works while the server runs)
  seed --patients N           add N synthetic patients with their records (visits, vitals, labs,
                              conditions, prescriptions, invoices, coverage, appointments)
${AUDIT_USAGE}
${IMPORT_USAGE}
${EXPORT_USAGE}
${BACKUP_USAGE}
${CLIENT_TOKEN_USAGE}
  policy                      print the access policy (role x resource type x interaction) as
                              the Markdown table docs/security.md carries

Configuration comes from environment variables; see README.md.`;
}

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

/** SIGTERM's first step: /health/ready answers 503, and the listener stays open HMS_SHUTDOWN_DRAIN seconds more. */
async function drain(app: { draining: boolean }, config: Config): Promise<void> {
  app.draining = true;
  if (config.HMS_SHUTDOWN_DRAIN > 0) await new Promise((r) => setTimeout(r, config.HMS_SHUTDOWN_DRAIN * 1000));
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
      const { startServer } = await import('./api/server.js');
      const app = await startServer(config);
      onShutdownSignals(async () => { await drain(app, config); await app.close(); }, config.HMS_SHUTDOWN_TIMEOUT);
      return;
    }
    case 'start': {
      await migrate(config);
      const [{ startServer }, { startLocalRunner }, { AuditLog }, { startMllp, workerLogger }] = await Promise.all([
        import('./api/server.js'), import('./workers/local-runner.js'), import('./db/audit-log.js'), import('./workers/worker.js'),
      ]);
      // all-in-one: the same processors and schedules as `hms worker`, run in this process
      const db = createDb(config);
      const log = workerLogger(config);
      const auditLog = new AuditLog(db);
      const runner = startLocalRunner({ db, config, log, auditLog, now: () => new Date() });
      const base = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${config.PORT}`;
      const { wantsDemo, loadDemo, demoBanner } = await import('./demo.js');
      const demo = (await wantsDemo(db, config)) ? await loadDemo(db, config, auditLog, base) : undefined;
      const app = await startServer(config, { db, jobs: runner });
      const mllp = config.HMS_MLLP_PORT !== undefined ? await startMllp({ db, config, log, auditLog, queues: runner, port: config.HMS_MLLP_PORT }) : undefined;
      onShutdownSignals(async () => {
        await drain(app, config);
        await mllp?.close();
        await app.close();
        await runner.close();
        await auditLog.settle();
        await db.destroy();
      }, config.HMS_SHUTDOWN_TIMEOUT);
      process.stdout.write([
        '',
        `HMS is running (${config.DATABASE_URL ? 'MySQL' : `SQLite at ${config.HMS_DATA_DIR}`}, jobs ${runner.mode}).`,
        `  FHIR base:  ${base}/fhir   (CapabilityStatement: ${base}/fhir/metadata)`,
        `  API docs:   ${base}/docs`,
        `  Health:     ${base}/health`,
        `  Lab results: POST ${base}/ingest/lab-results${mllp ? `; MLLP on ${config.HMS_MLLP_HOST}:${mllp.port}` : ''}`,
        ...(demo ? demoBanner(demo, base) : []),
        'Create an admin in another terminal:',
        '  npx hms create-admin --email admin@example.org --password "choose-a-long-one"',
        '',
      ].join('\n'));
      return;
    }
    case 'worker':
      await (await import('./jobs-commands.js')).workerCommand(config, rest);
      return;
    case 'jobs':
      process.exitCode = await (await import('./jobs-commands.js')).jobsCommand(config, rest);
      return;
    case 'create-admin': {
      const { values } = parseArgs({ args: rest, options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' } } });
      if (!values.email || !values.password) fail('create-admin needs --email and --password');
      const db = createDb(config);
      try {
        await migrateLatest(db);
        const { createAdmin } = await import('./auth/admin.js');
        const id = await createAdmin(db, { email: values.email, password: values.password, name: values.name ?? 'Administrator', cost: config.HMS_BCRYPT_COST });
        process.stdout.write(`Created admin ${values.email} (id ${id})\n`);
      } catch (err) {
        fail((err as Error).message);
      } finally {
        await db.destroy();
      }
      return;
    }
    case 'create-user': {
      const { values } = parseArgs({
        args: rest,
        options: Object.fromEntries(['email', 'password', 'role', 'name', 'patient', 'department', 'specialization', 'phone'].map((k) => [k, { type: 'string' as const }])),
      });
      const missing = ['email', 'password', 'role', 'name'].filter((k) => !values[k]);
      if (missing.length) fail(`create-user needs ${missing.map((k) => `--${k}`).join(', ')}`);
      const db = createDb(config);
      try {
        await migrateLatest(db);
        const { createUser, toolActor } = await import('./auth/accounts.js');
        const patient = values.patient === undefined ? undefined : `Patient/${String(values.patient).replace(/^Patient\//, '')}`;
        const user = await createUser({ db, bcryptCost: config.HMS_BCRYPT_COST }, toolActor(db), {
          email: String(values.email), password: String(values.password), role: String(values.role), name: String(values.name), patient,
          department: values.department as string | undefined, specialization: values.specialization as string | undefined, phone: values.phone as string | undefined,
        });
        process.stdout.write(`Created ${user.role} ${user.email} (id ${user.id}${user.practitioner ? `, ${user.practitioner}` : ''}${user.patient ? `, linked to ${user.patient}` : ''})\n`);
      } catch (err) {
        fail(err instanceof FhirError ? `${err.message} (${err.status})` : (err as Error).message);
      } finally {
        await db.destroy();
      }
      return;
    }
    case 'policy': {
      // the registry's definitions describe the subsets, element groups and views the policy names
      await import('./fhir/resources/index.js');
      const { POLICY_TYPES, policyMarkdown } = await import('./auth/policy.js');
      const { POLICY_WORDING } = await import('./fhir/access.js');
      process.stdout.write(`${policyMarkdown(POLICY_TYPES, POLICY_WORDING)}\n`);
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
        const { seedDatabase } = await import('./db/seed/seed-all.js');
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
    case 'audit':
      process.exitCode = await (await import('./audit-commands.js')).auditCommand(config, rest);
      return;
    case 'import':
      process.exitCode = await (await import('./import-command.js')).importCommand(config, rest);
      return;
    case 'export':
      process.exitCode = await (await import('./export-command.js')).exportCommand(config, rest);
      return;
    case 'client-token':
      process.exitCode = await (await import('./client-token-command.js')).clientTokenCommand(rest);
      return;
    case 'backup':
      process.exitCode = await (await import('./backup-command.js')).backupCommand(config, rest);
      return;
    case 'restore':
      process.exitCode = await (await import('./backup-command.js')).restoreCommand(config, rest);
      return;
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(`${await usage()}\n`);
      return;
    default:
      fail(`unknown command '${command}'\n${await usage()}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`hms: ${(err as Error).message}\n`);
  process.exit(1);
});
