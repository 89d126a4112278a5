/**
 * Pieces the resource definitions share: subject and clinician checks, token and reference
 * extraction, and the search parameters and reference checks most clinical types have.
 * Not a resource itself (src/fhir/resources/index.ts registers the types).
 */
import type { ColumnSearchParam, IndexSearchParam, Interaction, ReferenceCheck, StoreCheckContext, TokenValue } from '../registry.js';
import { conflict, unprocessable } from '../outcome.js';
import type { CodeableConcept, Reference, Resource } from '../types.js';
import { referenceId } from '../../mappers/datatypes.js';
import type { Row } from '../../mappers/column-map.js';

/** A subject that is a literal Patient reference (the patient_id column is NOT NULL). */
export function checkPatientSubject(r: { subject?: Reference }, type: string): void {
  if (!referenceId(r.subject, 'Patient')) {
    throw unprocessable(`${type}.subject must refer to a Patient of this server (Patient/<id>)`, `${type}.subject`, 'required');
  }
}

/** An explicit Practitioner reference (not the writing user's default) must name a doctor or nurse. */
export async function checkClinician(ref: Reference | undefined, expression: string, ctx: StoreCheckContext): Promise<void> {
  const id = referenceId(ref, 'Practitioner');
  if (!id) return;
  if (!(await ctx.isClinician(id))) throw unprocessable(`${expression} refers to Practitioner/${id}, which is not a doctor or nurse of this server`, expression, 'not-found');
}

/** Every coding of concepts as tokens. */
export const codings = (concepts: (CodeableConcept | undefined)[]): TokenValue[] =>
  concepts.flatMap((c) => c?.coding ?? []).filter((c) => c.code).map((c) => ({ system: c.system, code: c.code! }));

/** Identifier tokens (system|value). */
export const identifiers = (r: Resource): TokenValue[] =>
  ((r.identifier as { system?: string; value?: string }[] | undefined) ?? []).filter((i) => i.value).map((i) => ({ system: i.system, code: i.value! }));

/** Literal references ("Type/id") among some references. */
export const literalRefs = (refs: (Reference | undefined)[]): string[] =>
  refs.map((x) => x?.reference).filter((x): x is string => !!x && /^[A-Za-z]+\/[^/]+$/.test(x));

/** The patient and subject parameters of a type whose patient_id column holds its subject. */
export function patientParams(type: string): ColumnSearchParam[] {
  return [
    {
      name: 'patient', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'],
      expression: `${type}.subject.where(resolve() is Patient)`, description: 'The patient', sort: ['patient_id'],
    },
    {
      name: 'subject', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'],
      expression: `${type}.subject`, description: 'The subject (always a Patient here)', sort: ['patient_id'],
    },
  ];
}

/** The column parameters every clinical type has: patient, subject and encounter over patient_id / visit_id. */
export function patientAndEncounterParams(type: string, encounterExpression = `${type}.encounter`): ColumnSearchParam[] {
  return [
    ...patientParams(type),
    {
      name: 'encounter', source: 'column', type: 'reference', column: 'visit_id', targets: ['Encounter'],
      expression: encounterExpression, description: 'The encounter (visit)',
    },
  ];
}

/** Every interaction of a versioned, writable type. */
export const ALL_INTERACTIONS: Interaction[] = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];

/** The reference checks of patient_id, visit_id and a users column. */
export function clinicalReferences(type: string, userColumn: string, userExpression: string): ReferenceCheck[] {
  return [
    { column: 'patient_id', expression: `${type}.subject`, targetType: 'Patient', table: 'patients', softDelete: true },
    { column: 'visit_id', expression: `${type}.encounter`, targetType: 'Encounter', table: 'visits', softDelete: false },
    // the writing user stands in when the resource names nobody; an explicit reference is checked in checkStored
    { column: userColumn, expression: userExpression, targetType: 'Practitioner', table: 'users', softDelete: true, requiredUser: true },
  ];
}

/** The standard `identifier` parameter of a type (index-backed: every identifier, system|value). */
export function identifierParam(type: string, description = `An identifier of the ${type} (system|value)`): IndexSearchParam {
  return { name: 'identifier', source: 'index', type: 'token', expression: `${type}.identifier`, description, extract: identifiers };
}

/**
 * A value another row of the table already holds (a unique key such as an invoice number):
 * 409 before the database's unique key would fail the write.
 */
export async function checkUnique(ctx: StoreCheckContext, table: string, where: Row, message: string): Promise<void> {
  const taken = await ctx.trx(table).where(where).whereNot({ id: ctx.id }).first('id');
  if (taken) throw conflict(message);
}

/**
 * The `status` parameter of a type: the code the resource states, exactly (index-backed). Several
 * FHIR codes may share one status column value (the column keeps the seed's enum), so the column
 * alone would match codes the client did not ask for; it only speaks for rows written natively.
 */
export function statusParam(
  type: string, system: string, description: string, column: string, toColumn: (code: string) => unknown[] | undefined,
  name = 'status', element = 'status',
): IndexSearchParam {
  return {
    name, source: 'index', type: 'token', expression: `${type}.${element}`, description,
    extract: (r) => {
      const v = r[element];
      if (typeof v === 'string') return [{ system, code: v }];
      return codings([v as CodeableConcept | undefined]);
    },
    native: { column, tokenToColumn: (s, code) => (s && s !== system ? undefined : toColumn(code)) },
  };
}
