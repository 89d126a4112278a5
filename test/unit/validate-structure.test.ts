/**
 * The repaired R4 schema (src/fhir/schema.ts): every complex element must be an object, every
 * integer type a JSON integer in range, decimals finite, narrative XHTML safe and non-empty,
 * references well formed, and contained resources valid resources of their own type.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateResource } from '../../src/fhir/validate.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { narrativeProblem } from '../../src/fhir/narrative.js';
import { localForm, referenceShape } from '../../src/fhir/references.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures');
const XHTML = 'xmlns="http://www.w3.org/1999/xhtml"';

/** The error a resource is refused with (fails the test when it is accepted). */
function refusal(resource: Record<string, unknown>): FhirError {
  try {
    validateResource(String(resource.resourceType), resource);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(resource).slice(0, 200)}`);
}

const patient = (extra: Record<string, unknown>): Record<string, unknown> => ({ resourceType: 'Patient', ...extra });

t.test('every official example and every Synthea record (all their entries) is still valid', async (t) => {
  let n = 0;
  for (const dir of ['r4', 'synthea']) {
    for (const f of readdirSync(join(fixtures, dir)).filter((x) => x.endsWith('.json'))) {
      const r = JSON.parse(readFileSync(join(fixtures, dir, f), 'utf8')) as { resourceType: string };
      t.doesNotThrow(() => validateResource(r.resourceType, r), f);
      n++;
    }
  }
  t.ok(n >= 50, `${n} files`);
});

t.test('values of the wrong JSON kind are 400 with the element named', async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['a number as an Extension', patient({ extension: [5] }), 'Patient.extension[0]'],
    ['a string as meta', patient({ meta: 'meta' }), 'Patient.meta'],
    ['an array as a singleton Reference', patient({ managingOrganization: [{ reference: 'Organization/1' }] }), 'Patient.managingOrganization'],
    ['an array as a singleton requester', { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/1' }, medicationCodeableConcept: { text: 'x' }, requester: [{ reference: 'Practitioner/1' }] }, 'MedicationRequest.requester'],
    ['an array as valueQuantity', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: [{ value: 1 }] }, 'Observation.valueQuantity'],
    ['a string as a HumanName', patient({ name: ['Peter'] }), 'Patient.name[0]'],
    ['an object as a string', patient({ gender: { code: 'male' } }), 'Patient.gender'],
    ['a number as a div', patient({ text: { status: 'generated', div: 5 } }), 'Patient.text.div'],
    ['a string as a boolean', patient({ active: 'true' }), 'Patient.active'],
    ['null as an element', patient({ birthDate: null }), 'Patient.birthDate'],
    ['an unknown element inside a datatype', patient({ name: [{ family: 'x', nickname: 'y' }] }), 'Patient.name[0].nickname'],
  ];
  for (const [name, resource, expression] of cases) {
    const e = refusal(resource);
    t.equal(e.status, 400, name);
    t.ok(e.issues.some((i) => i.expression?.includes(expression)), `${name}: ${expression} in ${JSON.stringify(e.issues.map((i) => i.expression))}`);
  }
});

t.test('integer types are JSON integers within their R4 ranges; decimals are finite', async (t) => {
  const telecom = (rank: unknown) => patient({ telecom: [{ system: 'phone', value: '1', rank }] });
  const appointment = (priority: unknown) => ({ resourceType: 'Appointment', status: 'proposed', participant: [{ status: 'accepted' }], priority });
  const birth = (n: unknown) => patient({ multipleBirthInteger: n });
  const bad: [string, Record<string, unknown>, string][] = [
    ['positiveInt -3', telecom(-3), 'Patient.telecom[0].rank'],
    ['positiveInt 0', telecom(0), 'Patient.telecom[0].rank'],
    ['positiveInt 1.5', telecom(1.5), 'Patient.telecom[0].rank'],
    ['unsignedInt -1', appointment(-1), 'Appointment.priority'],
    ['unsignedInt -2147483649', appointment(-2147483649), 'Appointment.priority'],
    ['unsignedInt 2147483648', appointment(2147483648), 'Appointment.priority'],
    ['integer 2147483648', birth(2147483648), 'Patient.multipleBirthInteger'],
    ['integer -2147483649', birth(-2147483649), 'Patient.multipleBirthInteger'],
    ['integer Infinity (1e309)', birth(Infinity), 'Patient.multipleBirthInteger'],
    ['integer as a string', birth('2'), 'Patient.multipleBirthInteger'],
  ];
  for (const [name, resource, expression] of bad) {
    const e = refusal(resource);
    t.equal(e.status, 400, name);
    t.same(e.issues[0]?.expression, [expression], name);
  }
  for (const ok of [telecom(1), telecom(2147483647), appointment(0), birth(-2147483648), birth(2)]) t.doesNotThrow(() => validateResource(String(ok.resourceType), ok));
  const infinite = refusal({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: JSON.parse('1e309') } });
  t.equal(infinite.status, 422, 'a decimal beyond a double is valid R4 that HMS cannot hold: 422');
  t.same(infinite.issues[0]?.expression, ['Observation.valueQuantity.value']);
  t.doesNotThrow(() => validateResource('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: 1.7e308 } }));
});

t.test('primitive formats: each pattern of the schema applies', async (t) => {
  const bad: [string, Record<string, unknown>, string][] = [
    ['empty string', patient({ name: [{ family: '' }] }), 'Patient.name[0].family'],
    ['code with two spaces', patient({ gender: 'ma  le' }), 'Patient.gender'],
    ['date of 13 months', patient({ birthDate: '2000-13-01' }), 'Patient.birthDate'],
    ['dateTime with hours and no zone', patient({ deceasedDateTime: '2000-01-01T10:00:00' }), 'Patient.deceasedDateTime'],
    ['id with a slash', patient({ id: 'a/b' }), 'Patient.id'],
    ['uri with a space', patient({ identifier: [{ system: 'urn:a b', value: '1' }] }), 'Patient.identifier[0].system'],
    ['base64Binary with !', patient({ photo: [{ data: 'not base64!' }] }), 'Patient.photo[0].data'],
    ['instant without seconds', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, issued: '2020-01-01T10:00Z' }, 'Observation.issued'],
    ['time of 25 hours', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueTime: '25:00:00' }, 'Observation.valueTime'],
  ];
  for (const [name, resource, expression] of bad) {
    const e = refusal(resource);
    t.equal(e.status, 400, name);
    t.ok(e.issues.some((i) => i.expression?.includes(expression)), `${name}: ${JSON.stringify(e.issues.map((i) => i.expression))}`);
  }
  t.doesNotThrow(() => validateResource('Patient', patient({ name: [{ given: ['A', null], _given: [null, { extension: [{ url: 'http://x', valueString: 'y' }] }] }] })), 'null placeholders in primitive arrays');
  t.doesNotThrow(() => validateResource('Patient', patient({ photo: [{ data: 'aGVsbG8=' }] })));
});

t.test('contained resources are validated as resources of their own type, with the rules of containment', async (t) => {
  const gp = { generalPractitioner: [{ reference: '#p1' }] };
  t.doesNotThrow(() => validateResource('Patient', patient({ ...gp, contained: [{ resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Kay' }] }] })));
  const cases: [string, Record<string, unknown>, string][] = [
    ['an unknown type', patient({ contained: [{ resourceType: 'Foo' }] }), 'Patient.contained[0]'],
    ['an invalid element inside', patient({ ...gp, contained: [{ resourceType: 'Practitioner', id: 'p1', birthDate: 'yesterday' }] }), 'Patient.contained[0].birthDate'],
    ['an element of another type', patient({ ...gp, contained: [{ resourceType: 'Practitioner', id: 'p1', multipleBirthBoolean: true }] }), 'Patient.contained[0].multipleBirthBoolean'],
    ['no id', patient({ ...gp, contained: [{ resourceType: 'Practitioner' }] }), 'Patient.contained[0].id'],
    ['contained in contained (dom-2)', patient({ ...gp, contained: [{ resourceType: 'Practitioner', id: 'p1', contained: [{ resourceType: 'Practitioner', id: 'p2' }] }] }), 'Patient.contained[0].contained'],
    ['a versionId (dom-4)', patient({ ...gp, contained: [{ resourceType: 'Practitioner', id: 'p1', meta: { versionId: '1' } }] }), 'Patient.contained[0].meta'],
    ['security labels (dom-5)', patient({ ...gp, contained: [{ resourceType: 'Practitioner', id: 'p1', meta: { security: [{ code: 'R' }] } }] }), 'Patient.contained[0].meta.security'],
    ['referred to from nowhere (dom-3)', patient({ contained: [{ resourceType: 'Practitioner', id: 'p1' }] }), 'Patient.contained[0]'],
    ['a contained resource without its required status', { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'x' }, result: [{ reference: '#o' }], contained: [{ resourceType: 'Observation', id: 'o', code: { text: 'y' } }] }, 'DiagnosticReport.contained[0].status'],
    ['a fragment naming no contained resource (ref-1)', patient({ generalPractitioner: [{ reference: '#nobody' }] }), 'Patient.generalPractitioner[0].reference'],
  ];
  for (const [name, resource, expression] of cases) {
    const e = refusal(resource);
    t.equal(e.status, 400, name);
    t.ok(e.issues.some((i) => i.expression?.includes(expression)), `${name}: ${JSON.stringify(e.issues)}`);
  }
});

t.test('narrative XHTML: one XHTML div with content, basic formatting only, nothing active', async (t) => {
  const ok = [
    `<div ${XHTML}>Peter</div>`,
    `<div ${XHTML}><p>Peter <b>James</b> &amp; &#169; &lt;x&gt;</p><table><tr><td colspan="2">1</td></tr></table></div>`,
    `<div ${XHTML}><a href="https://example.org/x?a=1&amp;b=2">link</a><img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/></div>`,
    `<div ${XHTML}><!-- a comment --><span style="color: red">x</span><br/></div>`,
    `<div ${XHTML}><img src="Binary/1"/></div>`,
  ];
  for (const div of ok) t.equal(narrativeProblem(div), undefined, div);
  const bad: [string, string][] = [
    ['empty', ''],
    ['no namespace', '<div>x</div>'],
    ['whitespace only', `<div ${XHTML}>   </div>`],
    ['self-closed root', `<div ${XHTML}/>`],
    ['not a div', `<p ${XHTML}>x</p>`],
    ['script', `<div ${XHTML}><script>alert(1)</script>x</div>`],
    ['event handler', `<div ${XHTML}><b onclick="alert(1)">x</b></div>`],
    ['javascript: link', `<div ${XHTML}><a href="javascript:alert(1)">x</a></div>`],
    ['encoded javascript: link', `<div ${XHTML}><a href="java&#x09;script&#58;alert(1)">x</a></div>`],
    ['svg data image', `<div ${XHTML}><img src="data:image/svg+xml;base64,PHN2Zz4="/>x</div>`],
    ['style loading a URL', `<div ${XHTML}><span style="background:url(https://evil)">x</span></div>`],
    ['iframe', `<div ${XHTML}><iframe src="https://evil"></iframe>x</div>`],
    ['form', `<div ${XHTML}><form><input/></form>x</div>`],
    ['unclosed element', `<div ${XHTML}><p>x</div>`],
    ['text after the root', `<div ${XHTML}>x</div>y`],
    ['two roots', `<div ${XHTML}>x</div><div ${XHTML}>y</div>`],
    ['bare ampersand', `<div ${XHTML}>a & b</div>`],
    ['CDATA', `<div ${XHTML}><![CDATA[x]]></div>`],
    ['unquoted attribute', `<div ${XHTML}><p class=x>x</p></div>`],
    ['duplicate attribute', `<div ${XHTML}><p class="a" class="b">x</p></div>`],
  ];
  for (const [name, div] of bad) t.type(narrativeProblem(div), 'string', name);
  const e = refusal(patient({ text: { status: 'generated', div: '' } }));
  t.equal(e.status, 400);
  t.same(e.issues[0]?.expression, ['Patient.text.div']);
});

t.test('references: the shapes R4 allows, and nothing else', async (t) => {
  for (const ok of ['Patient/1', 'Patient/a.b-C/_history/2', '#p1', '#', 'urn:uuid:6d2eba67-5b4a-403f-a29f-e6da3f1ea963', 'urn:oid:1.2.3', 'https://other.example.org/fhir/Patient/1', 'http://x.org/a b'.replace(' ', '')]) {
    t.type(referenceShape(ok), 'object', ok);
  }
  for (const bad of ['Encounter/', `Encounter/${'a'.repeat(65)}`, "Practitioner/' OR 1=1 --", 'Patient/../x', 'Foo/1', 'Patient', 'Patient/1/_history/', '#a b', 'urn:uuid:nope', 'https://a b/Patient/1', 'patient 1']) {
    t.type(referenceShape(bad), 'string', bad);
  }
  t.equal(localForm('https://hms.example.org/fhir/Patient/1', 'https://hms.example.org/fhir'), 'Patient/1');
  t.equal(localForm('https://HMS.example.org/fhir/Patient/1/_history/3', 'https://hms.example.org/fhir'), 'Patient/1/_history/3');
  t.equal(localForm('https://other.example.org/fhir/Patient/1', 'https://hms.example.org/fhir'), 'https://other.example.org/fhir/Patient/1');
  t.equal(localForm('https://hms.example.org/fhirx/Patient/1', 'https://hms.example.org/fhir'), 'https://hms.example.org/fhirx/Patient/1');
  const e = refusal(patient({ generalPractitioner: [{ reference: "Practitioner/' OR 1=1 --" }] }));
  t.equal(e.status, 400);
  t.same(e.issues[0]?.expression, ['Patient.generalPractitioner[0].reference']);
});

t.test('required primitives of datatypes, and ext-1', async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['an extension without url', patient({ extension: [{ valueString: 'x' }] }), 'Patient.extension[0].url'],
    ['an extension with neither value nor extensions', patient({ extension: [{ url: 'http://x' }] }), 'Patient.extension[0]'],
    ['an extension with both', patient({ extension: [{ url: 'http://x', valueString: 'a', extension: [{ url: 'b', valueString: 'c' }] }] }), 'Patient.extension[0]'],
    ['a narrative without status', patient({ text: { div: `<div ${XHTML}>x</div>` } }), 'Patient.text.status'],
    ['a nested extension without url', patient({ extension: [{ url: 'http://x', extension: [{ valueString: 'c' }] }] }), 'Patient.extension[0].extension[0].url'],
  ];
  for (const [name, resource, expression] of cases) {
    const e = refusal(resource);
    t.equal(e.status, 400, name);
    t.ok(e.issues.some((i) => i.expression?.includes(expression)), `${name}: ${JSON.stringify(e.issues)}`);
  }
  t.doesNotThrow(() => validateResource('Patient', patient({ extension: [{ url: 'http://x', _url: undefined, extension: [{ url: 'a', valueString: 'b' }] }] })));
  t.doesNotThrow(() => validateResource('Patient', patient({ birthDate: '1970', _birthDate: { extension: [{ url: 'http://x', valueString: 'approx' }] } })));
});

t.test('what R4 JSON forbids whatever the type: empty values, stray nulls, long strings, two choices of one [x], modifier extensions', async (t) => {
  const obs = (extra: Record<string, unknown>) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...extra });
  const cases: [string, Record<string, unknown>, number, string][] = [
    ['an empty string', patient({ extension: [{ url: '', valueString: 'a' }] }), 400, 'Patient.extension[0].url'],
    ['an empty object', patient({ name: [{}] }), 400, 'Patient.name[0]'],
    ['an empty array', patient({ address: [] }), 400, 'Patient.address'],
    ['an empty meta', patient({ meta: {} }), 400, 'Patient.meta'],
    ['null in a primitive array without its twin', patient({ name: [{ given: ['A', null] }] }), 400, 'Patient.name[0].given[1]'],
    ['null in both twins', patient({ name: [{ given: ['A', null], _given: [null, null] }] }), 400, 'Patient.name[0].given[1]'],
    ['a string over 1 MB', patient({ name: [{ text: 'x'.repeat(1024 * 1024 + 1) }] }), 400, 'Patient.name[0].text'],
    ['two choices of effective[x]', obs({ effectiveDateTime: '2020-01-01', effectivePeriod: { start: '2020-01-01' } }), 400, 'Observation'],
    ['two choices of value[x]', obs({ valueQuantity: { value: 1 }, valueInteger: 1 }), 400, 'Observation'],
    ['a choice and the twin of another', patient({ deceasedBoolean: true, _deceasedDateTime: { extension: [{ url: 'http://x', valueString: 'y' }] } }), 400, 'Patient'],
    ['two choices in an extension', patient({ extension: [{ url: 'http://x', valueCode: 'a', valuePeriod: { start: '2020' } }] }), 400, 'Patient.extension[0]'],
    ['a modifier extension', patient({ modifierExtension: [{ url: 'http://example.org/not-really', valueBoolean: true }] }), 422, 'Patient.modifierExtension'],
    ['a modifier extension deep inside', patient({ contact: [{ name: { family: 'x' }, modifierExtension: [{ url: 'http://x', valueBoolean: true }] }] }), 422, 'Patient.contact[0].modifierExtension'],
  ];
  for (const [name, resource, status, expression] of cases) {
    const e = refusal(resource);
    t.equal(e.status, status, name);
    t.ok(e.issues.some((i) => i.expression?.includes(expression)), `${name}: ${JSON.stringify(e.issues).slice(0, 300)}`);
  }
  t.doesNotThrow(() => validateResource('Patient', patient({ deceasedBoolean: true, _deceasedBoolean: { extension: [{ url: 'http://x', valueString: 'y' }] } })), 'a choice and its own twin');
  t.doesNotThrow(() => validateResource('Observation', obs({ effectiveDateTime: '2020-01-01', valueQuantity: { value: 1 } })));
  t.doesNotThrow(() => validateResource('Appointment', { resourceType: 'Appointment', status: 'proposed', participant: [{ status: 'accepted' }], reasonCode: [{ text: 'a' }], reasonReference: [{ reference: 'Condition/1' }] }), 'two elements with one stem are no choice');
});
