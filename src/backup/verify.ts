/**
 * `hms backup verify`: restores a backup (the newest by default) into a scratch database (MariaDB:
 * a new database on the same server; SQLite: a temporary file), then checks that each table has
 * the manifest's row count and that the security log's hash chain is intact across the backup's
 * audit archive files and the restored table (as `hms audit verify` walks it). The scratch copy
 * is removed afterwards, whatever the outcome.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { createDb } from '../db/knex.js';
import { verifyAuditChain, type ChainVerification } from '../db/audit-chain.js';
import { findBackup, type BackupManifest } from './backup.js';
import { restoreBackup } from './restore.js';
import { withDatabase } from './mysql-tools.js';
import { parseBackupKeys } from './crypt.js';

export interface BackupVerification {
  ok: boolean;
  backup: BackupManifest;
  /** Rows counted in the restored copy. */
  rows: number;
  /** Tables whose count differs from the manifest's. */
  mismatches: { table: string; manifest: number; restored: number }[];
  audit: ChainVerification;
  restoreSeconds: number;
}

export async function verifyBackup(config: Config, opts: { from?: string } = {}): Promise<BackupVerification> {
  const backup = await findBackup(config, opts.from);
  const temp = await mkdtemp(join(tmpdir(), 'hms-verify-'));
  const archiveDir = join(temp, 'audit-archive');
  const scratch = backup.manifest.engine === 'mysql' ? `hms_verify_${randomBytes(5).toString('hex')}` : undefined;
  const t0 = performance.now();
  try {
    await restoreBackup(config, { from: backup.dir, archiveDir, ...(scratch ? { database: scratch } : { dataDir: join(temp, 'data') }) });
    const restoreSeconds = (performance.now() - t0) / 1000;
    const db = createDb(scratch ? { ...config, DATABASE_URL: withDatabase(config.DATABASE_URL!, scratch), HMS_DB_POOL_MAX: 2 } : { ...config, DATABASE_URL: undefined, HMS_DATA_DIR: join(temp, 'data') });
    try {
      const mismatches: BackupVerification['mismatches'] = [];
      let rows = 0;
      for (const [table, expected] of Object.entries(backup.manifest.rows)) {
        const n = Number(((await db(table).count({ n: '*' }).first()) as { n: number | string }).n);
        rows += n;
        if (n !== expected) mismatches.push({ table, manifest: expected, restored: n });
      }
      const audit = await verifyAuditChain(db, { archiveDir, keys: parseBackupKeys(config.HMS_BACKUP_KEYS) });
      return { ok: mismatches.length === 0 && audit.intact, backup: backup.manifest, rows, mismatches, audit, restoreSeconds };
    } finally {
      await db.destroy();
    }
  } finally {
    if (scratch) {
      const admin = createDb({ ...config, HMS_DB_POOL_MAX: 1 });
      await admin.raw(`DROP DATABASE IF EXISTS \`${scratch}\``).finally(() => admin.destroy());
    }
    await rm(temp, { recursive: true, force: true });
  }
}
