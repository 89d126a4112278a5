/** FHIR OperationOutcome construction and the error type every layer throws. https://hl7.org/fhir/R4/operationoutcome.html */

export type IssueSeverity = 'fatal' | 'error' | 'warning' | 'information';
export type IssueCode =
  | 'invalid' | 'structure' | 'required' | 'value' | 'invariant' | 'security' | 'login' | 'unknown'
  | 'expired' | 'forbidden' | 'suppressed' | 'processing' | 'not-supported' | 'duplicate'
  | 'multiple-matches' | 'not-found' | 'deleted' | 'too-long' | 'code-invalid' | 'extension'
  | 'too-costly' | 'business-rule' | 'conflict' | 'transient' | 'lock-error' | 'no-store'
  | 'exception' | 'timeout' | 'incomplete' | 'throttled' | 'informational';

export interface Issue {
  severity: IssueSeverity;
  code: IssueCode;
  diagnostics?: string;
  expression?: string[];
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  issue: Issue[];
}

/** Builds an OperationOutcome from issues. */
export function operationOutcome(issues: Issue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

/** An error that carries its HTTP status and the OperationOutcome issues to answer with. */
export class FhirError extends Error {
  readonly status: number;
  readonly issues: Issue[];
  readonly headers: Record<string, string>;

  constructor(status: number, issues: Issue[] | string, code: IssueCode = 'processing', headers: Record<string, string> = {}) {
    const list = typeof issues === 'string' ? [{ severity: 'error' as const, code, diagnostics: issues }] : issues;
    super(list.map((i) => i.diagnostics ?? i.code).join('; '));
    this.status = status;
    this.issues = list;
    this.headers = headers;
  }

  get outcome(): OperationOutcome {
    return operationOutcome(this.issues);
  }
}

export const badRequest = (msg: string, expression?: string): FhirError =>
  new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics: msg, ...(expression ? { expression: [expression] } : {}) }]);
export const unprocessable = (msg: string, expression?: string, code: IssueCode = 'processing'): FhirError =>
  new FhirError(422, [{ severity: 'error', code, diagnostics: msg, ...(expression ? { expression: [expression] } : {}) }]);
export const notFound = (msg: string): FhirError => new FhirError(404, msg, 'not-found');
export const gone = (msg: string): FhirError => new FhirError(410, msg, 'deleted');
export const conflict = (msg: string): FhirError => new FhirError(409, msg, 'conflict');
export const preconditionFailed = (msg: string): FhirError => new FhirError(412, msg, 'conflict');
