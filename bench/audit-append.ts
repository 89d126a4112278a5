/**
 * The cost of security-log appends: N group-committed entries recorded by C concurrent callers
 * (each waits for its own row, as a request does), then the same number inside data transactions
 * (one entry per transaction, as a write does). Prints rows per second. docs/audit-log.md.
 *
 *   DATABASE_URL=mysql://root@127.0.0.1:3306/hms_audit_bench npx tsx bench/audit-append.ts
 *
 * Environment: DATABASE_URL (unset: SQLite in a temp dir), AUDIT_BENCH_ROWS (5000),
 * AUDIT_BENCH_CALLERS (10), AUDIT_BENCH_TRX_ROWS (1000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { createDb, migrateLatest } from '../src/db/knex.js';
import { AuditLog, type SecurityLogEntry } from '../src/db/audit-log.js';
import { inTransaction } from '../src/db/transactions.js';

const rows = Number(process.env.AUDIT_BENCH_ROWS ?? 5000);
const callers = Number(process.env.AUDIT_BENCH_CALLERS ?? 10);
const trxRows = Number(process.env.AUDIT_BENCH_TRX_ROWS ?? 1000);

const dir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'hms-audit-bench-'));
const config = loadConfig(process.env, { LOG_LEVEL: 'silent', ...(dir ? { HMS_DATA_DIR: dir } : {}) });
const db = createDb(config);

/** Runs `each` rows/callers times in each of `callers` concurrent loops; returns seconds. */
async function timed(total: number, each: (i: number) => Promise<void>): Promise<number> {
  const per = Math.ceil(total / callers);
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: callers }, async (_, c) => {
    for (let i = 0; i < per && c * per + i < total; i++) await each(c * per + i);
  }));
  return Number(process.hrtime.bigint() - start) / 1e9;
}

try {
  await migrateLatest(db);
  const userId = randomUUID();
  await db('users').insert({ id: userId, email: `audit-bench-${userId}@bench.example.org`, password_hash: 'x', name: 'Audit bench', role: 'doctor' });
  const entry = (i: number): SecurityLogEntry => ({
    userId, role: 'doctor', action: 'read', resourceType: 'Patient', resourceId: randomUUID(), ipAddress: '127.0.0.1',
    userAgent: 'audit-bench', success: true, requestId: `req-${i}`, additionalData: { method: 'GET', route: '/fhir/Patient/:id', i },
  });
  const log = new AuditLog(db);
  await timed(callers * 10, (i) => log.record(entry(i))); // warm the pool
  let writes = 0; // INSERT statements into security_logs: one per group-committed batch
  db.on('query', (q: { sql: string }) => { if (/^insert into .security_logs/i.test(q.sql)) writes++; });
  const grouped = await timed(rows, (i) => log.record(entry(i)));
  const batches = writes;
  const inTrx = await timed(trxRows, (i) => inTransaction(db, (trx) => log.record(entry(i), trx)));
  const dialect = config.DATABASE_URL ? 'mysql' : 'sqlite';
  process.stdout.write(`${dialect}: ${rows} group-committed appends from ${callers} callers in ${grouped.toFixed(2)} s (${Math.round(rows / grouped)} rows/s, ${batches} batches); `
    + `${trxRows} appends in their own data transactions from ${callers} callers in ${inTrx.toFixed(2)} s (${Math.round(trxRows / inTrx)} rows/s)\n`);
} finally {
  await db.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
