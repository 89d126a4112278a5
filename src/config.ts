import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { schemaPath } from './paths.js';

/** Validated service configuration; see schemas/config.schema.json for each variable. */
export interface Config {
  PORT: number;
  HOST: string;
  HMS_DATA_DIR: string;
  DATABASE_URL?: string;
  REDIS_URL?: string;
  LOG_LEVEL: string;
  HMS_BASE_URL?: string;
  HMS_BODY_LIMIT: number;
  HMS_JSON_MAX_DEPTH: number;
  HMS_SESSION_TTL: number;
  HMS_SESSION_IDLE: number;
  HMS_SESSION_CACHE: number;
  HMS_BCRYPT_COST: number;
  HMS_LOGIN_MAX_FAILURES: number;
  HMS_LOGIN_MAX_FAILURES_PER_IP: number;
  HMS_LOGIN_WINDOW: number;
  HMS_BREAK_GLASS_MINUTES: number;
  HMS_MAX_COUNT: number;
  HMS_BUNDLE_MAX_ENTRIES: number;
  HMS_EXPORT_DIR: string;
  HMS_EXPORT_RETENTION_MINUTES: number;
  HMS_DB_POOL_MAX: number;
  HMS_STATEMENT_TIMEOUT: number;
  HMS_SEARCH_MAX_PARAMS: number;
  HMS_SEARCH_MAX_REPEATS: number;
  HMS_SEARCH_MAX_VALUES: number;
  HMS_SEARCH_MAX_INCLUDES: number;
  HMS_SEARCH_MAX_VALUE_LENGTH: number;
  HMS_RATE_LIMIT: number;
  HMS_RATE_LIMIT_WINDOW: number;
  HMS_CORS_ORIGINS?: string;
  HMS_CLIENT_TOKEN_TTL: number;
  HMS_JWKS_URL_ALLOWLIST?: string;
  HMS_QUEUE_PREFIX: string;
  HMS_WORKER_CONCURRENCY: number;
  HMS_JOB_ATTEMPTS: number;
  HMS_JOB_LOCK_SECONDS: number;
  HMS_OUTBOX_SWEEP_SECONDS: number;
  HMS_OUTBOX_STALE_SECONDS: number;
  HMS_OVERDUE_SCHEDULE: string;
  HMS_OVERDUE_GRACE_DAYS: number;
  HMS_OVERDUE_BATCH: number;
  HMS_SESSION_EXPIRY_SCHEDULE: string;
  HMS_SESSION_RETENTION_DAYS: number;
  HMS_AUDIT_ARCHIVE_SCHEDULE: string;
  HMS_EXPORT_EXPIRY_SCHEDULE: string;
  HMS_AUDIT_RETENTION_DAYS: number;
  HMS_AUDIT_ARCHIVE_DIR?: string;
  HMS_MLLP_PORT?: number;
  HMS_MLLP_HOST: string;
  HMS_MLLP_CLIENT?: string;
  HMS_LAB_FACILITIES?: string;
  HMS_METRICS: 'on' | 'off';
  HMS_METRICS_PORT?: number;
  HMS_METRICS_HOST: string;
  HMS_MAX_EVENT_LOOP_DELAY: number;
  HMS_SHUTDOWN_TIMEOUT: number;
  HMS_SHUTDOWN_DRAIN: number;
  HMS_BACKUP_DIR?: string;
  HMS_BINLOG_DIR?: string;
  HMS_BACKUP_KEYS?: string;
  HMS_BACKUP_RETENTION_DAYS: number;
  HMS_BACKUP_OFFSITE_DIR?: string;
  HMS_BACKUP_OFFSITE_COMMAND?: string;
  HMS_DEMO: '0' | '1';
}

/** Thrown when an environment variable does not satisfy the config schema. */
export class ConfigError extends Error {}

const configSchema = JSON.parse(readFileSync(schemaPath('config.schema.json'), 'utf8')) as {
  properties: Record<string, { type?: string }>;
};

/** A value fit to echo in an error: the password of a URL (DATABASE_URL, REDIS_URL) masked, as errors end up in logs. */
function withoutPassword(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, '$1***@') : value;
}

/**
 * Reads the configuration from an environment (process.env by default), coercing numbers,
 * applying defaults and failing with one line that names the offending variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.properties)) {
    const raw = env[key];
    if (raw !== undefined && raw !== '') input[key] = raw;
  }
  Object.assign(input, overrides);
  const ajv = new Ajv({ useDefaults: true, coerceTypes: true, allErrors: false, strict: false });
  const validate = ajv.compile(configSchema);
  if (!validate(input)) {
    const err = validate.errors![0]!;
    const name = err.instancePath.replace(/^\//, '') || String(err.params?.missingProperty ?? '');
    throw new ConfigError(`Invalid configuration: ${name} ${err.message} (got ${JSON.stringify(withoutPassword(input[name]))})`);
  }
  const config = input as unknown as Config;
  config.HMS_DATA_DIR = resolve(config.HMS_DATA_DIR);
  config.HMS_EXPORT_DIR = resolve(config.HMS_EXPORT_DIR ?? resolve(config.HMS_DATA_DIR, 'exports'));
  config.HMS_AUDIT_ARCHIVE_DIR = resolve(config.HMS_AUDIT_ARCHIVE_DIR ?? resolve(config.HMS_DATA_DIR, 'audit-archive'));
  config.HMS_BACKUP_DIR = resolve(config.HMS_BACKUP_DIR ?? resolve(config.HMS_DATA_DIR, 'backups'));
  config.HMS_BINLOG_DIR = resolve(config.HMS_BINLOG_DIR ?? resolve(config.HMS_BACKUP_DIR, 'binlogs'));
  if (config.HMS_BACKUP_OFFSITE_DIR) config.HMS_BACKUP_OFFSITE_DIR = resolve(config.HMS_BACKUP_OFFSITE_DIR);
  if (config.HMS_BASE_URL) config.HMS_BASE_URL = config.HMS_BASE_URL.replace(/\/+$/, '');
  return config;
}
