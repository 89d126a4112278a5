/** Patient, over the patients table. https://hl7.org/fhir/R4/patient.html */
import { defineResource, type TokenValue } from '../registry.js';
import { ALL_INTERACTIONS, identifierParam } from './common.js';
import {
  BLOOD_TYPES, PATIENT_EXTENSIONS, genderToColumn, patientFromRow, patientToRow, UNKNOWN_BIRTH_DATE, type Patient,
} from '../../mappers/patient-mapper.js';
import { extensionValue, HMS_CANONICAL } from '../../mappers/datatypes.js';
import { checkNotFuture, checkOneOf, checkRealDate } from '../checks.js';
import type { Address, ContactPoint, HumanName, Reference } from '../types.js';

const names = (p: Patient): HumanName[] => p.name ?? [];
const addresses = (p: Patient): Address[] => p.address ?? [];
const telecoms = (p: Patient): ContactPoint[] => p.telecom ?? [];
const strings = (list: (string | undefined)[]): string[] => list.filter((s): s is string => typeof s === 'string' && s !== '');
const telecomTokens = (p: Patient, system?: string): TokenValue[] =>
  telecoms(p).filter((t) => t.value && (!system || t.system === system)).map((t) => ({ system: t.system, code: t.value! }));

export const PatientDefinition = defineResource<Patient>({
  type: 'Patient',
  table: 'patients',
  profile: 'http://hl7.org/fhir/StructureDefinition/Patient',
  description: 'Demographics of a person receiving care (patients table)',
  interactions: ALL_INTERACTIONS,
  softDelete: true,
  patientColumn: 'id',
  assigns: true,
  toRow: patientToRow,
  fromRow: patientFromRow,
  check(p) {
    checkRealDate(p.birthDate, 'Patient.birthDate');
    checkNotFuture(p.birthDate, 'Patient.birthDate');
    checkRealDate(p.deceasedDateTime, 'Patient.deceasedDateTime');
    checkOneOf(extensionValue(p, PATIENT_EXTENSIONS.bloodType, 'valueCode'), BLOOD_TYPES, `Patient.extension('${PATIENT_EXTENSIONS.bloodType}')`);
  },
  references: [
    {
      column: 'primary_doctor_id', expression: 'Patient.generalPractitioner', targetType: 'Practitioner', table: 'users',
      where: { role: ['doctor', 'nurse'] }, softDelete: true,
    },
  ],
  operations: [
    { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' },
    { name: 'break-glass', definition: `${HMS_CANONICAL}/OperationDefinition/Patient-break-glass` },
  ],
  summaryElements: ['identifier', 'active', 'name', 'telecom', 'gender', 'birthDate', 'deceasedBoolean', 'deceasedDateTime', 'address', 'managingOrganization', 'link'],
  searchParams: [
    identifierParam('Patient'),
    {
      name: 'name', source: 'index', type: 'string', expression: 'Patient.name',
      description: 'Any part of any name: family, given, prefix, suffix or text', sort: ['last_name', 'first_name'],
      extract: (r) => strings(names(r as Patient).flatMap((n) => [n.text, n.family, ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? [])])),
    },
    {
      name: 'family', source: 'index', type: 'string', expression: 'Patient.name.family',
      description: 'A family name', sort: ['last_name'],
      extract: (r) => strings(names(r as Patient).map((n) => n.family)),
    },
    {
      name: 'given', source: 'index', type: 'string', expression: 'Patient.name.given',
      description: 'A given name', sort: ['first_name'],
      extract: (r) => strings(names(r as Patient).flatMap((n) => n.given ?? [])),
    },
    {
      name: 'birthdate', source: 'column', type: 'date', column: 'date_of_birth', dateKind: 'date',
      expression: 'Patient.birthDate', description: 'Date of birth (partial dates as ranges)',
      missingValues: [UNKNOWN_BIRTH_DATE], sort: ['date_of_birth'],
    },
    {
      name: 'gender', source: 'column', type: 'token', column: 'gender', expression: 'Patient.gender',
      description: 'male | female | other | unknown', sort: ['CAST(t.gender AS CHAR)'], // MySQL sorts ENUMs by position, not by value
      missingValues: ['prefer_not_to_say'],
      tokenToColumn: (system, code) =>
        system && system !== 'http://hl7.org/fhir/administrative-gender' ? undefined : [genderToColumn(code)].filter(Boolean),
    },
    {
      name: 'phone', source: 'index', type: 'token', expression: "Patient.telecom.where(system='phone')",
      description: 'A phone number', extract: (r) => telecomTokens(r as Patient, 'phone'),
    },
    {
      name: 'email', source: 'index', type: 'token', expression: "Patient.telecom.where(system='email')",
      description: 'An email address', extract: (r) => telecomTokens(r as Patient, 'email'),
    },
    {
      name: 'telecom', source: 'index', type: 'token', expression: 'Patient.telecom',
      description: 'Any contact point (system|value, system being phone, email, fax ...)', extract: (r) => telecomTokens(r as Patient),
    },
    {
      name: 'address', source: 'index', type: 'string', expression: 'Patient.address',
      description: 'Any part of any address: line, city, district, state, postal code, country or text',
      extract: (r) => strings(addresses(r as Patient).flatMap((a) => [a.text, ...(a.line ?? []), a.city, a.district, a.state, a.postalCode, a.country])),
    },
    {
      name: 'address-city', source: 'index', type: 'string', expression: 'Patient.address.city',
      description: 'A city of an address', sort: ["COALESCE(city, '')"], extract: (r) => strings(addresses(r as Patient).map((a) => a.city)),
    },
    {
      name: 'address-state', source: 'index', type: 'string', expression: 'Patient.address.state',
      description: 'A state of an address', sort: ["COALESCE(state, '')"], extract: (r) => strings(addresses(r as Patient).map((a) => a.state)),
    },
    {
      name: 'address-postalcode', source: 'index', type: 'string', expression: 'Patient.address.postalCode',
      description: 'A postal code of an address', sort: ["COALESCE(zip_code, '')"], extract: (r) => strings(addresses(r as Patient).map((a) => a.postalCode)),
    },
    {
      name: 'general-practitioner', source: 'index', type: 'reference', expression: 'Patient.generalPractitioner',
      description: "The patient's nominated care provider", targets: ['Practitioner', 'Organization', 'PractitionerRole'],
      extract: (r) => ((r as Patient).generalPractitioner ?? []).map((x: Reference) => x.reference).filter((x): x is string => !!x && /^[A-Za-z]+\/[^/]+$/.test(x)),
    },
    {
      name: 'active', source: 'column', type: 'token', column: 'status', expression: 'Patient.active',
      description: 'Whether the record is active (false = status inactive)',
      tokenToColumn: (_system, code) => (code === 'true' ? ['active', 'deceased'] : code === 'false' ? ['inactive'] : undefined),
    },
  ],
});
