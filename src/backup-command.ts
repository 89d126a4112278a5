/**
 * `hms backup ...` and `hms restore ...` (docs/backup.md). Each returns the process's exit code.
 */
import { parseArgs } from 'node:util';
import type { Config } from './config.js';
import { listBackups, takeBackup } from './backup/backup.js';
import { restoreBackup } from './backup/restore.js';
import { verifyBackup } from './backup/verify.js';
import { shipBinlogs } from './backup/binlogs.js';
import { onShutdownSignals } from './shutdown.js';

export const BACKUP_USAGE = `  backup                      a consistent full backup (SQLite: online backup API; MariaDB:
                              mariadb-dump --single-transaction with the binlog position),
                              gzip + SHA-256 (+ AES-256-GCM with HMS_BACKUP_KEYS) into
                              HMS_BACKUP_DIR, then the offsite copy and retention
  backup list                 the backups, oldest first
  backup verify [--from B]    restore the newest backup (or B) into a scratch database and check
                              row counts and the audit chain; exit 1 when they do not hold
  backup binlogs              ship the MariaDB binlog into HMS_BINLOG_DIR continuously (run it as
                              a service beside the database: it is what makes the RPO seconds)
  restore [--from B] (--database NAME | --data-dir DIR) [--archive-dir DIR]
          [--to "YYYY-MM-DD HH:MM:SS" | --stop-before REGEX | --stop-position FILE:POS | --replay]
          [--binlogs DIR] [--force]
                              restore a backup into a new database (MariaDB) or directory
                              (SQLite), never over the live one without --force; on MariaDB then
                              replay the binlog to a point in time (UTC), to just before the
                              transaction whose statement matches REGEX, or (--replay) to the end`;

function usageError(message: string): number {
  process.stderr.write(`hms: ${message}\n${BACKUP_USAGE}\n`);
  return 1;
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

export async function backupCommand(config: Config, argv: string[]): Promise<number> {
  const [sub, ...args] = argv;
  switch (sub) {
    case undefined: {
      const t0 = performance.now();
      const { dir, manifest, removed, offsite } = await takeBackup(config);
      const rows = Object.values(manifest.rows).reduce((a, b) => a + b, 0);
      process.stdout.write([
        `backup ${manifest.id}: ${dir}`,
        `  ${manifest.tool}, ${rows} rows in ${Object.keys(manifest.rows).length} tables, ${mib(manifest.file.bytes)}, SHA-256 ${manifest.file.sha256}`,
        `  ${manifest.encryption ? `encrypted (AES-256-GCM, key ${manifest.encryption.keyId})` : 'not encrypted (set HMS_BACKUP_KEYS)'}; ${manifest.archives.length} audit archive file(s)`,
        `  binlog: ${manifest.binlog ? `${manifest.binlog.file}:${manifest.binlog.position}` : 'none (no point-in-time recovery from this backup)'}`,
        ...(offsite ? [`  offsite: ${offsite}`] : []),
        ...(removed.length ? [`  retention removed: ${removed.join(', ')}`] : []),
        `  ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        '',
      ].join('\n'));
      return 0;
    }
    case 'list': {
      for (const { dir, manifest: m } of await listBackups(config.HMS_BACKUP_DIR!)) {
        process.stdout.write(`${m.id}  ${m.engine}  ${mib(m.file.bytes)}  ${m.binlog ? `${m.binlog.file}:${m.binlog.position}` : '-'}  ${m.encryption ? `key ${m.encryption.keyId}` : 'plain'}  ${dir}\n`);
      }
      return 0;
    }
    case 'verify': {
      const { values } = parseArgs({ args, options: { from: { type: 'string' } } });
      const v = await verifyBackup(config, { from: values.from });
      for (const m of v.mismatches) process.stdout.write(`  ${m.table}: ${m.restored} rows restored, the manifest says ${m.manifest}\n`);
      const chain = v.audit.intact ? `audit chain intact (${v.audit.rows} rows${v.audit.archived ? `, ${v.audit.archived.files} archive files` : ''})` : `audit chain BROKEN: ${JSON.stringify(v.audit.break)}`;
      process.stdout.write(`backup ${v.backup.id}: ${v.ok ? 'OK' : 'FAILED'}: ${v.rows} rows restored in ${v.restoreSeconds.toFixed(1)} s, ${v.mismatches.length} table(s) differ, ${chain}\n`);
      return v.ok ? 0 : 1;
    }
    case 'binlogs': {
      const shipper = await shipBinlogs(config, (line) => process.stderr.write(`hms: ${line}\n`));
      onShutdownSignals(() => shipper.stop(), config.HMS_SHUTDOWN_TIMEOUT);
      await new Promise(() => undefined);
      return 0;
    }
    default:
      return usageError(`unknown backup subcommand ${sub}`);
  }
}

export async function restoreCommand(config: Config, argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' }, database: { type: 'string' }, 'data-dir': { type: 'string' }, 'archive-dir': { type: 'string' },
        to: { type: 'string' }, 'stop-before': { type: 'string' }, 'stop-position': { type: 'string' }, replay: { type: 'boolean' },
        binlogs: { type: 'string' }, force: { type: 'boolean' },
      },
    }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  const sp = values['stop-position'] === undefined ? undefined : /^([^:/]+\.\d{6,}):(\d+)$/.exec(values['stop-position']);
  if (sp === null) return usageError('--stop-position needs FILE:POS (binlog.000042:1234), as mariadb-binlog shows them');
  const stopPosition = sp ? { file: sp[1]!, position: Number(sp[2]) } : undefined;
  const t0 = performance.now();
  const r = await restoreBackup(config, {
    from: values.from, database: values.database, dataDir: values['data-dir'], archiveDir: values['archive-dir'], to: values.to,
    stopBefore: values['stop-before'], stopPosition, replay: values.replay, binlogs: values.binlogs, force: values.force,
  });
  process.stdout.write(`restored backup ${r.backup.id} into ${r.target}${r.replay ? `, binlog replayed from ${r.replay.from.file}:${r.replay.from.position} to ${r.replay.stop} (${r.replay.files.length} file(s))` : ''} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return 0;
}
