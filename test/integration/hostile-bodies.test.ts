/**
 * Bodies that are not valid R4 are refused with a 400 naming the element, values valid in R4 that
 * HMS cannot hold with a 422 naming it, and references that are malformed or name no stored
 * resource the writer may see likewise; every refusal writes nothing, on both databases.
 */
import t, { type Test } from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { makePatient, unique } from '../helpers/world.js';
import { bodies, makePractitioner } from '../helpers/access-world.js';

type J = Record<string, unknown>;

/** Rows of the tables a write of these resources touches, and the versions kept. */
async function footprint(h: TestApp): Promise<string> {
  const counts = await Promise.all(['patients', 'users', 'observations', 'prescriptions', 'billing', 'insurance', 'appointments', 'resource_history', 'search_string', 'search_token']
    .map(async (table) => `${table}=${String((await h.db(table).count({ n: '*' }).first())?.n)}`));
  return counts.join(' ');
}

t.test('hostile bodies', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makePractitioner(h);
  const base = (await h.fhir({ method: 'GET', url: '/fhir/metadata' })).json().implementation.url as string;

  /** POSTs a body (an object, or raw JSON text) and checks the refusal: status, OperationOutcome, expression, nothing written. */
  async function refused(t: Test, name: string, type: string, body: J | string, status: number, expression?: string): Promise<void> {
    const before = await footprint(h);
    const res = await h.fhir({
      method: 'POST', url: `/fhir/${type}`, payload: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/fhir+json' },
    });
    t.equal(res.statusCode, status, `${name}: ${res.body.slice(0, 300)}`);
    t.match(res.headers['content-type'], /^application\/fhir\+json/, `${name}: FHIR JSON`);
    const outcome = res.json() as { resourceType: string; issue: { expression?: string[] }[] };
    t.equal(outcome.resourceType, 'OperationOutcome', name);
    if (expression) t.ok(outcome.issue.some((i) => i.expression?.includes(expression)), `${name}: expression ${expression} in ${JSON.stringify(outcome.issue.map((i) => i.expression))}`);
    t.equal(await footprint(h), before, `${name}: nothing written`);
  }

  const Patient = (extra: J): J => ({ resourceType: 'Patient', name: [{ family: `F${unique()}` }], ...extra });

  t.test('not valid R4: 400 with issue.expression', async (t) => {
    const med = bodies.MedicationRequest(patient, doctor);
    const lab = bodies['Observation (laboratory)'](patient, doctor);
    const cases: [string, string, J, string][] = [
      ['a number as an Extension', 'Patient', Patient({ extension: [5] }), 'Patient.extension[0]'],
      ['managingOrganization as an array', 'Patient', Patient({ managingOrganization: [{ display: 'x' }] }), 'Patient.managingOrganization'],
      ['requester as an array', 'MedicationRequest', { ...med, requester: [med.requester] }, 'MedicationRequest.requester'],
      ['valueQuantity as an array', 'Observation', { ...lab, valueQuantity: [lab.valueQuantity] }, 'Observation.valueQuantity'],
      ['a contained resource of no R4 type', 'Patient', Patient({ contained: [{ resourceType: 'Foo' }] }), 'Patient.contained[0]'],
      ['an invalid contained resource', 'Patient', Patient({ generalPractitioner: [{ reference: '#gp' }], contained: [{ resourceType: 'Practitioner', id: 'gp', gender: 5 }] }), 'Patient.contained[0].gender'],
      ['meta as a string', 'Patient', Patient({ meta: 'meta' }), 'Patient.meta'],
      ['an empty narrative', 'Patient', Patient({ text: { status: 'generated', div: '' } }), 'Patient.text.div'],
      ['narrative with script', 'Patient', Patient({ text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script>x</div>' } }), 'Patient.text.div'],
      ['rank -3 (positiveInt)', 'Patient', Patient({ telecom: [{ system: 'phone', value: '555', rank: -3 }] }), 'Patient.telecom[0].rank'],
      ['rank 1.5 (positiveInt)', 'Patient', Patient({ telecom: [{ system: 'phone', value: '555', rank: 1.5 }] }), 'Patient.telecom[0].rank'],
      ['priority -2147483649 (unsignedInt)', 'Appointment', { ...bodies.Appointment(patient, doctor), priority: -2147483649 }, 'Appointment.priority'],
      ['multipleBirthInteger 1e309', 'Patient', Patient({ multipleBirthInteger: 1e309 }), 'Patient.multipleBirthInteger'],
      ['reference Encounter/', 'Observation', { ...lab, encounter: { reference: 'Encounter/' } }, 'Observation.encounter.reference'],
      ['reference with a 65-character id', 'Observation', { ...lab, encounter: { reference: `Encounter/${'a'.repeat(65)}` } }, 'Observation.encounter.reference'],
      ['reference with SQL', 'Patient', Patient({ generalPractitioner: [{ reference: "Practitioner/' OR 1=1 --" }] }), 'Patient.generalPractitioner[0].reference'],
      ['reference to no R4 type', 'Patient', Patient({ generalPractitioner: [{ reference: 'Doctor/1' }] }), 'Patient.generalPractitioner[0].reference'],
      ['a fragment naming no contained resource', 'Patient', Patient({ generalPractitioner: [{ reference: '#nobody' }] }), 'Patient.generalPractitioner[0].reference'],
    ];
    for (const [name, type, body, expression] of cases) await refused(t, name, type, body, 400, expression);
    // raw JSON: a lone surrogate and a NUL as JSON escapes, 1e309 as such (JSON.stringify would turn Infinity into null)
    await refused(t, 'a lone surrogate in a string', 'Patient', '{"resourceType":"Patient","name":[{"family":"A\\ud800B"}]}', 400, 'Patient.name[0].family');
    await refused(t, 'a NUL in a string', 'Patient', '{"resourceType":"Patient","name":[{"family":"A\\u0000B"}]}', 400, 'Patient.name[0].family');
    await refused(t, 'multipleBirthInteger 1e309 as sent', 'Patient', '{"resourceType":"Patient","multipleBirthInteger":1e309}', 400, 'Patient.multipleBirthInteger');
  });

  t.test('valid R4 that HMS cannot hold: 422 with issue.expression, alike on both databases', async (t) => {
    const lab = JSON.stringify(bodies['Observation (laboratory)'](patient, doctor)).replace('"value":6.3', '"value":1e309');
    await refused(t, 'a lab value of 1e309', 'Observation', lab, 422, 'Observation.valueQuantity.value');
    await refused(t, 'an invoice total beyond DECIMAL(10,2)', 'Invoice', { ...bodies.Invoice(patient), totalGross: { value: 1e12, currency: 'USD' } }, 422, 'Invoice.totalGross');
    await refused(t, 'an invoice total in tenths of cents', 'Invoice', { ...bodies.Invoice(patient), totalGross: { value: 10.005, currency: 'USD' } }, 422, 'Invoice.totalGross');
    const med = bodies.MedicationRequest(patient, doctor);
    await refused(t, 'a dispensed quantity beyond INT', 'MedicationRequest', { ...med, dispenseRequest: { quantity: { value: 1e10 } } }, 422, 'MedicationRequest.dispenseRequest.quantity.value');
    await refused(t, 'an appointment of 8,000 years', 'Appointment', { ...bodies.Appointment(patient, doctor), end: '9999-12-31T00:00:00Z' }, 422, 'Appointment.end');
  });

  t.test('references to stored types are checked wherever they stand and whatever their form: 422', async (t) => {
    const missing = `${unique()}${unique()}`;
    const cases: [string, string, J, string][] = [
      ['a second general practitioner that does not exist', 'Patient', Patient({ generalPractitioner: [{ reference: `Practitioner/${doctor}` }, { reference: `Practitioner/${missing}` }] }), 'Patient.generalPractitioner[1]'],
      ['a versioned reference to a missing practitioner', 'Patient', Patient({ generalPractitioner: [{ reference: `Practitioner/${missing}/_history/1` }] }), 'Patient.generalPractitioner'],
      ['an absolute reference to this server, missing', 'Patient', Patient({ generalPractitioner: [{ reference: `${base}/Practitioner/${missing}` }] }), 'Patient.generalPractitioner'],
      ['a missing Condition as a reason', 'Appointment', { ...bodies.Appointment(patient, doctor), reasonReference: [{ reference: `Condition/${missing}` }] }, 'Appointment.reasonReference[0]'],
      ['a missing patient in a contained resource', 'Observation', {
        ...bodies['Observation (laboratory)'](patient, doctor), specimen: { reference: '#s' },
        contained: [{ resourceType: 'Specimen', id: 's', subject: { reference: `Patient/${missing}` } }],
      }, 'Observation.contained[0].subject'],
    ];
    for (const [name, type, body, expression] of cases) await refused(t, name, type, body, 422, expression);
  });

  t.test('an absolute reference to this server is stored as a relative one; one to another server is kept and not looked up', async (t) => {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: Patient({ generalPractitioner: [{ reference: `${base}/Practitioner/${doctor}` }] }) });
    t.equal(res.statusCode, 201, res.body);
    t.same(res.json().generalPractitioner, [{ reference: `Practitioner/${doctor}` }]);
    t.equal((await h.db('patients').where({ id: res.json().id }).first()).primary_doctor_id, doctor, 'the column holds the practitioner');
    const other = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: Patient({ generalPractitioner: [{ reference: `https://other.example.org/fhir/Practitioner/${doctor}` }] }) });
    t.equal(other.statusCode, 201, other.body);
    t.same(other.json().generalPractitioner, [{ reference: `https://other.example.org/fhir/Practitioner/${doctor}` }]);
    t.equal((await h.db('patients').where({ id: other.json().id }).first()).primary_doctor_id, null, 'not taken for a practitioner of this server');
  });

  t.test('valid contained resources and narrative are accepted and read back as sent', async (t) => {
    const body = Patient({
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Peter <b>Chalmers</b> &amp; family</p></div>' },
      generalPractitioner: [{ reference: '#gp' }],
      contained: [{ resourceType: 'Practitioner', id: 'gp', name: [{ family: 'Kay' }] }],
    });
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: body });
    t.equal(res.statusCode, 201, res.body);
    const read = await h.fhir({ method: 'GET', url: `/fhir/Patient/${res.json().id}` });
    t.same(read.json().contained, body.contained);
    t.same(read.json().text, body.text);
  });
});
