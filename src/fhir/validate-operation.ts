/**
 * $validate (POST /fhir/{Type}/$validate, POST /fhir/{Type}/{id}/$validate): runs the real create,
 * update or delete inside a database transaction that is always rolled back, so every check the
 * write would make (structure, business rules, references, access) answers, and nothing is
 * written. docs/validate-operation.md, https://hl7.org/fhir/R4/resource-operation-validate.html
 */
import type { FhirContext } from './context.js';
import { FhirError, badRequest, operationOutcome, type Issue, type OperationOutcome } from './outcome.js';
import { definitionOf } from './resource-view.js';
import { createResource, deleteResource, updateResource } from './interactions.js';

export type ValidateMode = 'create' | 'update' | 'delete';
const MODES: ValidateMode[] = ['create', 'update', 'delete'];

/** What a $validate request asks: the resource (none for a delete), the mode and the id. */
export interface ValidateRequest { resource?: Record<string, unknown>; mode: ValidateMode; id?: string }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads the body (the resource itself, or a Parameters with `resource` and `mode`) and the
 * query's mode; 400 for a body that is no resource of the type or a mode HMS does not know.
 */
export function validateRequest(type: string, urlId: string | undefined, body: unknown, queryMode?: string): ValidateRequest {
  if (!isObject(body)) throw badRequest('The body must be a JSON object: the resource, or a Parameters with a parameter resource');
  let resource: Record<string, unknown> | undefined = body;
  let mode: string | undefined = queryMode;
  if (body.resourceType === 'Parameters' && type !== 'Parameters') {
    const params = Array.isArray(body.parameter) ? (body.parameter as unknown[]).filter(isObject) : [];
    const r = params.find((p) => p.name === 'resource')?.resource;
    if (r !== undefined && !isObject(r)) throw badRequest('Parameters.parameter resource must carry a resource', 'Parameters.parameter');
    resource = r as Record<string, unknown> | undefined;
    const m = params.find((p) => p.name === 'mode');
    if (m) {
      if (typeof m.valueCode !== 'string') throw badRequest('Parameters.parameter mode must have a valueCode', 'Parameters.parameter');
      mode = m.valueCode;
    }
  }
  mode ??= urlId ? 'update' : 'create';
  if (!MODES.includes(mode as ValidateMode)) throw badRequest(`mode must be create, update or delete, not '${mode.slice(0, 32)}' (profile validation is not supported)`);
  if (resource === undefined && mode !== 'delete') throw badRequest(`mode ${mode} needs the resource: the body itself or a Parameters parameter resource`);
  if (resource && resource.resourceType !== type) throw badRequest(`Expected resourceType ${type}, got ${JSON.stringify(resource.resourceType ?? null).slice(0, 64)}`, `${type}.resourceType`);
  let id = urlId;
  if (mode !== 'create') {
    id ??= typeof resource?.id === 'string' ? resource.id : undefined;
    if (!id) throw badRequest(`mode ${mode} needs an id: POST ${type}/{id}/$validate, or a resource with an id`);
    // the id the URL names is the one an update would write to
    if (resource && resource.id === undefined) resource = { ...resource, id };
  }
  return { resource, mode: mode as ValidateMode, id };
}

/** Thrown to roll the dry run back, carrying what it found. */
class DryRun extends Error {
  constructor(readonly issues: Issue[]) { super('dry run'); }
}

/** Whether an error is an answer $validate passes on as it is (not a finding about the resource). */
const passedOn = (e: FhirError): boolean => e.status === 401 || e.status === 403 || e.status >= 500;

/**
 * Runs the interaction in a transaction that is always rolled back, with a context whose audit
 * writes nothing and whose deferred work is discarded. Returns the issues it would raise (none: OK).
 */
async function dryRun(ctx: FhirContext, type: string, req: ValidateRequest): Promise<Issue[]> {
  try {
    await ctx.db.transaction(async (trx) => {
      const dry: FhirContext = {
        ...ctx, db: trx, deferred: [], audit: async () => {}, revokeUser: async () => {},
      };
      if (req.mode === 'create') await createResource(dry, type, req.resource);
      else if (req.mode === 'update') await updateResource(dry, type, req.id!, req.resource);
      else await deleteResource(dry, type, req.id!);
      throw new DryRun([]);
    });
  } catch (e) {
    if (e instanceof DryRun) return e.issues;
    if (e instanceof FhirError && !passedOn(e)) return e.issues;
    throw e;
  }
  throw new Error('unreachable: the dry run always rolls back');
}

/**
 * $validate: the OperationOutcome of what the create, update or delete would raise (200 either
 * way); 400 for a malformed request, 403 when the caller may not do what it validates. One audit
 * row (action validate), written outside the rolled-back transaction.
 */
export async function validateOperation(ctx: FhirContext, type: string, urlId: string | undefined, body: unknown, queryMode?: string): Promise<OperationOutcome> {
  definitionOf(type);
  const req = validateRequest(type, urlId, body, queryMode);
  const issues = await dryRun(ctx, type, req);
  await ctx.audit({
    action: 'validate', resourceType: type, resourceId: req.id, success: true,
    data: { mode: req.mode, valid: issues.length === 0, issues: issues.length },
  });
  if (issues.length) return operationOutcome(issues);
  return operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `All OK: the ${req.mode} would succeed (nothing was written)` }]);
}
