/**
 * Patient <-> patients row. https://hl7.org/fhir/R4/patient.html
 * Columns hold the primary name, birth date, gender, first phone and email, the home address,
 * the emergency contact, blood type / allergies / chronic conditions / current medications
 * (HMS extensions), the first Practitioner in generalPractitioner and the status.
 * Everything else the client sent is kept beside the row (see column-map.ts).
 */
import type { Address, CodeableConcept, ContactPoint, HumanName, Reference, Resource } from '../fhir/types.js';
import { columnsFromResource, resourceFromColumns, TEXT_BYTES, type ColumnField, type Row } from './column-map.js';
import {
  dateToSql, ensurePrimary, extensionValue, hmsExtensionUrl, nameText, primaryAddress, primaryName, primaryOf, referenceId,
  setExtension, setTelecom, telecomIndex,
} from './datatypes.js';

export interface PatientContact {
  relationship?: CodeableConcept[];
  name?: HumanName;
  telecom?: ContactPoint[];
  [k: string]: unknown;
}

export interface Patient extends Resource {
  resourceType: 'Patient';
  active?: boolean;
  name?: HumanName[];
  telecom?: ContactPoint[];
  gender?: string;
  birthDate?: string;
  deceasedBoolean?: boolean;
  deceasedDateTime?: string;
  address?: Address[];
  contact?: PatientContact[];
  generalPractitioner?: Reference[];
  extension?: { url: string; [k: string]: unknown }[];
}

/** patients.date_of_birth is NOT NULL in the seed; a Patient without birthDate stores this and reads back without one. */
export const UNKNOWN_BIRTH_DATE = '0001-01-01';

export const PATIENT_EXTENSIONS = {
  bloodType: hmsExtensionUrl('patient-blood-type'),
  allergies: hmsExtensionUrl('patient-allergies'),
  chronicConditions: hmsExtensionUrl('patient-chronic-conditions'),
  currentMedications: hmsExtensionUrl('patient-current-medications'),
} as const;

export const BLOOD_TYPES = ['A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-'] as const;

const GENDER_TO_COLUMN: Record<string, string> = { male: 'male', female: 'female', other: 'other', unknown: 'prefer_not_to_say' };
const GENDER_FROM_COLUMN: Record<string, string> = { male: 'male', female: 'female', other: 'other', prefer_not_to_say: 'unknown' };

/** FHIR gender code -> patients.gender value. */
export const genderToColumn = (code: string): string | undefined => GENDER_TO_COLUMN[code];

const nameAt = (p: Patient): HumanName | undefined => primaryOf(p.name, primaryName);
const ensureName = (p: Patient): HumanName => ensurePrimary<Patient, 'name', HumanName>(p, 'name', primaryName, { use: 'official' });
const addressAt = (p: Patient): Address | undefined => primaryOf(p.address, primaryAddress);
const ensureAddress = (p: Patient): Address => ensurePrimary<Patient, 'address', Address>(p, 'address', primaryAddress, { use: 'home' });

function setAddressPart(p: Patient, key: 'city' | 'state' | 'postalCode' | 'country', value: unknown): void {
  if (value === null || value === undefined || value === '') {
    const a = addressAt(p);
    if (a) delete a[key];
    return;
  }
  ensureAddress(p)[key] = String(value);
}

const EMERGENCY = 'C'; // v2-0131 "Emergency Contact"

function emergencyContact(p: Patient): PatientContact | undefined {
  const contacts = p.contact ?? [];
  return contacts.find((c) => c.relationship?.some((r) => r.coding?.some((x) => x.code === EMERGENCY))) ?? contacts[0];
}

function ensureEmergencyContact(p: Patient): PatientContact {
  const existing = emergencyContact(p);
  if (existing) return existing;
  const contact: PatientContact = {
    relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: EMERGENCY }] }],
  };
  (p.contact ??= []).push(contact);
  return contact;
}

function relationshipText(c: PatientContact | undefined): string | undefined {
  const rels = c?.relationship ?? [];
  for (const r of rels) {
    if (r.text) return r.text;
  }
  for (const r of rels) {
    const coding = r.coding?.find((x) => x.code !== EMERGENCY) ?? r.coding?.[0];
    if (coding) return coding.display ?? coding.code;
  }
  return undefined;
}

function statusOf(p: Patient): string {
  if (p.deceasedBoolean === true || p.deceasedDateTime) return 'deceased';
  return p.active === false ? 'inactive' : 'active';
}

function extensionField(column: string, url: string, kind: string, size: { maxLength?: number; maxBytes?: number }): ColumnField<Patient> {
  return {
    column,
    path: `Patient.extension('${url}')`,
    ...size,
    toColumn: (p) => extensionValue(p, url, kind),
    fromColumn: (p, v) => setExtension(p, url, kind, v),
  };
}

export const patientFields: ColumnField<Patient>[] = [
  {
    column: 'last_name', path: 'Patient.name.family', maxLength: 100,
    toColumn: (p) => nameAt(p)?.family ?? '',
    fromColumn: (p, v) => { if (v) ensureName(p).family = String(v); else { const n = nameAt(p); if (n) delete n.family; } },
  },
  {
    column: 'first_name', path: 'Patient.name.given', maxLength: 100,
    toColumn: (p) => nameAt(p)?.given?.join(' ') ?? '',
    fromColumn: (p, v) => { if (v) ensureName(p).given = String(v).split(' ').filter(Boolean); else { const n = nameAt(p); if (n) delete n.given; } },
  },
  {
    column: 'date_of_birth', path: 'Patient.birthDate',
    toColumn: (p) => dateToSql(p.birthDate) ?? UNKNOWN_BIRTH_DATE,
    fromColumn: (p, v) => { const d = v ? String(v).slice(0, 10) : UNKNOWN_BIRTH_DATE; if (d === UNKNOWN_BIRTH_DATE) delete p.birthDate; else p.birthDate = d; },
  },
  {
    column: 'gender', path: 'Patient.gender',
    toColumn: (p) => GENDER_TO_COLUMN[p.gender ?? 'unknown'],
    fromColumn: (p, v) => { p.gender = GENDER_FROM_COLUMN[String(v)] ?? 'unknown'; },
  },
  {
    column: 'phone', path: "Patient.telecom.where(system='phone')", maxLength: 20,
    toColumn: (p) => { const i = telecomIndex(p.telecom, 'phone'); return i >= 0 ? p.telecom![i]!.value : undefined; },
    fromColumn: (p, v) => setTelecom(p, 'phone', v),
  },
  {
    column: 'email', path: "Patient.telecom.where(system='email')", maxLength: 255,
    toColumn: (p) => { const i = telecomIndex(p.telecom, 'email'); return i >= 0 ? p.telecom![i]!.value : undefined; },
    fromColumn: (p, v) => setTelecom(p, 'email', v),
  },
  {
    column: 'address', path: 'Patient.address.line', maxBytes: TEXT_BYTES,
    toColumn: (p) => addressAt(p)?.line?.join('\n'),
    fromColumn: (p, v) => { if (v) ensureAddress(p).line = String(v).split('\n'); else { const a = addressAt(p); if (a) delete a.line; } },
  },
  { column: 'city', path: 'Patient.address.city', maxLength: 100, toColumn: (p) => addressAt(p)?.city, fromColumn: (p, v) => setAddressPart(p, 'city', v) },
  { column: 'state', path: 'Patient.address.state', maxLength: 50, toColumn: (p) => addressAt(p)?.state, fromColumn: (p, v) => setAddressPart(p, 'state', v) },
  { column: 'zip_code', path: 'Patient.address.postalCode', maxLength: 10, toColumn: (p) => addressAt(p)?.postalCode, fromColumn: (p, v) => setAddressPart(p, 'postalCode', v) },
  { column: 'country', path: 'Patient.address.country', maxLength: 50, toColumn: (p) => addressAt(p)?.country, fromColumn: (p, v) => setAddressPart(p, 'country', v) },
  {
    column: 'emergency_contact_name', path: 'Patient.contact.name', maxLength: 255,
    toColumn: (p) => nameText(emergencyContact(p)?.name),
    fromColumn: (p, v) => { if (v) ensureEmergencyContact(p).name = { text: String(v) }; else { const c = emergencyContact(p); if (c) delete c.name; } },
  },
  {
    column: 'emergency_contact_phone', path: 'Patient.contact.telecom', maxLength: 20,
    toColumn: (p) => { const c = emergencyContact(p); const i = telecomIndex(c?.telecom, 'phone'); return i >= 0 ? c!.telecom![i]!.value : undefined; },
    fromColumn: (p, v) => { const c = v ? ensureEmergencyContact(p) : emergencyContact(p); if (c) setTelecom(c, 'phone', v); },
  },
  {
    column: 'emergency_contact_relationship', path: 'Patient.contact.relationship', maxLength: 50,
    toColumn: (p) => relationshipText(emergencyContact(p)),
    fromColumn: (p, v) => {
      const c = v ? ensureEmergencyContact(p) : emergencyContact(p);
      if (!c) return;
      const emergency = (c.relationship ?? []).filter((r) => r.coding?.some((x) => x.code === EMERGENCY) && !r.text);
      c.relationship = v ? [...emergency.map((r) => ({ coding: r.coding!.filter((x) => x.code === EMERGENCY) })), { text: String(v) }] : emergency;
      if (c.relationship.length === 0) delete c.relationship;
    },
  },
  extensionField('blood_type', PATIENT_EXTENSIONS.bloodType, 'valueCode', {}),
  extensionField('allergies', PATIENT_EXTENSIONS.allergies, 'valueString', { maxBytes: TEXT_BYTES }),
  extensionField('chronic_conditions', PATIENT_EXTENSIONS.chronicConditions, 'valueString', { maxBytes: TEXT_BYTES }),
  extensionField('current_medications', PATIENT_EXTENSIONS.currentMedications, 'valueString', { maxBytes: TEXT_BYTES }),
  {
    column: 'primary_doctor_id', path: 'Patient.generalPractitioner',
    toColumn: (p) => p.generalPractitioner?.map((r) => referenceId(r, 'Practitioner')).find(Boolean),
    fromColumn: (p, v) => {
      const list = p.generalPractitioner ?? [];
      const i = list.findIndex((r) => referenceId(r, 'Practitioner'));
      if (v === null || v === undefined) { if (i >= 0) list.splice(i, 1); }
      else if (i >= 0) list[i] = { reference: `Practitioner/${String(v)}` };
      else list.unshift({ reference: `Practitioner/${String(v)}` });
      if (list.length) p.generalPractitioner = list; else delete p.generalPractitioner;
    },
  },
  {
    column: 'status', path: 'Patient.active',
    toColumn: statusOf,
    fromColumn: (p, v) => {
      if (v === 'deceased') { if (!p.deceasedDateTime) p.deceasedBoolean = true; return; }
      delete p.deceasedBoolean; delete p.deceasedDateTime;
      p.active = v !== 'inactive';
    },
  },
];

/** The patients columns a Patient implies. */
export function patientToRow(patient: Patient): Row {
  return columnsFromResource(patientFields, patient);
}

/** The Patient a patients row reads as, given the resource last written (or {} for rows written natively). */
export function patientFromRow(row: Row, kept?: Patient): Patient {
  const base: Patient = kept ? structuredClone(kept) : { resourceType: 'Patient' };
  base.resourceType = 'Patient';
  base.id = String(row.id);
  return resourceFromColumns(patientFields, row, base);
}
