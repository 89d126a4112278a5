/**
 * PractitionerRole: a read-only view of the users rows that are Practitioners, one per user, with
 * the user's id. https://hl7.org/fhir/R4/practitionerrole.html
 */
import { defineResource } from '../registry.js';
import { FhirError } from '../outcome.js';
import { practitionerRoleFromRow, type PractitionerRole } from '../../mappers/practitioner-role-mapper.js';
import { PRACTITIONER_ROWS, userColumnParams } from './Practitioner.js';

export const PractitionerRoleDefinition = defineResource<PractitionerRole>({
  type: 'PractitionerRole',
  table: 'users',
  rowFilter: PRACTITIONER_ROWS,
  profile: 'http://hl7.org/fhir/StructureDefinition/PractitionerRole',
  description: 'The role, specialty and department of a doctor or nurse (read-only; id = the Practitioner id; change them through Practitioner)',
  interactions: ['read', 'search-type'],
  softDelete: true,
  kept: false,
  toRow: () => { throw new FhirError(405, 'PractitionerRole is read-only: write the Practitioner instead', 'not-supported'); },
  fromRow: (row) => practitionerRoleFromRow(row),
  references: [],
  // isSummary in R4 (healthcareService and endpoint are not)
  summaryElements: ['identifier', 'active', 'period', 'practitioner', 'organization', 'code', 'specialty', 'location', 'telecom'],
  searchParams: [
    {
      name: 'practitioner', source: 'column', type: 'reference', column: 'id', expression: 'PractitionerRole.practitioner',
      description: 'The Practitioner the role is of (the same id)', targets: ['Practitioner'],
    },
    ...userColumnParams('PractitionerRole'),
  ],
});
