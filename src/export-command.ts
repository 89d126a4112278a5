/**
 * `hms export [--type T,...] [--since INSTANT] DIR`: writes one NDJSON file per type into DIR with
 * the writer of Bulk Data $export (src/fhir/bulk/export-writer.ts: keyset pages, every resource as
 * a read shows it, one audit row per patient), acting as the server, with progress on stderr and a
 * summary per type on stdout (docs/bulk-data.md, docs/import.md).
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import cliProgress from 'cli-progress';
import type { Config } from './config.js';
import { createDb, migrateLatest } from './db/knex.js';
import { AuditLog } from './db/audit-log.js';
import { workerContext } from './workers/context.js';
import { workerLogger } from './workers/worker.js';
import { FhirError } from './fhir/outcome.js';
import { exportRequest } from './fhir/bulk/export-request.js';
import { writeExport, type ExportProgress } from './fhir/bulk/export-writer.js';
import './fhir/resources/index.js';

export const EXPORT_USAGE = `  export [--type T,...] [--since INSTANT] DIR
                              write every resource (or those of the types named, changed since
                              the instant) as NDJSON, one DIR/<Type>.ndjson per type, acting as
                              the server; audited per patient (docs/bulk-data.md)`;

function progress(): { page(p: ExportProgress): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'exporting {bar} {value}/{total} types | {resources} resources | {type}', hideCursor: true }, cliProgress.Presets.shades_classic);
    let started = false;
    return {
      page: (p) => {
        if (!started) { bar.start(p.types, 0, { resources: 0, type: p.type }); started = true; }
        bar.update(p.typeIndex, { resources: p.resources, type: p.type });
      },
      stop: () => { if (started) bar.stop(); },
    };
  }
  let last = '';
  return {
    page: (p) => { if (p.type !== last) { last = p.type; process.stderr.write(`exporting ${p.type} (${p.typeIndex + 1} of ${p.types})\n`); } },
    stop: () => {},
  };
}

/** Runs `hms export ARGS`; resolves to the process exit code. */
export async function exportCommand(config: Config, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { type: { type: 'string', multiple: true }, since: { type: 'string' } } });
  } catch (err) {
    process.stderr.write(`hms: ${(err as Error).message}\n${EXPORT_USAGE}\n`);
    return 1;
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) {
    process.stderr.write(`hms: export needs one DIR\n${EXPORT_USAGE}\n`);
    return 1;
  }
  const db = createDb(config);
  const auditLog = new AuditLog(db);
  const bar = progress();
  const started = Date.now();
  try {
    await migrateLatest(db);
    const deps = { db, config, log: workerLogger(config), auditLog, now: () => new Date() };
    const ctx = workerContext(deps, { job: { queue: 'export', id: randomUUID() } });
    const query = { ...(values.type ? { _type: values.type } : {}), ...(values.since ? { _since: values.since } : {}) };
    const req = exportRequest({ ...ctx, searchLimits: undefined }, 'system', query);
    const result = await writeExport(ctx, 'system', req.params, { dir: positionals[0]!, onPage: async (p) => { bar.page(p); return true; } });
    bar.stop();
    for (const f of result.output) process.stdout.write(`${f.type.padEnd(28)} ${String(f.count).padStart(9)}  ${f.file}\n`);
    process.stdout.write(`${result.resources} resources of ${result.patients} patients in ${result.output.length} files, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (err) {
    bar.stop();
    if (!(err instanceof FhirError)) throw err;
    process.stderr.write(`hms: ${err.message}\n`);
    return 1;
  } finally {
    await auditLog.settle();
    await db.destroy();
  }
}
