/**
 * ServiceRequest <- lab_results row: every lab result was ordered, so every row is also a lab
 * order (read-only view, built from the columns alone). https://hl7.org/fhir/R4/servicerequest.html
 * Pure, no I/O. See docs/resources/ServiceRequest.md.
 */
import type { Resource } from '../fhir/types.js';
import type { Row } from './column-map.js';
import { LAB_CATEGORY_SYSTEM, testCoding } from './lab-result-mapper.js';

export const SERVICE_REQUEST_STATUS: Record<string, string> = { ordered: 'active', in_progress: 'active', completed: 'completed', cancelled: 'revoked' };

/** ServiceRequest.status -> lab_results.status values. */
export const labStatusesOf = (status: string): string[] => Object.entries(SERVICE_REQUEST_STATUS).filter(([, s]) => s === status).map(([col]) => col);

/** SNOMED CT categories of the R4 servicerequest-category value set (example binding). */
const LAB_PROCEDURE = { system: 'http://snomed.info/sct', code: '108252007', display: 'Laboratory procedure' };
const IMAGING = { system: 'http://snomed.info/sct', code: '363679005', display: 'Imaging' };

const day = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v).slice(0, 10));

/** The ServiceRequest a lab_results row reads as. */
export function serviceRequestFromRow(row: Row): Resource {
  const r: Resource = {
    resourceType: 'ServiceRequest',
    id: String(row.id),
    status: SERVICE_REQUEST_STATUS[String(row.status ?? 'ordered')] ?? 'unknown',
    intent: 'order',
    category: [
      { coding: [row.test_category === 'imaging' ? IMAGING : LAB_PROCEDURE] },
      { coding: [{ system: LAB_CATEGORY_SYSTEM, code: String(row.test_category ?? 'other') }] },
    ],
    code: { ...(row.test_code ? { coding: [testCoding(String(row.test_code))] } : {}), text: String(row.test_name ?? '') },
    subject: { reference: `Patient/${String(row.patient_id)}` },
  };
  if (row.visit_id) r.encounter = { reference: `Encounter/${String(row.visit_id)}` };
  r.authoredOn = day(row.ordered_date);
  r.requester = { reference: `Practitioner/${String(row.ordered_by)}` };
  if (row.collection_date) r.occurrenceDateTime = day(row.collection_date);
  if (row.lab_comments) r.note = [{ text: String(row.lab_comments) }];
  if (!r.authoredOn) delete r.authoredOn;
  return r;
}
