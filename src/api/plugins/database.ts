/** Decorates the app with the database and the security log; closes them with the app. */
import fp from 'fastify-plugin';
import type { Knex } from 'knex';
import { AuditLog } from '../../db/audit-log.js';
import { createDb } from '../../db/knex.js';
import type { Config } from '../../config.js';

declare module 'fastify' {
  interface FastifyInstance {
    db: Knex;
    auditLog: AuditLog;
    config: Config;
  }
}

export interface DatabasePluginOptions {
  config: Config;
  /** An open database to use (not closed with the app); absent = open one from the config. */
  db?: Knex;
}

export default fp<DatabasePluginOptions>(async (app, opts) => {
  const db = opts.db ?? createDb(opts.config, { statementTimeout: opts.config.HMS_STATEMENT_TIMEOUT });
  app.decorate('db', db);
  app.decorate('config', opts.config);
  app.decorate('auditLog', new AuditLog(db));
  app.addHook('onClose', async () => {
    await app.auditLog.settle();
    if (!opts.db) await db.destroy();
  });
}, { name: 'hms-database' });
