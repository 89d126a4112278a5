/** Per-request FHIR context: base URL, Prefer handling, and the audit sink bound to the caller. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isIPv4, isIPv6 } from 'node:net';
import type { Config } from '../../config.js';
import type { FhirContext } from '../../fhir/interactions.js';
import type { Query } from '../../fhir/search/params.js';
import type { Resource } from '../../fhir/types.js';
import { operationOutcome } from '../../fhir/outcome.js';
import { FHIR_JSON } from '../plugins/fhir-json.js';
import { auditRequest } from '../plugins/authenticate.js';
import { Access } from '../../fhir/access.js';
import { userSubject } from '../../auth/revocation.js';
import { searchLimitsOf } from '../../fhir/search/limits.js';
import { requestSignal } from '../plugins/request-signal.js';

/** Parsed Prefer header (RFC 7240). */
export function preferences(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of String(request.headers.prefer ?? '').split(/[,;]/)) {
    const [k, v] = part.split('=').map((s) => s?.trim());
    if (k) out[k.toLowerCase()] = (v ?? '').replace(/^"|"$/g, '');
  }
  return out;
}

/** A DNS name or IPv4 address: labels of letters, digits, '-' and '_' (docker service names), 63 at most each. */
const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
/** A name whose last label is a number, which URL parsers read as an IPv4 address. */
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:\d+|0x[0-9a-f]*)\.?$/i;

/**
 * Whether a Host header is a syntactically valid host[:port] (RFC 9110 section 7.2): a DNS name,
 * an IPv4 address or a bracketed IPv6 address, and a port of 1 to 65535. No userinfo, path, space
 * or anything else a URL built from it could not carry.
 */
export function validHostHeader(host: string | undefined): host is string {
  if (!host || host.length > 261) return false;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return false;
  const [, name, port] = m;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  if (name!.startsWith('[')) return isIPv6(name!.slice(1, -1));
  if (name!.length > 253 || !HOST_NAME.test(name!)) return false;
  if (NUMERIC_LAST_LABEL.test(name!) && !isIPv4(name!)) return false;
  return URL.canParse(`http://${host}/`);
}

/** The FHIR base on the server's own address as configured (HOST, PORT), for requests whose Host cannot be used. */
export function ownBaseUrl(config: Config): string {
  return `http://${isIPv6(config.HOST) ? `[${config.HOST}]` : config.HOST}:${config.PORT}/fhir`;
}

/**
 * Public base URL of the FHIR endpoint for this request: HMS_BASE_URL when set; else the request's
 * scheme and Host when the Host is a valid host[:port]; else the configured address. Links,
 * Location headers and fullUrls are built on it, so a hostile Host never makes an invalid URL.
 */
export function baseUrl(request: FastifyRequest): string {
  const config = request.server.config;
  if (config.HMS_BASE_URL) return config.HMS_BASE_URL;
  const host = request.headers.host;
  return validHostHeader(host) ? `${request.protocol}://${host}/fhir` : ownBaseUrl(config);
}

const accessOf = new WeakMap<FastifyRequest, Access>();

/** The request's access (one per request, from its principal). */
export function requestAccess(request: FastifyRequest): Access {
  let access = accessOf.get(request);
  if (!access) {
    if (!request.principal) throw new Error('requestAccess before authentication');
    access = new Access(request.principal);
    accessOf.set(request, access);
  }
  return access;
}

export function fhirContext(request: FastifyRequest): FhirContext {
  const access = requestAccess(request);
  return {
    db: request.server.db,
    baseUrl: baseUrl(request),
    userId: request.principal?.kind === 'user' ? request.principal.userId : undefined,
    access,
    strict: preferences(request).handling === 'strict',
    maxCount: request.server.config.HMS_MAX_COUNT,
    revokeUser: (userId) => request.server.revocations.publish(userSubject(userId)),
    searchLimits: searchLimitsOf(request.server.config),
    // made on first use: only statements that can be cancelled ask for it
    get signal() { return requestSignal(request); },
    audit: (events, trx) => auditRequest(request, (Array.isArray(events) ? events : [events]).map((e) => ({
      action: e.action, resourceType: e.resourceType, resourceId: e.resourceId, patientId: e.patientId ?? null, success: e.success,
      failureReason: e.reason, additionalData: e.data, breakGlass: e.breakGlass ?? access.breakGlass(e.patientId),
    })), trx),
  };
}

/** Sends a resource with its version headers, honouring Prefer: return=. */
export function sendResource(request: FastifyRequest, reply: FastifyReply, status: number, resource: Resource, withLocation = false): FastifyReply {
  const meta = resource.meta ?? {};
  const url = `${baseUrl(request)}/${resource.resourceType}/${resource.id}/_history/${meta.versionId}`;
  if (meta.versionId) reply.header('ETag', `W/"${meta.versionId}"`);
  if (meta.lastUpdated) reply.header('Last-Modified', new Date(meta.lastUpdated).toUTCString());
  if (withLocation) reply.header('Location', url);
  reply.code(status).type(FHIR_JSON);
  const ret = preferences(request).return;
  if (withLocation && ret === 'minimal') return reply.send();
  if (withLocation && ret === 'OperationOutcome') {
    return reply.send(operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `${resource.resourceType}/${resource.id} version ${meta.versionId} stored` }]));
  }
  return reply.send(resource);
}

/** The URL of a request as made (the Bundle's self link), from its parsed query. */
export function selfUrl(request: FastifyRequest, type: string, query: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) params.append(k, one);
  const qs = params.toString();
  return `${baseUrl(request)}/${type}${qs ? '?' + qs : ''}`;
}
