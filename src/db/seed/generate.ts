/**
 * Deterministic synthetic clinical data for `hms seed`: the rows of one patient in every seed
 * table (patients, visits, vitals, lab_results, medical_conditions, prescriptions, billing,
 * insurance, appointments) and its resources of the generic store (Immunization, Procedure,
 * AllergyIntolerance, Claim), from seeded PRNGs so every run produces the same data. Pure.
 */
import { v7 as uuidv7 } from 'uuid';

export type Row = Record<string, unknown>;

export interface Staff { doctors: string[]; nurses: string[] }


export const SEED_FAMILIES = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin', 'Lee', 'Perez',
  'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson', 'Walker', 'Young', 'Allen', 'King',
  'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores', 'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera',
  'Campbell', 'Mitchell', 'Carter', 'Roberts'];
const GIVEN_F = ['Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Sarah', 'Karen', 'Lisa', 'Nancy'];
const GIVEN_M = ['James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Charles', 'Daniel', 'Paul'];
const PLACES: [string, string, string][] = [['Springfield', 'IL', '62701'], ['Portland', 'OR', '97201'], ['Austin', 'TX', '78701'],
  ['Denver', 'CO', '80202'], ['Boston', 'MA', '02108'], ['Columbus', 'OH', '43004'], ['Madison', 'WI', '53703']];
const CONDITIONS: [string, string][] = [['Essential hypertension', 'I10'], ['Type 2 diabetes mellitus without complications', 'E11.9'],
  ['Asthma, unspecified', 'J45.909'], ['Hyperlipidemia, unspecified', 'E78.5'], ['Major depressive disorder, single episode', 'F32.9'],
  ['Gastro-esophageal reflux disease', 'K21.9'], ['Low back pain', 'M54.5'], ['Acute bronchitis', 'J20.9']];
const MEDICATIONS: [string, string, string][] = [['Lisinopril 10 MG Oral Tablet', '10 mg', 'once daily'], ['Metformin 500 MG Oral Tablet', '500 mg', 'twice daily'],
  ['Atorvastatin 20 MG Oral Tablet', '20 mg', 'once daily'], ['Albuterol 90 MCG Inhaler', '2 puff', 'q6h'], ['Omeprazole 20 MG Capsule', '20 mg', 'once daily'],
  ['Ibuprofen 400 MG Oral Tablet', '400 mg', 'q8h']];
const LABS: [name: string, loinc: string, unit: string, low: number, high: number, range: string][] = [
  ['Glucose', '2345-7', 'mg/dL', 70, 140, '70-99 mg/dL'], ['Hemoglobin', '718-7', 'g/dL', 11, 17, '12-16 g/dL'],
  ['Cholesterol total', '2093-3', 'mg/dL', 140, 260, '<200 mg/dL'], ['Hemoglobin A1c', '4548-4', '%', 4.5, 9, '4.0-5.6 %'],
  ['Creatinine', '2160-0', 'mg/dL', 0.6, 1.5, '0.6-1.2 mg/dL']];
const VISIT_TYPES = ['routine', 'follow_up', 'consultation', 'routine', 'emergency'];

/** mulberry32: a tiny seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rnd: () => number, list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
const between = (rnd: () => number, lo: number, hi: number, decimals = 0): number => Number((lo + rnd() * (hi - lo)).toFixed(decimals));
const sqlDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const sqlTime = (ms: number): string => new Date(ms).toISOString().slice(11, 19);
const sqlStamp = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const DAY = 86_400_000;

/** The rows of seeded patient number i, by table, plus the patient's identifier value. */
export interface PatientRows { [table: string]: Row[] }

/** Everything patient number i has, in every seed table. `now` fixes "today" for the dates. */
export function patientRows(i: number, staff: Staff, now: number): PatientRows {
  const rnd = prng(Math.imul(i + 1, 0x9e3779b1));
  const stamp = sqlStamp(now);
  const meta = { version_id: 1, created_at: stamp, updated_at: stamp };
  const female = rnd() < 0.5;
  const family = pick(rnd, SEED_FAMILIES);
  const given = pick(rnd, female ? GIVEN_F : GIVEN_M);
  const [city, state, zip] = pick(rnd, PLACES);
  const doctor = pick(rnd, staff.doctors);
  const patientId = uuidv7();
  const patient: Row = {
    id: patientId, first_name: given, last_name: family, date_of_birth: sqlDate(Date.UTC(1935, 0, 1) + Math.floor(rnd() * 85 * 365) * DAY),
    gender: female ? 'female' : 'male', phone: `555-${String(1000000 + i).slice(-7, -4)}-${String(i % 10000).padStart(4, '0')}`,
    email: `${given.toLowerCase()}.${family.toLowerCase()}.${i}@example.org`, address: `${1 + (i % 9000)} Main St`, city, state, zip_code: zip,
    country: 'USA', blood_type: pick(rnd, ['A+', 'A-', 'B+', 'O+', 'O-', 'AB+']), primary_doctor_id: doctor, status: 'active', ...meta,
  };
  const rows: PatientRows = { patients: [patient], visits: [], vitals: [], lab_results: [], medical_conditions: [], prescriptions: [], billing: [], insurance: [], appointments: [] };
  const heightCm = female ? between(rnd, 150, 178) : between(rnd, 162, 195);
  let weightKg = between(rnd, 50, 110, 1);
  for (let v = 0; v < 5; v++) {
    const at = now - Math.floor((5 - v) * 200 * DAY * (0.5 + rnd())) - Math.floor(rnd() * DAY);
    const visitId = uuidv7();
    const visitDoctor = rnd() < 0.7 ? doctor : pick(rnd, staff.doctors);
    rows.visits!.push({
      id: visitId, patient_id: patientId, doctor_id: visitDoctor, visit_date: sqlDate(at), visit_time: sqlTime(at),
      visit_type: VISIT_TYPES[v], chief_complaint: pick(rnd, ['Annual check-up', 'Cough', 'Headache', 'Back pain', 'Follow-up']),
      assessment: 'Stable', plan: 'Continue current treatment', status: 'completed', ...meta,
    });
    weightKg = Number((weightKg + between(rnd, -2, 2, 1)).toFixed(1));
    const weightLbs = Number((weightKg * 2.20462).toFixed(2));
    rows.vitals!.push({
      id: uuidv7(), patient_id: patientId, visit_id: visitId, recorded_by: pick(rnd, staff.nurses), recorded_at: sqlStamp(at),
      systolic_bp: between(rnd, 100, 160), diastolic_bp: between(rnd, 60, 100), heart_rate: between(rnd, 55, 100),
      respiratory_rate: between(rnd, 12, 20), temperature: between(rnd, 97, 99.5, 1), temperature_unit: 'F',
      oxygen_saturation: between(rnd, 94, 100), weight: weightLbs, weight_unit: 'lbs', height_cm: heightCm,
      bmi: Number((weightKg / (heightCm / 100) ** 2).toFixed(1)), pain_scale: between(rnd, 0, 6), ...meta,
    });
    const [name, loinc, unit, low, high, range] = LABS[v]!;
    const value = between(rnd, low, high, 1);
    rows.lab_results!.push({
      id: uuidv7(), patient_id: patientId, visit_id: visitId, ordered_by: visitDoctor, test_name: name, test_code: loinc,
      test_category: 'blood', result_value: String(value), result_unit: unit, reference_range: range, status: 'completed',
      abnormal_flag: value > high * 0.9 ? 'high' : 'normal', ordered_date: sqlDate(at), collection_date: sqlDate(at),
      result_date: sqlDate(at + DAY), ...meta,
    });
    if (v < 3) {
      const [cname, icd] = CONDITIONS[(i + v) % CONDITIONS.length]!;
      rows.medical_conditions!.push({
        id: uuidv7(), patient_id: patientId, visit_id: visitId, condition_name: cname, icd_10_code: icd, diagnosis_date: sqlDate(at),
        severity: pick(rnd, ['mild', 'moderate', 'severe']), status: pick(rnd, ['active', 'chronic', 'resolved']), diagnosed_by: visitDoctor, ...meta,
      });
    }
    if (v >= 3) {
      const [med, dose, frequency] = MEDICATIONS[(i + v) % MEDICATIONS.length]!;
      rows.prescriptions!.push({
        id: uuidv7(), patient_id: patientId, doctor_id: visitDoctor, visit_id: visitId, medication_name: med, dosage: dose, frequency,
        duration: '30 days', quantity_prescribed: 30, refills_remaining: 2, instructions: 'Take with water', status: v === 4 ? 'active' : 'completed',
        prescribed_date: sqlDate(at), start_date: sqlDate(at), end_date: sqlDate(at + 30 * DAY), ...meta,
      });
      const charged = between(rnd, 80, 400, 2);
      const paid = v === 3 ? charged : 0;
      rows.billing!.push({
        id: uuidv7(), patient_id: patientId, visit_id: visitId, invoice_number: `SEED-${i}-${v}`, service_date: sqlDate(at),
        service_description: 'Office visit', procedure_codes: '99213', diagnosis_codes: rows.medical_conditions![0]!.icd_10_code,
        amount_charged: charged, amount_paid: paid, payment_status: paid ? 'paid' : 'pending', billing_date: sqlDate(at),
        due_date: sqlDate(at + 30 * DAY), payment_date: paid ? sqlDate(at + 10 * DAY) : null, payment_method: paid ? 'insurance' : null,
        created_by: visitDoctor, ...meta,
      });
    }
  }
  rows.insurance!.push({
    id: uuidv7(), patient_id: patientId, insurance_company: pick(rnd, ['Acme Health', 'Blue Harbor', 'Summit Mutual']),
    policy_number: `POL${String(i).padStart(8, '0')}`, group_number: `GRP${i % 500}`, policy_holder_name: `${given} ${family}`,
    relationship_to_patient: 'self', coverage_type: 'primary', effective_date: sqlDate(now - 700 * DAY), expiration_date: sqlDate(now + 365 * DAY),
    copay_amount: 25, deductible_amount: 1500, deductible_met: between(rnd, 0, 1500, 2), status: 'active', ...meta,
  });
  // one 30-minute slot per patient, never overlapping another of the same doctor: patient i sees
  // doctor i mod n, in that doctor's slot i div n (16 slots a day from 08:00, from 3 days ahead)
  const slotDoctor = staff.doctors[i % staff.doctors.length]!;
  const slot = Math.floor(i / staff.doctors.length);
  const day = new Date(Math.floor(now / DAY) * DAY + (3 + Math.floor(slot / 16)) * DAY);
  const minutes = 8 * 60 + (slot % 16) * 30;
  rows.appointments!.push({
    id: uuidv7(), patient_id: patientId, doctor_id: slotDoctor, appointment_date: sqlDate(day.getTime()),
    appointment_time: `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}:00`,
    duration_minutes: 30, appointment_type: 'follow_up', priority: 'medium', status: 'scheduled', chief_complaint: 'Follow-up', created_by: slotDoctor, ...meta,
  });
  return rows;
}

/** The seeded staff: doctors and nurses as users rows (they cannot log in: no password). */
export function staffRows(doctors: number, nurses: number, now: number): Row[] {
  const stamp = sqlStamp(now);
  const user = (role: string, n: number): Row => ({
    id: uuidv7(), email: `seed-${role}-${n}@hms.example.org`, password_hash: '!', name: `${role === 'doctor' ? 'Dr. ' : ''}${pick(prng(n + (role === 'doctor' ? 7 : 13)), GIVEN_F)} ${SEED_FAMILIES[n % SEED_FAMILIES.length]}`,
    role, department: pick(prng(n), ['Cardiology', 'General Medicine', 'Pediatrics', 'Oncology']), specialization: role === 'doctor' ? 'Internal Medicine' : null,
    status: 'active', version_id: 1, created_at: stamp, updated_at: stamp,
  });
  return [...Array.from({ length: doctors }, (_, n) => user('doctor', n)), ...Array.from({ length: nurses }, (_, n) => user('nurse', n))];
}

/** A resource of a type the generic store holds (fhir_resources), as a client would POST it, with its id. */
export type GenericResource = { resourceType: string; id: string } & Record<string, unknown>;

/** The code system of CDC's vaccine codes. */
export const CVX = 'http://hl7.org/fhir/sid/cvx';
const SNOMED = 'http://snomed.info/sct';
const ACT_SITE = 'http://terminology.hl7.org/CodeSystem/v3-ActSite';
const VACCINES: [code: string, display: string][] = [['140', 'Influenza, seasonal, injectable, preservative free'],
  ['208', 'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose'], ['115', 'Tdap'],
  ['133', 'Pneumococcal conjugate PCV 13'], ['43', 'Hepatitis B vaccine, adult dosage'], ['187', 'Zoster vaccine recombinant'],
  ['62', 'HPV, quadrivalent'], ['03', 'MMR']];
const PROCEDURES: [code: string, display: string, minutes: number][] = [['73761001', 'Colonoscopy', 45], ['71651007', 'Mammography', 20],
  ['117015009', 'Throat culture', 10], ['430193006', 'Medication reconciliation', 15], ['274804006', 'Evaluation of uterine fundal height', 10],
  ['76601001', 'Intramuscular injection', 5]];
const ALLERGIES: [code: string, display: string, category: string][] = [['91936005', 'Allergy to penicillin', 'medication'],
  ['300913006', 'Shellfish allergy', 'food'], ['418689008', 'Allergy to grass pollen', 'environment'],
  ['232350006', 'House dust mite allergy', 'environment'], ['419474003', 'Allergy to mould', 'environment'], ['91935009', 'Allergy to peanuts', 'food']];
/** Vaccinations lie within the last IMMUNIZATION_YEARS years (the first one furthest back). */
export const IMMUNIZATION_YEARS = 9;
const iso = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/**
 * The generic-store resources of seeded patient number i, from the patient's own rows (its id,
 * visits, doctor and coverage) and a PRNG of its own, so the seed tables' rows do not change:
 * 3 Immunizations (CVX, one every ~3 years over the last 9), 2 Procedures (SNOMED, with a
 * performedPeriod, at two of its visits), 1 AllergyIntolerance and 1 Claim (for its last visit,
 * on its coverage). References are relative (Patient/..., Practitioner/..., Encounter/...).
 */
export function genericResources(i: number, rows: PatientRows, staff: Staff, now: number): GenericResource[] {
  const rnd = prng(Math.imul(i + 1, 0x85ebca6b) ^ 0x5bd1e995);
  const patient = rows.patients![0]!;
  const subject = { reference: `Patient/${String(patient.id)}` };
  const doctor = { reference: `Practitioner/${String(patient.primary_doctor_id)}` };
  const visits = rows.visits ?? [];
  const visitAt = (v: Row): number => Date.parse(`${String(v.visit_date)}T${String(v.visit_time)}Z`);
  const out: GenericResource[] = [];
  const span = IMMUNIZATION_YEARS * 365 * DAY;
  for (let k = 0; k < 3; k++) {
    // k-th third of the span, counted back from now
    const at = now - span + Math.floor((k + rnd()) * (span / 3));
    const [code, display] = VACCINES[(i + k * 3) % VACCINES.length]!;
    out.push({
      resourceType: 'Immunization', id: uuidv7(), status: 'completed',
      vaccineCode: { coding: [{ system: CVX, code, display }], text: display },
      patient: subject, occurrenceDateTime: iso(at), recorded: iso(at), primarySource: true,
      lotNumber: `LOT${String(Math.floor(rnd() * 1e6)).padStart(6, '0')}`,
      site: { coding: [rnd() < 0.5 ? { system: ACT_SITE, code: 'LA', display: 'left arm' } : { system: ACT_SITE, code: 'RA', display: 'right arm' }] },
      route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'IM', display: 'Injection, intramuscular' }] },
      performer: [{ actor: { reference: `Practitioner/${pick(rnd, staff.nurses)}` } }],
    });
  }
  for (let k = 0; k < 2; k++) {
    const visit = visits[(k * 2 + Math.floor(rnd() * 2)) % visits.length];
    const [code, display, minutes] = PROCEDURES[(i + k) % PROCEDURES.length]!;
    const start = visit ? visitAt(visit) + 15 * 60_000 : now - Math.floor(rnd() * 1000) * DAY;
    out.push({
      resourceType: 'Procedure', id: uuidv7(), status: 'completed',
      code: { coding: [{ system: SNOMED, code, display }], text: display },
      subject, ...(visit ? { encounter: { reference: `Encounter/${String(visit.id)}` } } : {}),
      performedPeriod: { start: iso(start), end: iso(start + minutes * 60_000) },
      performer: [{ actor: visit ? { reference: `Practitioner/${String(visit.doctor_id)}` } : doctor }],
    });
  }
  const [acode, adisplay, category] = pick(rnd, ALLERGIES);
  const first = visits[0];
  out.push({
    resourceType: 'AllergyIntolerance', id: uuidv7(),
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' }] },
    type: 'allergy', category: [category], criticality: rnd() < 0.2 ? 'high' : 'low',
    code: { coding: [{ system: SNOMED, code: acode, display: adisplay }], text: adisplay },
    patient: subject, recordedDate: first ? iso(visitAt(first)) : iso(now), recorder: doctor,
  });
  const last = visits[visits.length - 1];
  const coverage = rows.insurance?.[0];
  const amount = between(rnd, 80, 400, 2);
  const billed = last ? visitAt(last) : now;
  out.push({
    resourceType: 'Claim', id: uuidv7(), status: 'active',
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/claim-type', code: 'professional' }] },
    use: 'claim', patient: subject, billablePeriod: { start: iso(billed), end: iso(billed + 3600_000) }, created: iso(billed + DAY),
    provider: last ? { reference: `Practitioner/${String(last.doctor_id)}` } : doctor,
    priority: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/processpriority', code: 'normal' }] },
    insurance: [{ sequence: 1, focal: true, coverage: coverage ? { reference: `Coverage/${String(coverage.id)}` } : { display: 'Self-pay' } }],
    item: [{
      sequence: 1, productOrService: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '99213', display: 'Office visit' }] },
      ...(last ? { encounter: [{ reference: `Encounter/${String(last.id)}` }] } : {}),
      servicedDate: new Date(billed).toISOString().slice(0, 10), net: { value: amount, currency: 'USD' },
    }],
    total: { value: amount, currency: 'USD' },
  });
  return out;
}
