import t from 'tap';
import {
  NO_PASSWORD, PRACTITIONER_EXTENSIONS, nameString, practitionerFromRow, practitionerToRow, type Practitioner,
} from '../../src/mappers/practitioner-mapper.js';
import { practitionerRoleFromRow, PRACTITIONER_ROLE_SYSTEM } from '../../src/mappers/practitioner-role-mapper.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const examples = officialExamples('Practitioner');
const withEmail = (r: Record<string, unknown>): Practitioner =>
  ({ ...(r as Practitioner), telecom: [...((r as Practitioner).telecom ?? []), { system: 'email', value: 'adam@example.org' }] });

t.test('there is an official Practitioner example to test with', async (t) => {
  t.ok(examples.length >= 1);
});

for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name} (resource -> row -> resource)`, async (t) => {
    const p = { ...withEmail(resource), id: 'x1' };
    const row: Record<string, unknown> = { ...practitionerToRow(p), id: 'x1' };
    t.same(withoutIdAndMeta(practitionerFromRow(row, p) as Record<string, unknown>), withoutIdAndMeta(p as Record<string, unknown>));
    t.equal(row.name, 'Dr Adam Careful');
    t.equal(row.email, 'adam@example.org');
    t.equal(row.specialization, 'Bachelor of Science');
    t.equal(row.role, 'doctor', 'no role extension: a doctor');
    t.equal(row.status, 'active');
  });
}

t.test('maps name, first email and phone, photo, qualification, department, role and status to columns', async (t) => {
  const row = practitionerToRow({
    resourceType: 'Practitioner',
    name: [{ use: 'old', text: 'Old Name' }, { use: 'official', family: 'Nightingale', given: ['Florence'], prefix: ['Ms'] }],
    telecom: [{ system: 'phone', value: '555-2', rank: 2 }, { system: 'email', value: 'fn@example.org' }, { system: 'phone', value: '555-1', rank: 1 }],
    photo: [{ url: 'https://example.org/fn.png' }],
    qualification: [{ code: { coding: [{ system: 'http://example.org/q', code: 'RN', display: 'Registered Nurse' }] } }],
    extension: [
      { url: PRACTITIONER_EXTENSIONS.department, valueString: 'Surgery' },
      { url: PRACTITIONER_EXTENSIONS.role, valueCode: 'nurse' },
    ],
    active: false,
  });
  t.same(row, {
    name: 'Ms Florence Nightingale', email: 'fn@example.org', phone: '555-1', avatar: 'https://example.org/fn.png',
    specialization: 'Registered Nurse', department: 'Surgery', role: 'nurse', status: 'inactive',
  });
  t.notOk('password_hash' in row, 'the mapper never writes a password hash (only a create sets one)');
  t.equal(NO_PASSWORD.startsWith('$2'), false, 'the create-time hash is no bcrypt hash');
});

t.test('name text wins over its parts; no name stores an empty string', async (t) => {
  t.equal(nameString({ text: 'Dr. A. B. Careful', family: 'Careful' }), 'Dr. A. B. Careful');
  t.equal(practitionerToRow({ resourceType: 'Practitioner' }).name, '');
});

t.test('suspended is active false plus the status extension, and reads back so', async (t) => {
  const p: Practitioner = { resourceType: 'Practitioner', active: false, extension: [{ url: PRACTITIONER_EXTENSIONS.status, valueCode: 'suspended' }] };
  const row: Record<string, unknown> = { ...practitionerToRow(p), id: 's' };
  t.equal(row.status, 'suspended');
  t.same(practitionerFromRow(row, p), { ...p, id: 's' });
});

t.test('a row written natively reads from its columns alone', async (t) => {
  const row = {
    id: 'n1', name: 'Dr. Sarah Johnson', email: 'sarah@hospital.example', phone: '555-0100', avatar: null, department: 'Cardiology',
    specialization: 'Interventional Cardiology', role: 'nurse', status: 'suspended', password_hash: '$2b$12$secret', last_login: '2024-01-01 00:00:00',
  };
  const p = practitionerFromRow(row);
  t.same(p, {
    resourceType: 'Practitioner', id: 'n1',
    name: [{ text: 'Dr. Sarah Johnson' }],
    telecom: [{ system: 'email', value: 'sarah@hospital.example' }, { system: 'phone', value: '555-0100' }],
    qualification: [{ code: { text: 'Interventional Cardiology' } }],
    extension: [
      { url: PRACTITIONER_EXTENSIONS.department, valueString: 'Cardiology' },
      { url: PRACTITIONER_EXTENSIONS.role, valueCode: 'nurse' },
      { url: PRACTITIONER_EXTENSIONS.status, valueCode: 'suspended' },
    ],
    active: false,
  });
  t.notMatch(JSON.stringify(p), /secret|2024-01-01/, 'password hash and last login are not exposed');
  t.same({ ...practitionerToRow(p), id: 'n1' }, { id: 'n1', name: row.name, email: row.email, phone: row.phone, avatar: null, department: row.department, specialization: row.specialization, role: 'nurse', status: 'suspended' },
    'writing the native read back stores the same columns');
  const plain = practitionerFromRow({ id: 'n2', name: 'Ann', email: 'a@x.org', role: 'doctor', status: 'active' });
  t.equal(plain.active, true);
  t.notOk(plain.qualification);
});

t.test('columns are authoritative: native changes show in the kept resource', async (t) => {
  const p: Practitioner = {
    resourceType: 'Practitioner', id: 'a', identifier: [{ system: 'urn:x', value: '1' }],
    name: [{ use: 'official', family: 'Old', given: ['Ann'] }],
    telecom: [{ system: 'email', value: 'old@example.org', use: 'work' }],
    qualification: [{ identifier: [{ value: 'q1' }], code: { coding: [{ code: 'MD', display: 'Doctor of Medicine' }] } }],
    active: true,
  };
  const row = { ...practitionerToRow(p), id: 'a' };
  const changed = { ...row, name: 'Ann New', email: 'new@example.org', specialization: 'Oncology', department: 'Oncology', role: 'nurse', status: 'inactive' };
  const read = practitionerFromRow(changed, structuredClone(p));
  t.same(read.name, [{ use: 'official', text: 'Ann New' }]);
  t.same(read.telecom, [{ system: 'email', value: 'new@example.org', use: 'work' }]);
  t.same(read.qualification, [{ identifier: [{ value: 'q1' }], code: { coding: [{ code: 'MD', display: 'Doctor of Medicine' }], text: 'Oncology' } }]);
  t.equal(read.active, false);
  t.same(read.identifier, p.identifier, 'kept-only elements stay');
  t.same({ ...practitionerToRow(read), id: 'a' }, changed, 'the corrected resource implies the changed columns');
  const cleared = practitionerFromRow({ ...row, specialization: null }, structuredClone(p));
  t.notOk(cleared.qualification, 'without a specialization the first qualification goes (its code is required)');
});

t.test('a PractitionerRole reads from the users row', async (t) => {
  const role = practitionerRoleFromRow({
    id: 'u1', name: 'Dr. Sarah Johnson', email: 's@x.org', phone: null, role: 'doctor', department: 'Cardiology', specialization: 'Cardiology', status: 'inactive',
  });
  t.same(role, {
    resourceType: 'PractitionerRole', id: 'u1',
    extension: [{ url: PRACTITIONER_EXTENSIONS.department, valueString: 'Cardiology' }],
    active: false,
    practitioner: { reference: 'Practitioner/u1', display: 'Dr. Sarah Johnson' },
    code: [{ coding: [{ system: PRACTITIONER_ROLE_SYSTEM, code: 'doctor', display: 'Doctor' }] }],
    specialty: [{ text: 'Cardiology' }],
    telecom: [{ system: 'email', value: 's@x.org' }],
  });
  const bare = practitionerRoleFromRow({ id: 'u2', name: 'N', email: 'n@x.org', role: 'nurse', status: 'active' });
  t.equal(bare.active, true);
  t.notOk(bare.specialty);
  t.notOk(bare.extension);
});
