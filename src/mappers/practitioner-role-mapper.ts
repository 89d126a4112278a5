/**
 * PractitionerRole: a read-only view of a users row (role doctor or nurse), with the user's id.
 * https://hl7.org/fhir/R4/practitionerrole.html
 * It is built from the columns alone (nothing is kept for it): the practitioner, the role as a
 * practitioner-role code, the specialization as specialty text, the department as an HMS
 * extension, the email and phone, and active.
 */
import type { CodeableConcept, ContactPoint, Extension, Reference, Resource } from '../fhir/types.js';
import type { Row } from './column-map.js';
import { PRACTITIONER_EXTENSIONS } from './practitioner-mapper.js';

export const PRACTITIONER_ROLE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/practitioner-role';
const ROLE_DISPLAY: Record<string, string> = { doctor: 'Doctor', nurse: 'Nurse' };

export interface PractitionerRole extends Resource {
  resourceType: 'PractitionerRole';
  extension?: Extension[];
  active?: boolean;
  practitioner?: Reference;
  code?: CodeableConcept[];
  specialty?: CodeableConcept[];
  telecom?: ContactPoint[];
}

const text = (v: unknown): string | undefined => (v === null || v === undefined || v === '' ? undefined : String(v));

/** The PractitionerRole a users row reads as. */
export function practitionerRoleFromRow(row: Row): PractitionerRole {
  const id = String(row.id);
  const role = String(row.role);
  const department = text(row.department);
  const specialization = text(row.specialization);
  const name = text(row.name);
  const telecom: ContactPoint[] = [];
  if (text(row.email)) telecom.push({ system: 'email', value: String(row.email) });
  if (text(row.phone)) telecom.push({ system: 'phone', value: String(row.phone) });
  const out: PractitionerRole = {
    resourceType: 'PractitionerRole',
    id,
    ...(department ? { extension: [{ url: PRACTITIONER_EXTENSIONS.department, valueString: department }] } : {}),
    active: (row.status ?? 'active') === 'active',
    practitioner: { reference: `Practitioner/${id}`, ...(name ? { display: name } : {}) },
    code: [{ coding: [{ system: PRACTITIONER_ROLE_SYSTEM, code: role, ...(ROLE_DISPLAY[role] ? { display: ROLE_DISPLAY[role] } : {}) }] }],
    ...(specialization ? { specialty: [{ text: specialization }] } : {}),
    ...(telecom.length ? { telecom } : {}),
  };
  return out;
}
