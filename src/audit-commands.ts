/**
 * `hms audit ...`: the security log's operator commands (docs/audit-log.md).
 *
 *   verify [--anchor SEQ:HASH]                  the chain across the archive files and the table
 *   export [--from DATE] [--to DATE] [--out F]  archived and online rows of a time range, as NDJSON
 *   archives                                    the manifest: one line per archive file
 *
 * Each returns the process's exit code (0 ok, 1 broken chain or bad input); the database comes from
 * the config (DATABASE_URL or the SQLite file), the files from HMS_AUDIT_ARCHIVE_DIR.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Writable } from 'node:stream';
import type { Config } from './config.js';
import { createDb } from './db/knex.js';
import { parseAnchor, verifyAuditChain } from './db/audit-chain.js';
import { AuditArchiveError, exportAuditLog, listManifests } from './db/audit-archive.js';
import { dateToSqlTimestamp } from './mappers/datatypes.js';
import { AUDIT_CHAIN_TABLE } from './db/audit-log.js';
import { parseBackupKeys } from './backup/crypt.js';

export const AUDIT_USAGE = `  audit verify [--anchor SEQ:HASH]
                              walk the security log's hash chain across the archive files and
                              the table (works while the server runs): exit 0 when intact, 1 with
                              the first broken row or file; --anchor also checks a head printed
                              by an earlier verify
  audit export [--from DATE] [--to DATE] [--out FILE]
                              print (or write to FILE) the security log rows of a time range,
                              archived and online, as NDJSON in chain order; DATE is YYYY-MM-DD
                              or an ISO instant with Z or an offset, both ends inclusive
  audit archives              list the archive files (manifest): seq range, rows, time range, SHA-256`;

function usageError(message: string): number {
  process.stderr.write(`hms: ${message}\n`);
  return 1;
}

/**
 * A --from / --to value as an SQL timestamp (UTC, whole seconds): a date is its first second
 * (--from) or its last second (--to); an instant needs Z or an offset. Undefined when malformed.
 */
export function exportBound(value: string, end: boolean): string | undefined {
  const v = value.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const d = new Date(`${v}T00:00:00Z`);
    if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== v) return undefined;
    return `${v} ${end ? '23:59:59' : '00:00:00'}`;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : dateToSqlTimestamp(new Date(Math.floor(t / 1000) * 1000));
}

/** Writes with backpressure; an early-closed stdout (`| head`) ends the export quietly. */
async function writeTo(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

async function verify(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { anchor: { type: 'string' } } });
  const anchor = values.anchor === undefined ? undefined : parseAnchor(values.anchor);
  if (values.anchor !== undefined && !anchor) return usageError('audit verify --anchor needs SEQ:HASH (a head printed by an earlier verify)');
  const db = createDb(config);
  try {
    if (!(await db.schema.hasTable(AUDIT_CHAIN_TABLE))) return usageError("the security log has no hash chain yet: run 'hms migrate' first");
    const result = await verifyAuditChain(db, { anchor, archiveDir: config.HMS_AUDIT_ARCHIVE_DIR, keys: parseBackupKeys(config.HMS_BACKUP_KEYS) });
    if (result.intact) {
      const where = result.archived ? `${result.archived.rows} in ${result.archived.files} archive file(s), ${result.rows - result.archived.rows} online; ` : '';
      process.stdout.write(`Audit chain intact: ${result.rows} rows verified (${where}head seq ${result.head!.seq}, hash ${result.head!.hash})\n`);
      return 0;
    }
    const b = result.break!;
    const at = b.id ? `row ${b.id}` : b.archive ? `archive ${b.archive}` : 'the head';
    const seq = b.seq !== undefined ? ` (seq ${b.seq})` : '';
    const inArchive = b.id && b.archive ? ` in archive ${b.archive}` : '';
    process.stdout.write(`Audit chain broken at ${at}${seq}${inArchive}: ${b.reason}\n  ${b.message}\n  ${result.rows} rows verified before it\n`);
    return 1;
  } finally {
    await db.destroy();
  }
}

async function exportRows(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: 'string' }, to: { type: 'string' }, out: { type: 'string' } } });
  const from = values.from === undefined ? undefined : exportBound(values.from, false);
  const to = values.to === undefined ? undefined : exportBound(values.to, true);
  if (values.from !== undefined && !from) return usageError('audit export --from needs YYYY-MM-DD or an ISO instant with Z or an offset');
  if (values.to !== undefined && !to) return usageError('audit export --to needs YYYY-MM-DD or an ISO instant with Z or an offset');
  if (from && to && from > to) return usageError('audit export: --from is after --to');
  const db = createDb(config);
  const file = values.out === undefined ? undefined : createWriteStream(values.out, { flags: 'w' });
  const out: Writable = file ?? process.stdout;
  let closed = false;
  out.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') closed = true; });
  try {
    if (!(await db.schema.hasTable(AUDIT_CHAIN_TABLE))) return usageError("the security log has no hash chain yet: run 'hms migrate' first");
    const result = await exportAuditLog(db, { archiveDir: config.HMS_AUDIT_ARCHIVE_DIR ?? join(config.HMS_DATA_DIR, 'audit-archive'), from, to, keys: parseBackupKeys(config.HMS_BACKUP_KEYS) }, async (row) => {
      if (!closed) await writeTo(out, `${JSON.stringify(row)}\n`);
    });
    if (file) {
      file.end();
      await once(file, 'finish');
    }
    process.stderr.write(`Exported ${result.rows} rows (${result.archived} from ${result.files} archive file(s), ${result.online} online)${values.out ? ` to ${values.out}` : ''}\n`);
    return 0;
  } catch (err) {
    if (err instanceof AuditArchiveError) return usageError(err.message);
    throw err;
  } finally {
    if (file && !file.writableFinished) file.destroy();
    await db.destroy();
  }
}

async function archives(config: Config): Promise<number> {
  const db = createDb(config);
  try {
    const list = await listManifests(db);
    for (const m of list) {
      process.stdout.write(`${m.fileName}  seq ${m.firstSeq}-${m.lastSeq}  ${m.rowCount} rows  ${m.minTimestamp ?? '-'} .. ${m.maxTimestamp ?? '-'}  ${m.bytes} bytes  sha256 ${m.sha256}  (${m.createdAt})\n`);
    }
    process.stderr.write(`${list.length} archive file(s) in ${config.HMS_AUDIT_ARCHIVE_DIR}\n`);
    return 0;
  } finally {
    await db.destroy();
  }
}

/** `hms audit <sub> ...args`: runs the subcommand, returns the exit code. */
export async function auditCommand(config: Config, argv: string[]): Promise<number> {
  const [sub, ...args] = argv;
  switch (sub) {
    case 'verify': return verify(config, args);
    case 'export': return exportRows(config, args);
    case 'archives': return archives(config);
    default: return usageError(`audit needs the subcommand verify, export or archives\n${AUDIT_USAGE}`);
  }
}
