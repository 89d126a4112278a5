/**
 * Lab results pushed over HTTP (docs/lab-ingestion.md): POST /ingest/lab-results takes an HL7 v2
 * ORU^R01 message or a FHIR Bundle / Observation from a lab client (or an admin), stores it and
 * answers 202 with Location /ingest/messages/{id}; GET there tells its status and, once done, the
 * ids of everything it wrote. The same message sent again answers 200 with the first one's status.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, notFound } from '../../fhir/outcome.js';
import { isAdmin, type Principal } from '../../auth/principal.js';
import { scopesAllow } from '../../auth/scopes.js';
import { acceptLabMessage, acceptedFacilities, sourceOf } from '../../ingest/intake.js';
import { findMessage, type StoredMessage } from '../../ingest/messages.js';
import { auditRequest } from '../plugins/authenticate.js';

/** Media types of HL7 v2 ER7 text (the first is the registered one). */
export const HL7_MEDIA_TYPES = ['x-application/hl7-v2+er7', 'application/hl7-v2', 'text/plain'];

/** Who may push lab results: a lab client whose token may create Observations, or an admin. */
function mayIngest(p: Principal | undefined): boolean {
  if (isAdmin(p)) return true;
  return p?.kind === 'client' && p.clientKind === 'lab' && scopesAllow(p.scopes, 'Observation', 'c');
}

/** The status document of a message (no patient data: ids and the outcome). */
export function messageStatus(m: StoredMessage): Record<string, unknown> {
  return {
    id: m.id, status: m.status, format: m.format, channel: m.channel, contentType: m.contentType,
    sendingApplication: m.sendingApplication, sendingFacility: m.sendingFacility, receivedAt: m.receivedAt, updatedAt: m.updatedAt,
    finishedAt: m.finishedAt, attempts: m.attempts, result: m.result, outcome: m.outcome,
  };
}

function send(reply: FastifyReply, status: number, m: StoredMessage): FastifyReply {
  return reply.code(status).header('Location', `/ingest/messages/${m.id}`).type('application/json').send(messageStatus(m));
}

const statusSchema = { description: 'The message\'s processing status', type: 'object', additionalProperties: true } as const;

export default async function ingestRoutes(app: FastifyInstance): Promise<void> {
  // HL7 v2 arrives as text; FHIR JSON is parsed by the FHIR JSON parser (depth-limited)
  app.addContentTypeParser(HL7_MEDIA_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  const facilities = acceptedFacilities(app.config.HMS_LAB_FACILITIES);

  app.post('/ingest/lab-results', {
    onRequest: app.requireAuth,
    schema: {
      tags: ['ingest'],
      summary: 'Push lab results: an HL7 v2 ORU^R01 message (x-application/hl7-v2+er7) or a FHIR Bundle / Observation',
      response: { 200: statusSchema, 202: statusSchema },
    },
  }, async (request: FastifyRequest, reply) => {
    const p = request.principal!;
    if (!mayIngest(p)) {
      await auditRequest(request, { action: 'ingest-accept', resourceType: 'LabMessage', success: false, failureReason: 'not a lab client with Observation create scope, nor an admin' });
      throw new FhirError(403, 'Only lab clients whose token may create Observations (system/Observation.c), and admins, may push lab results', 'forbidden');
    }
    const mediaType = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const format = HL7_MEDIA_TYPES.includes(mediaType) ? 'hl7v2' as const : 'fhir' as const;
    if (request.body === undefined || request.body === null || request.body === '') throw new FhirError(400, 'The body is empty: send an HL7 v2 message or a FHIR Bundle', 'required');
    let intake;
    try {
      intake = await acceptLabMessage({ db: app.db, queues: app.jobs, log: request.log, facilities }, { format, body: request.body, contentType: mediaType, principal: p, channel: 'http' });
    } catch (err) {
      if (err instanceof FhirError) await auditRequest(request, { action: 'ingest-accept', resourceType: 'LabMessage', success: false, failureReason: err.message.slice(0, 500) });
      throw err;
    }
    await auditRequest(request, { action: intake.duplicate ? 'ingest-resend' : 'ingest-accept', resourceType: 'LabMessage', resourceId: intake.message.id, success: true });
    return send(reply, intake.duplicate ? 200 : 202, intake.message);
  });

  app.get<{ Params: { id: string } }>('/ingest/messages/:id', {
    onRequest: app.requireAuth,
    schema: { tags: ['ingest'], summary: 'Status of a pushed lab message and, when done, the ids of what it wrote', response: { 200: statusSchema } },
  }, async (request, reply) => {
    const p = request.principal!;
    const m = /^[A-Za-z0-9-]{1,64}$/.test(request.params.id) ? await findMessage(app.db, request.params.id) : undefined;
    // another sender's message reads as missing
    if (!m || !(isAdmin(p) || m.source === sourceOf(p))) {
      await auditRequest(request, { action: 'ingest-read', resourceType: 'LabMessage', resourceId: request.params.id.slice(0, 36), success: false, failureReason: 'not found' });
      throw notFound(`No lab message ${request.params.id.slice(0, 64)}`);
    }
    await auditRequest(request, { action: 'ingest-read', resourceType: 'LabMessage', resourceId: m.id, success: true });
    return send(reply, 200, m);
  });
}
