/**
 * `hms import FILE|DIR ...`: loads FHIR Bundles (.json) and NDJSON files (.ndjson) through the
 * API's own batch/transaction engine (processBundle), acting as the server, with the same
 * validation, versioning, history and audit rows as POST /fhir; prints what was stored, what was
 * already there and what was refused, and why (docs/import.md).
 */
import { createReadStream, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { Knex } from 'knex';
import type { Config } from './config.js';
import type { UserPrincipal } from './auth/principal.js';
import { createDb, migrateLatest } from './db/knex.js';
import { AuditLog } from './db/audit-log.js';
import { workerContext } from './workers/context.js';
import { workerLogger } from './workers/worker.js';
import type { FhirContext } from './fhir/context.js';
import { FhirError } from './fhir/outcome.js';
import { processBundle } from './fhir/exchange/transaction.js';
import './fhir/resources/index.js';

export const IMPORT_USAGE = `  import [--as EMAIL] FILE|DIR ...
                              load FHIR data through the batch/transaction engine: .json Bundles
                              (transaction and batch as they are; a collection or a single
                              resource as creates) and .ndjson files (a resource a line, in
                              batches of HMS_BUNDLE_MAX_ENTRIES); a directory's
                              hospitalInformation* and practitionerInformation* files first.
                              --as: the admin the import acts as, recorded as the writer where a
                              record names none (Condition.recorder ...); without it, as the
                              server. Exit code 0 when nothing was refused, 2 otherwise
                              (docs/import.md)`;

type Json = Record<string, unknown>;
interface RequestEntry { fullUrl?: string; resource?: Json; request?: { method?: string; url?: string; ifNoneExist?: string } }
interface Outcome { issue?: { diagnostics?: string; code?: string }[] }
interface ResponseEntry { response?: { status?: string; outcome?: Outcome } }
/** One Bundle to send, with where its entries came from (for the refusals' "where"). */
interface Work { bundle: { resourceType: 'Bundle'; type: string; entry: RequestEntry[] }; where: (i: number) => string; bytes: number }

/** Per resource type, what the import did. */
interface Tally { stored: number; updated: number; unchanged: number; refused: number }
/** Refusals with the same type and reason, with the first few places they came from. */
interface Refusal { type: string; reason: string; count: number; where: string[] }

export class ImportSummary {
  readonly byType = new Map<string, Tally>();
  readonly refusals = new Map<string, Refusal>();
  entries = 0;

  private tally(type: string): Tally {
    let t = this.byType.get(type);
    if (!t) this.byType.set(type, (t = { stored: 0, updated: 0, unchanged: 0, refused: 0 }));
    return t;
  }

  /** An entry answered 2xx: 201 stored; 200 to a PUT updated, else (a conditional create that matched) unchanged. */
  ok(type: string, status: number, method: string): void {
    this.entries++;
    const t = this.tally(type);
    if (status === 201) t.stored++;
    else if (method === 'PUT' || method === 'PATCH') t.updated++;
    else t.unchanged++;
  }

  /** An entry refused: counted under its type, its reason grouped under `group` (its type, or the Bundle refused whole). */
  refuse(type: string, reason: string, where: string, group = type): void {
    this.entries++;
    this.tally(type).refused++;
    const key = `${group}\u0000${reason}`;
    const r = this.refusals.get(key) ?? { type: group, reason, count: 0, where: [] };
    r.count++;
    if (r.where.length < 3) r.where.push(where);
    this.refusals.set(key, r);
  }

  get refused(): number {
    let n = 0;
    for (const t of this.byType.values()) n += t.refused;
    return n;
  }

  /** The summary as printed: a table by type, then each group of refusals. */
  format(seconds: number): string {
    const types = [...this.byType.keys()].sort();
    const cols: (keyof Tally)[] = ['stored', 'updated', 'unchanged', 'refused'];
    const width = Math.max(12, ...types.map((t) => t.length));
    const row = (name: string, values: (string | number)[]) => `  ${name.padEnd(width)}${values.map((v) => String(v).padStart(11)).join('')}`;
    const total = (k: keyof Tally) => types.reduce((n, t) => n + this.byType.get(t)![k], 0);
    const lines = [
      `Imported ${this.entries} ${this.entries === 1 ? 'entry' : 'entries'} in ${seconds.toFixed(1)} s:`,
      row('type', cols),
      ...types.map((t) => row(t, cols.map((k) => this.byType.get(t)![k]))),
      row('total', cols.map(total)),
    ];
    if (this.refusals.size) {
      lines.push('Refused:');
      for (const r of [...this.refusals.values()].sort((a, b) => b.count - a.count || a.type.localeCompare(b.type))) {
        lines.push(`  ${r.count} ${r.type}: ${r.reason}`, `      (${r.where.join('; ')}${r.count > r.where.length ? '; ...' : ''})`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

/**
 * Types other resources refer to, in the order a directory's files named after them (a Bulk
 * export's Patient.ndjson ...) are imported: a reference must find its target already stored.
 */
const REFERENCED_FIRST = ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson', 'Coverage', 'Encounter', 'Medication', 'Claim'];

/** Where a file goes in a directory's order: Synthea's hospitalInformation*, practitionerInformation*, then by REFERENCED_FIRST. */
function fileRank(name: string): number {
  if (name.startsWith('hospitalInformation')) return 0;
  if (name.startsWith('practitionerInformation')) return 1;
  const type = REFERENCED_FIRST.indexOf(name.split('.')[0]!);
  return type < 0 ? REFERENCED_FIRST.length + 2 : type + 2;
}

/** The files to import, in order: each path given, a directory's .json and .ndjson files ranked by fileRank, then by name. */
export function importFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (!statSync(p).isDirectory()) { out.push(p); continue; }
    const names = readdirSync(p).filter((f) => ['.json', '.ndjson'].includes(extname(f)) && statSync(join(p, f)).isFile());
    names.sort((a, b) => fileRank(a) - fileRank(b) || (a < b ? -1 : a > b ? 1 : 0));
    out.push(...names.map((f) => join(p, f)));
  }
  return out;
}

/** The type an entry is about: its resource's, else the first segment of its request URL. */
function entryType(e: RequestEntry): string {
  if (typeof e.resource?.resourceType === 'string') return e.resource.resourceType;
  return e.request?.url?.split(/[/?]/)[0] || '(unknown)';
}

/** A resource as a batch entry: PUT Type/id when it has an id (ids and the references between files survive), else POST. */
function createEntry(resource: Json): RequestEntry {
  const type = String(resource.resourceType);
  return typeof resource.id === 'string'
    ? { resource, request: { method: 'PUT', url: `${type}/${resource.id}` } }
    : { resource, request: { method: 'POST', url: type } };
}

const batchOf = (entry: RequestEntry[]): Work['bundle'] => ({ resourceType: 'Bundle', type: 'batch', entry });

/** The Bundles of a .json file: a transaction or batch as it is, a collection's resources (or one resource) as batches of creates. */
function* jsonWork(file: string, maxEntries: number, summary: ImportSummary): Generator<Work> {
  const bytes = statSync(file).size;
  const name = basename(file);
  let body: Json;
  try {
    body = JSON.parse(readFileSync(file, 'utf8')) as Json;
  } catch (err) {
    summary.refuse('(file)', `not JSON: ${(err as Error).message}`, name);
    return;
  }
  if (body?.resourceType === 'Bundle' && (body.type === 'transaction' || body.type === 'batch')) {
    yield { bundle: body as unknown as Work['bundle'], where: (i) => `${name} entry ${i}`, bytes };
    return;
  }
  const resources = body?.resourceType === 'Bundle'
    ? ((body.entry as RequestEntry[] | undefined) ?? []).map((e) => e.resource).filter((r): r is Json => !!r)
    : [body];
  if (resources.length === 0) return;
  for (let i = 0; i < resources.length; i += maxEntries) {
    const start = i;
    yield { bundle: batchOf(resources.slice(i, i + maxEntries).map(createEntry)), where: (k) => `${name} resource ${start + k}`, bytes: i + maxEntries >= resources.length ? bytes : 0 };
  }
}

/** The batches of an .ndjson file, read a line at a time (never whole); a line that is not a JSON resource is refused with its number. */
async function* ndjsonWork(file: string, maxEntries: number, summary: ImportSummary): AsyncGenerator<Work> {
  const name = basename(file);
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let batch: RequestEntry[] = [];
  let lineNos: number[] = [];
  let lineNo = 0;
  let sent = 0;
  const flush = (): Work => {
    const nos = lineNos;
    const work: Work = { bundle: batchOf(batch), where: (k) => `${name} line ${nos[k]}`, bytes: stream.bytesRead - sent };
    sent = stream.bytesRead;
    batch = [];
    lineNos = [];
    return work;
  };
  // readline's iterator pauses the file once 1,024 lines wait (Node 20): memory stays bounded while a batch is sent
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let resource: Json;
    try {
      resource = JSON.parse(line) as Json;
    } catch (err) {
      summary.refuse('(unreadable)', `a line that is not JSON (${(err as Error).message})`, `${name} line ${lineNo}`);
      continue;
    }
    if (!resource || typeof resource !== 'object' || typeof resource.resourceType !== 'string') {
      summary.refuse('(unreadable)', 'a line that is not a FHIR resource (no resourceType)', `${name} line ${lineNo}`);
      continue;
    }
    batch.push(createEntry(resource));
    lineNos.push(lineNo);
    if (batch.length >= maxEntries) yield flush();
  }
  if (batch.length) yield flush();
}

/** The reason an entry's OperationOutcome gives (its diagnostics, else its codes). */
function reasonOf(status: string, outcome: Outcome | undefined): string {
  const text = (outcome?.issue ?? []).map((i) => i.diagnostics ?? i.code).filter(Boolean).join('; ');
  return `${status}${text ? `: ${text}` : ''}`;
}

/** Sends one Bundle and counts its entries' answers; a transaction refused as a whole refuses each of its entries. */
export async function importBundle(ctx: FhirContext, work: Work, maxEntries: number, summary: ImportSummary): Promise<void> {
  const entries = work.bundle.entry ?? [];
  let response: { entry?: ResponseEntry[] };
  try {
    response = (await processBundle(ctx, work.bundle, { maxEntries })) as { entry?: ResponseEntry[] };
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    // nothing of it was written: every entry is refused, with the reason the whole was
    const reason = `${work.bundle.type === 'transaction' ? 'transaction rolled back: ' : ''}${err.status} ${err.message}`;
    if (entries.length === 0) summary.refuse('Bundle', reason, work.where(0));
    entries.forEach((e, i) => summary.refuse(entryType(e), reason, work.where(i), 'entries of one Bundle'));
    return;
  }
  entries.forEach((e, i) => {
    const answer = response.entry?.[i]?.response;
    const status = String(answer?.status ?? '');
    const code = Number.parseInt(status, 10);
    if (code >= 200 && code < 300) summary.ok(entryType(e), code, String(e.request?.method ?? '').toUpperCase());
    else summary.refuse(entryType(e), reasonOf(status || 'no answer', answer?.outcome), work.where(i));
  });
}

/** Progress on stderr: a bar over the bytes of all files on a terminal, a line per file otherwise. */
function progress(totalBytes: number): { file(name: string): void; advance(bytes: number, entries: number): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: 'importing {bar} {percentage}% | {entries} entries | {file}',
      hideCursor: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(Math.max(totalBytes, 1), 0, { entries: 0, file: '' });
    return {
      file: (name) => bar.update({ file: name }),
      advance: (bytes, entries) => bar.increment(bytes, { entries }),
      stop: () => bar.stop(),
    };
  }
  return {
    file: (name) => process.stderr.write(`importing ${name}\n`),
    advance: () => {},
    stop: () => {},
  };
}

/**
 * The admin an import acts as (`--as EMAIL`): the seed tables record a writer for some records
 * (a Condition's recorder, a MedicationRequest's requester ...) that the data may not name, as
 * Synthea's Conditions do not; over the API the logged-in user is that writer.
 */
async function importer(db: Knex, email: string): Promise<UserPrincipal> {
  const user = await db('users').whereRaw('LOWER(email) = ?', [email.toLowerCase()]).whereNull('deleted_at').first('id', 'role', 'status') as { id: string; role: string; status: string } | undefined;
  if (!user) throw new ImportError(`--as ${email}: no user account has this email`);
  if (user.role !== 'admin' || user.status !== 'active') throw new ImportError(`--as ${email}: the account is ${user.status === 'active' ? `a ${user.role}` : user.status}, not an active admin`);
  return { kind: 'user', userId: user.id, role: 'admin', sessionId: 'import', grants: [] };
}

/** A mistake in how the import was asked for: one line, exit code 1. */
class ImportError extends Error {}

/** Runs `hms import ARGS`; resolves to the process exit code. */
export async function importCommand(config: Config, args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { as: { type: 'string' } } });
  if (positionals.length === 0) {
    process.stderr.write(`hms: import needs a FILE or DIR\n${IMPORT_USAGE}\n`);
    return 1;
  }
  let files: string[];
  try {
    files = importFiles(positionals);
  } catch (err) {
    process.stderr.write(`hms: ${(err as Error).message}\n`);
    return 1;
  }
  const db = createDb(config);
  const auditLog = new AuditLog(db);
  const summary = new ImportSummary();
  const started = Date.now();
  const run = randomUUID();
  const maxEntries = config.HMS_BUNDLE_MAX_ENTRIES;
  const bar = progress(files.reduce((n, f) => n + statSync(f).size, 0));
  try {
    await migrateLatest(db);
    const principal = values.as === undefined ? undefined : await importer(db, values.as);
    const deps = { db, config, log: workerLogger(config), auditLog, now: () => new Date() };
    for (const file of files) {
      bar.file(basename(file));
      // the audit rows of each file's writes name the import run and the file (additional_data.job)
      const ctx = workerContext(deps, { principal, job: { queue: 'import', id: `${run} ${basename(file)}` } });
      const works = extname(file) === '.ndjson' ? ndjsonWork(file, maxEntries, summary) : jsonWork(file, maxEntries, summary);
      for await (const work of works) {
        await importBundle(ctx, work, maxEntries, summary);
        bar.advance(work.bytes, summary.entries);
      }
    }
  } catch (err) {
    if (!(err instanceof ImportError)) throw err;
    process.stderr.write(`hms: ${err.message}\n`);
    return 1;
  } finally {
    bar.stop();
    await auditLog.settle();
    await db.destroy();
  }
  process.stdout.write(summary.format((Date.now() - started) / 1000));
  return summary.refused ? 2 : 0;
}
