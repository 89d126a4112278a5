/**
 * ServiceRequest: a read-only view of lab_results rows as lab orders (every lab result was
 * ordered). https://hl7.org/fhir/R4/servicerequest.html · docs/resources/ServiceRequest.md
 */
import { defineResource } from '../registry.js';
import { FhirError } from '../outcome.js';
import type { Resource } from '../types.js';
import { labStatusesOf, serviceRequestFromRow } from '../../mappers/service-request-mapper.js';

export const ServiceRequestDefinition = defineResource<Resource>({
  type: 'ServiceRequest',
  table: 'lab_results',
  profile: 'http://hl7.org/fhir/StructureDefinition/ServiceRequest',
  description: 'Lab orders: a read-only view of the lab_results table (write lab results as Observations)',
  interactions: ['read', 'search-type'],
  softDelete: false,
  patientColumn: 'patient_id',
  kept: false,
  toRow: () => { throw new FhirError(405, 'ServiceRequest is read-only: lab orders are written as laboratory Observations', 'not-supported'); },
  fromRow: (row) => serviceRequestFromRow(row),
  references: [],
  summaryElements: ['identifier', 'status', 'intent', 'category', 'priority', 'code', 'subject', 'encounter', 'occurrenceDateTime', 'authoredOn', 'requester'],
  compartment: ['patient'],
  searchParams: [
    { name: 'patient', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'], expression: 'ServiceRequest.subject.where(resolve() is Patient)', description: 'The patient the order is for' },
    { name: 'subject', source: 'column', type: 'reference', column: 'patient_id', targets: ['Patient'], expression: 'ServiceRequest.subject', description: 'The subject of the order (a Patient)' },
    { name: 'encounter', source: 'column', type: 'reference', column: 'visit_id', targets: ['Encounter'], expression: 'ServiceRequest.encounter', description: 'The visit the order was made in' },
    { name: 'requester', source: 'column', type: 'reference', column: 'ordered_by', targets: ['Practitioner'], expression: 'ServiceRequest.requester', description: 'Who ordered the test' },
    {
      name: 'code', source: 'column', type: 'token', column: 'test_code', expression: 'ServiceRequest.code', sort: ['test_code'],
      description: 'The test code (LOINC when it is one, else http://hms.example.org/fhir/CodeSystem/lab-test)',
      tokenToColumn: (system, code) => (system === undefined || system === 'http://loinc.org' || system === 'http://hms.example.org/fhir/CodeSystem/lab-test' ? [code] : undefined),
    },
    {
      name: 'status', source: 'column', type: 'token', column: 'status', expression: 'ServiceRequest.status', description: 'active | completed | revoked',
      sort: ['CAST(t.status AS CHAR)'], tokenToColumn: (system, code) => (system && system !== 'http://hl7.org/fhir/request-status' ? undefined : labStatusesOf(code)),
    },
    { name: 'authored', source: 'column', type: 'date', column: 'ordered_date', dateKind: 'date', expression: 'ServiceRequest.authoredOn', description: 'When the test was ordered', sort: ['ordered_date'] },
  ],
});
