/**
 * FHIR routes: Bulk Data $export (FHIR Bulk Data Access 2.0): kick-off at system, Patient and
 * Group level (GET with query parameters, or POST with a Parameters body), the status URL (202
 * with X-Progress, 200 with the manifest, DELETE to cancel), and the files. Only the caller who
 * started an export sees its status and downloads its files.
 * https://hl7.org/fhir/uv/bulkdata/STU2/export.html docs/bulk-data.md
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exportRequest, NDJSON, type ExportLevel } from '../../fhir/bulk/export-request.js';
import { cancelExport, exportDir, findExport, isGone, startedBy, startExport, type ExportJob } from '../../fhir/bulk/export-jobs.js';
import { readResource } from '../../fhir/interactions.js';
import { FhirError, badRequest, notFound, operationOutcome } from '../../fhir/outcome.js';
import type { Query } from '../../fhir/search/params.js';
import { FHIR_JSON } from '../plugins/fhir-json.js';
import { baseUrl, fhirContext, preferences } from './fhir-context.js';

const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const fileParams = { type: 'object', properties: { id: { type: 'string' }, file: { type: 'string' } }, required: ['id', 'file'] } as const;
const JOB_ID = /^[0-9a-f-]{36}$/;
const FILE = /^[A-Za-z]+\.ndjson$/;

/** A POST kick-off's Parameters as the query parameters of a GET (values of any primitive type). */
function parametersQuery(body: unknown): Query {
  const b = body as { resourceType?: unknown; parameter?: unknown } | null;
  if (!b || typeof b !== 'object' || b.resourceType !== 'Parameters') throw badRequest('A POST $export takes a Parameters resource');
  const query: Query = {};
  for (const p of Array.isArray(b.parameter) ? b.parameter : []) {
    const name = (p as { name?: unknown }).name;
    const key = Object.keys(p as object).find((k) => k.startsWith('value'));
    const value = key ? (p as Record<string, unknown>)[key] : undefined;
    if (typeof name !== 'string' || (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')) {
      throw badRequest('Each $export parameter needs a name and a primitive value[x] (e.g. valueString)', 'Parameters.parameter');
    }
    const prev = query[name];
    query[name] = prev === undefined ? String(value) : [...(Array.isArray(prev) ? prev : [prev]), String(value)];
  }
  return query;
}

/** The job of a status or file URL, when it exists, is the caller's and is not gone: else 404, the same for all three. */
async function callersJob(request: FastifyRequest, id: string): Promise<ExportJob> {
  const job = JOB_ID.test(id) ? await findExport(request.server.db, id) : undefined;
  if (!job || !startedBy(job, request.principal) || isGone(job)) throw notFound(`No export ${id.slice(0, 64)} of yours (unknown, cancelled or expired)`);
  return job;
}

const statusUrl = (request: FastifyRequest, id: string): string => `${baseUrl(request)}/$export-status/${id}`;

export function bulkDataRoutes(app: FastifyInstance): void {
  const kickOff = async (request: FastifyRequest, reply: FastifyReply, level: ExportLevel, groupId?: string): Promise<FastifyReply> => {
    if (preferences(request)['respond-async'] === undefined) throw badRequest('$export runs asynchronously: send Prefer: respond-async (FHIR Bulk Data)');
    const query = request.method === 'POST' ? parametersQuery(request.body) : (request.query as Query);
    const ctx = fhirContext(request);
    const req = exportRequest(ctx, level, query, groupId);
    // the Group must be one the caller may read (404 for one it may not, as a read answers)
    if (groupId) await readResource(ctx, 'Group', groupId);
    const id = await startExport(app.db, app.jobs, request.log, request.principal!, req, `${baseUrl(request)}${request.url.replace(/^\/fhir/, '')}`);
    await ctx.audit({ action: 'export-request', resourceType: groupId ? 'Group' : level === 'patient' ? 'Patient' : 'Bundle', resourceId: groupId, success: true, data: { export: id, level, types: req.params.types.length } });
    return reply.code(202).header('Content-Location', statusUrl(request, id)).type(FHIR_JSON)
      .send(operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `Export ${id} accepted: poll ${statusUrl(request, id)}` }]));
  };
  const kickOffSchema = (summary: string, params?: object) => ({ schema: { tags: ['Bulk Data'], summary, ...(params ? { params } : {}) } });
  for (const method of ['GET', 'POST'] as const) {
    app.route({ method, url: '/fhir/$export', ...kickOffSchema('Bulk Data export of every type the caller may search (Prefer: respond-async)'), handler: (req, reply) => kickOff(req, reply, 'system') });
    app.route({ method, url: '/fhir/Patient/$export', ...kickOffSchema('Bulk Data export of the patients\' compartments (Prefer: respond-async)'), handler: (req, reply) => kickOff(req, reply, 'patient') });
    app.route({
      method, url: '/fhir/Group/:id/$export', ...kickOffSchema('Bulk Data export of the compartments of a Group\'s patients (Prefer: respond-async)', idParams),
      handler: (req, reply) => kickOff(req, reply, 'group', (req.params as { id: string }).id),
    });
  }

  app.get('/fhir/$export-status/:id', { schema: { tags: ['Bulk Data'], summary: 'An export\'s status: 202 with X-Progress while it runs, 200 with the manifest when done', params: idParams } }, async (request, reply) => {
    const job = await callersJob(request, (request.params as { id: string }).id);
    if (job.status === 'queued' || job.status === 'running') {
      return reply.code(202).header('X-Progress', job.status === 'queued' ? 'queued' : job.progress ?? 'running').header('Retry-After', '2').send();
    }
    if (job.status === 'failed') {
      // refused: the caller's rights or request changed since kick-off; else the server gave up
      throw new FhirError(job.progress === 'refused' ? 422 : 500, `Export ${job.id} failed: ${job.failure ?? 'unknown reason'}`, job.progress === 'refused' ? 'processing' : 'exception');
    }
    const base = baseUrl(request);
    return reply.code(200).type('application/json; charset=utf-8').header('Expires', new Date(job.expiresAt!).toUTCString()).send({
      transactionTime: job.transactionTime,
      request: job.requestUrl,
      requiresAccessToken: true,
      output: job.output.map((f) => ({ type: f.type, url: `${base}/$export-file/${job.id}/${f.file}`, count: f.count })),
      error: [],
    });
  });

  app.delete('/fhir/$export-status/:id', { schema: { tags: ['Bulk Data'], summary: 'Cancels an export (or deletes a finished one\'s files): 202', params: idParams } }, async (request, reply) => {
    const job = await callersJob(request, (request.params as { id: string }).id);
    if (!(await cancelExport(app.db, job.id))) throw notFound(`No export ${job.id} of yours (unknown, cancelled or expired)`);
    // a running job stops at its next page and removes what it wrote; the expiry job sweeps what remains
    if (job.status !== 'running') await rm(exportDir(app.config.HMS_EXPORT_DIR, job.id), { recursive: true, force: true });
    await fhirContext(request).audit({ action: 'export-cancel', resourceType: 'Bundle', success: true, data: { export: job.id } });
    return reply.code(202).type(FHIR_JSON).send(operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `Export ${job.id} cancelled` }]));
  });

  app.get('/fhir/$export-file/:id/:file', { schema: { tags: ['Bulk Data'], summary: 'One NDJSON file of a finished export (only for the caller who started it)', params: fileParams } }, async (request, reply) => {
    const { id, file } = request.params as { id: string; file: string };
    const job = await callersJob(request, id);
    const entry = job.status === 'done' && FILE.test(file) ? job.output.find((f) => f.file === file) : undefined;
    if (!entry) throw notFound(`Export ${job.id} has no file ${file.slice(0, 64)}`);
    const path = join(exportDir(app.config.HMS_EXPORT_DIR, job.id), entry.file);
    const size = (await stat(path).catch(() => undefined))?.size;
    if (size === undefined) throw notFound(`Export ${job.id} has no file ${entry.file} any more`);
    await fhirContext(request).audit({ action: 'export-download', resourceType: entry.type, success: true, data: { export: job.id, file: entry.file, resources: entry.count } });
    return reply.code(200).type(NDJSON).header('Content-Length', String(size)).send(createReadStream(path));
  });
}
