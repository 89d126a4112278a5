import t from 'tap';
import { patientFromRow, patientToRow, UNKNOWN_BIRTH_DATE, PATIENT_EXTENSIONS, type Patient } from '../../src/mappers/patient-mapper.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const examples = officialExamples('Patient');

t.test('there are official Patient examples to test with', async (t) => {
  t.ok(examples.length >= 3);
});

for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name} (resource -> row -> resource)`, async (t) => {
    const patient = { ...(resource as Patient), id: 'x1' };
    const row = { ...patientToRow(patient), id: 'x1' };
    const back = patientFromRow(row, patient);
    t.same(withoutIdAndMeta(back), withoutIdAndMeta(patient));
  });
}

t.test('maps the primary official name, birth date, gender, phone, email and home address to columns', async (t) => {
  const row = patientToRow({
    resourceType: 'Patient',
    name: [{ use: 'usual', given: ['Jim'] }, { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] }],
    birthDate: '1974-12',
    gender: 'unknown',
    telecom: [{ system: 'email', value: 'p@example.org' }, { system: 'phone', value: '555-2', rank: 2 }, { system: 'phone', value: '555-1', rank: 1 }],
    address: [{ use: 'work', city: 'Work City' }, { use: 'home', line: ['1 Main St', 'Apt 2'], city: 'Springfield', state: 'IL', postalCode: '62701', country: 'USA' }],
  });
  t.equal(row.last_name, 'Chalmers');
  t.equal(row.first_name, 'Peter James');
  t.equal(row.date_of_birth, '1974-12-01');
  t.equal(row.gender, 'prefer_not_to_say');
  t.equal(row.phone, '555-1');
  t.equal(row.email, 'p@example.org');
  t.equal(row.address, '1 Main St\nApt 2');
  t.equal(row.city, 'Springfield');
  t.equal(row.zip_code, '62701');
  t.equal(row.status, 'active');
});

t.test('stores a missing birth date as the documented sentinel and reads it back as absent', async (t) => {
  const p: Patient = { resourceType: 'Patient', name: [{ family: 'Doe' }] };
  const row = patientToRow(p);
  t.equal(row.date_of_birth, UNKNOWN_BIRTH_DATE);
  t.notOk('birthDate' in patientFromRow({ ...row, id: 'a' }, p));
});

t.test('cuts values longer than their column but keeps them whole in the resource', async (t) => {
  const p: Patient = { resourceType: 'Patient', name: [{ family: 'F' }], address: [{ postalCode: '12345-6789-EXTRA' }] };
  const row = patientToRow(p);
  t.equal(row.zip_code, '12345-6789');
  t.equal(patientFromRow({ ...row, id: 'a' }, p).address?.[0]?.postalCode, '12345-6789-EXTRA');
});

t.test('columns are authoritative: a native change to a column shows in the resource', async (t) => {
  const p: Patient = {
    resourceType: 'Patient', id: 'a', name: [{ use: 'official', family: 'Old', given: ['Ann'] }], birthDate: '1980-01-01',
    telecom: [{ system: 'phone', value: '111' }], active: true,
  };
  const row = { ...patientToRow(p), id: 'a' };
  const changed = patientFromRow({ ...row, last_name: 'New', phone: '222', status: 'inactive', blood_type: 'O+', city: 'Paris' }, p);
  t.equal(changed.name?.[0]?.family, 'New');
  t.same(changed.name?.[0]?.given, ['Ann']);
  t.equal(changed.telecom?.[0]?.value, '222');
  t.equal(changed.active, false);
  t.same(changed.extension, [{ url: PATIENT_EXTENSIONS.bloodType, valueCode: 'O+' }]);
  t.equal(changed.address?.[0]?.city, 'Paris');
});

t.test('marks a patient deceased when the status column says so', async (t) => {
  const p: Patient = { resourceType: 'Patient', id: 'a', name: [{ family: 'X' }], birthDate: '1950-01-01' };
  const back = patientFromRow({ ...patientToRow(p), id: 'a', status: 'deceased' }, p);
  t.equal(back.deceasedBoolean, true);
});

t.test('reads a row written outside the API (no kept resource) as a Patient', async (t) => {
  const back = patientFromRow({
    id: 'n1', first_name: 'Mary Ann', last_name: 'Smith', date_of_birth: '1990-05-06', gender: 'female', phone: '555',
    email: null, address: null, city: 'Boston', state: 'MA', zip_code: '02115', country: 'USA', status: 'active',
    emergency_contact_name: 'John Smith', emergency_contact_phone: '556', emergency_contact_relationship: 'spouse',
    primary_doctor_id: 'd1', blood_type: 'A+', allergies: 'penicillin', chronic_conditions: null, current_medications: null,
  });
  t.equal(back.id, 'n1');
  t.equal(back.name?.[0]?.family, 'Smith');
  t.same(back.name?.[0]?.given, ['Mary', 'Ann']);
  t.equal(back.birthDate, '1990-05-06');
  t.equal(back.gender, 'female');
  t.same(back.telecom, [{ system: 'phone', value: '555' }]);
  t.match(back.address?.[0], { city: 'Boston', state: 'MA', postalCode: '02115', country: 'USA' });
  t.same(back.generalPractitioner, [{ reference: 'Practitioner/d1' }]);
  t.equal(back.contact?.[0]?.name?.text, 'John Smith');
  t.equal(back.contact?.[0]?.telecom?.[0]?.value, '556');
  t.ok(back.contact?.[0]?.relationship?.some((r) => r.text === 'spouse'));
  t.ok(back.contact?.[0]?.relationship?.some((r) => r.coding?.[0]?.code === 'C'));
  t.same(back.extension?.map((e) => e.url).sort(), [PATIENT_EXTENSIONS.allergies, PATIENT_EXTENSIONS.bloodType].sort());
});
