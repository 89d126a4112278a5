/**
 * Streams an export's resources to one NDJSON file per type: each type's rows in keyset pages by
 * id (never a whole table in memory), narrowed by the caller's access (the rows a search of the
 * type would find, shown in the view the caller's rule gives), by _since, by _typeFilter and, below
 * system level, by the patients (all, or a Group's members). Each patient whose data is written is
 * audited once per export. Used by the bulk-export job and by `hms export`.
 * docs/bulk-data.md
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import type { Knex } from 'knex';
import type { FhirContext } from '../context.js';
import type { ResourceDefinition } from '../registry.js';
import { searchParam } from '../registry.js';
import type { ParsedParam } from '../search/params.js';
import { parseSearch } from '../search/params.js';
import { applyFilters } from '../search/compile.js';
import { parseDateParam } from '../search/dates.js';
import { definitionOf, present } from '../resource-view.js';
import { patientOfRow } from '../reach.js';
import { currentQuery, storedFromRow, whereExactIds, type Row } from '../../db/resource-repository.js';
import type { ExportLevel, ExportParams } from './export-request.js';
import { parseQueryString } from './export-request.js';

/** One file of the manifest's output[]. */
export interface ExportedFile { type: string; file: string; count: number }

export interface ExportProgress { type: string; typeIndex: number; types: number; resources: number }

export interface WriteOptions {
  /** Where the files go (created; a file is complete once it has its final name). */
  dir: string;
  /** Rows per statement (PAGE_SIZE). */
  pageSize?: number;
  /** The patients of a Group export (below system level without it: every patient). */
  patients?: string[];
  /** Called after each page; answering false stops the export (cancelled). */
  onPage?(progress: ExportProgress): Promise<boolean>;
  /** Recorded with each audit row (the export's id). */
  auditData?: Record<string, unknown>;
}

export interface WriteResult { output: ExportedFile[]; resources: number; patients: number; stopped: boolean }

const PATIENT_CHUNK = 500;

/**
 * Rows per page. Small pages keep each page's rows young: they die in the scavenger instead of
 * filling the old generation, so peak memory stays flat however long the export runs
 * (bench/bulk-export.ts: 1,000-row pages peaked at 1.38x the RSS at 10x the data, 100-row pages
 * at 1.03x, for the same throughput within the noise).
 */
const PAGE_SIZE = 100;

/** The rows of a type that belong to patients: the column its access follows (Patient: its id). */
const patientColumnOf = (def: ResourceDefinition): string => def.patientColumn ?? 'id';

/** The _typeFilter queries of a type, parsed: a row is exported when it matches any of them. */
function typeFilters(ctx: FhirContext, def: ResourceDefinition, queries: string[] | undefined) {
  return (queries ?? []).map((q) => parseSearch(def, parseQueryString(q), { strict: true, defaultCount: 1, maxCount: 1, limits: ctx.searchLimits }));
}

/** Writes lines to a stream, waiting when its buffer is full (memory stays flat however much is written). */
async function writeLines(out: WriteStream, lines: string): Promise<void> {
  if (!out.write(lines)) await once(out, 'drain');
}

async function closeStream(out: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** The statement of one page of a type's export. */
function pageQuery(ctx: FhirContext, def: ResourceDefinition, params: ExportParams, level: ExportLevel, chunk: string[] | undefined, after: string | undefined, until: string, pageSize: number): Knex.QueryBuilder {
  const db = ctx.db;
  const scope = ctx.access.scope('search');
  const q = currentQuery(db, def).orderBy('t.id').limit(pageSize);
  const since: ParsedParam[] = params.since
    ? [{ def: searchParam(def, '_lastUpdated')!, strings: [], dates: [parseDateParam(`ge${params.since}`, '_since')], tokens: [], numbers: [] } as ParsedParam]
    : [];
  applyFilters(db, q, def, { params: since }, scope);
  if (level !== 'system') {
    const column = `t.${patientColumnOf(def)}`;
    if (chunk) whereExactIds(db, q, column, chunk);
    else q.whereNotNull(column);
  }
  const filters = typeFilters(ctx, def, params.typeFilter[def.type]);
  if (filters.length) {
    q.where((any) => {
      filters.forEach((req, i) => {
        const alias = `f${i}`;
        const sub = db(`${def.table} as ${alias}`).select(`${alias}.id`);
        applyFilters(db, sub, def, req, scope, alias);
        any.orWhereIn('t.id', sub);
      });
    });
  }
  if (after !== undefined) q.where('t.id', '>', after);
  // an append-only type (the security log) grows while it is exported, with this export's own rows too
  if (def.appendOnly) q.where('t.id', '<', until);
  return q;
}

/** Writes the export's files; returns the manifest's output (types with no resource have no file). */
export async function writeExport(ctx: FhirContext, level: ExportLevel, params: ExportParams, opts: WriteOptions): Promise<WriteResult> {
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const until = uuidv7();
  await mkdir(opts.dir, { recursive: true });
  const output: ExportedFile[] = [];
  const audited = new Set<string>();
  let resources = 0;
  const chunks: (string[] | undefined)[] = [];
  if (opts.patients) for (let i = 0; i < opts.patients.length; i += PATIENT_CHUNK) chunks.push(opts.patients.slice(i, i + PATIENT_CHUNK));
  else chunks.push(undefined);

  for (const [typeIndex, type] of params.types.entries()) {
    const def = definitionOf(type);
    const rule = ctx.access.require(def, 'search');
    const file = `${type}.ndjson`;
    const partial = join(opts.dir, `${file}.part`);
    let out: WriteStream | undefined;
    let count = 0;
    let unowned = 0;
    try {
      for (const chunk of chunks) {
        if (chunk?.length === 0) continue;
        let after: string | undefined;
        for (;;) {
          const rows = (await pageQuery(ctx, def, params, level, chunk, after, until, pageSize)) as Row[];
          if (rows.length === 0) break;
          let lines = '';
          const events = [];
          for (const raw of rows) {
            const stored = storedFromRow(def, raw);
            lines += JSON.stringify(ctx.access.view(def, rule, present(def, stored))) + '\n';
            const patientId = patientOfRow(def, stored.row);
            if (!patientId) unowned++;
            else if (!audited.has(patientId)) {
              audited.add(patientId);
              events.push({ action: 'export', resourceType: 'Patient', resourceId: patientId, patientId, success: true, data: opts.auditData });
            }
          }
          out ??= createWriteStream(partial, { flags: 'w' });
          await writeLines(out, lines);
          // on record before the file holds their data
          if (events.length) await ctx.audit(events);
          count += rows.length;
          resources += rows.length;
          after = String(rows[rows.length - 1]!.id);
          if (opts.onPage && !(await opts.onPage({ type, typeIndex, types: params.types.length, resources }))) {
            await closeStream(out);
            await rm(partial, { force: true });
            return { output, resources, patients: audited.size, stopped: true };
          }
          if (rows.length < pageSize) break;
        }
      }
      if (out) {
        await closeStream(out);
        await rename(partial, join(opts.dir, file));
        output.push({ type, file, count });
      }
      // what belongs to no patient (practitioners, a system-level export's other types): one row per type
      if (unowned) await ctx.audit({ action: 'export', resourceType: type, success: true, data: { ...opts.auditData, resources: unowned } });
    } catch (err) {
      out?.destroy();
      await rm(partial, { force: true });
      throw err;
    }
  }
  return { output, resources, patients: audited.size, stopped: false };
}
