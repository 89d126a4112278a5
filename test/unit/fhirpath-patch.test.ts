/**
 * FHIRPath Patch (src/fhir/fhirpath-patch.ts) on the examples of https://hl7.org/fhir/R4/fhirpatch.html
 * and the edge cases the spec leaves to the server (docs/patch.md): pure, no database.
 */
import t, { type Test } from 'tap';
import { applyFhirPathPatch, parseFhirPathPatch } from '../../src/fhir/fhirpath-patch.js';
import { FhirError } from '../../src/fhir/outcome.js';
import type { Resource } from '../../src/fhir/types.js';

type J = Record<string, unknown>;

/** One operation parameter from its parts given as [name, value[x] key, value] (or [name, part list] for a value built from parts). */
const op = (...parts: ([string, string, unknown] | [string, J[]] | J)[]): J => ({
  name: 'operation',
  part: parts.map((p) => (!Array.isArray(p) ? p : p.length === 2 ? { name: p[0], part: p[1] } : { name: p[0], [p[1]]: p[2] })),
});
const params = (...operations: J[]): J => ({ resourceType: 'Parameters', parameter: operations });
const patch = (resource: J, ...operations: J[]): J => applyFhirPathPatch(resource as Resource, parseFhirPathPatch(params(...operations))) as J;

/** The FhirError a function throws (fails the test when it throws none). */
function refusal(t: Test, fn: () => unknown): FhirError {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof FhirError, 'a FhirError');
    return err as FhirError;
  }
  t.fail('expected a refusal');
  return new FhirError(500, 'none');
}
const status = (t: Test, fn: () => unknown, want: number, expression?: string): void => {
  const err = refusal(t, fn);
  t.equal(err.status, want, err.message);
  if (expression) t.same(err.issues[0]!.expression, [expression]);
};

const patient = (): J => ({
  resourceType: 'Patient', id: 'p1',
  identifier: [{ system: 'http://example.org/mrn', value: 'a' }, { system: 'http://example.org/mrn', value: 'b' }, { system: 'http://example.org/ssn', value: 'c' }],
  name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
  birthDate: '1974-12-25',
  deceasedBoolean: false,
});

t.test('the spec\'s examples', async (t) => {
  t.test('add: Patient.birthDate', async (t) => {
    const out = patch({ resourceType: 'Patient', id: 'p1' }, op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient'], ['name', 'valueString', 'birthDate'], ['value', 'valueDate', '1930-01-01']));
    t.same(out, { resourceType: 'Patient', id: 'p1', birthDate: '1930-01-01' });
  });
  t.test('add: a contact built from parts (an anonymous element)', async (t) => {
    const out = patch(patient(), op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient'], ['name', 'valueString', 'contact'],
      ['value', [{ name: 'name', valueHumanName: { text: 'a name' } }]]));
    t.same(out.contact, [{ name: { text: 'a name' } }]);
    const again = patch(out, op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient'], ['name', 'valueString', 'contact'],
      ['value', [{ name: 'name', valueHumanName: { text: 'another' } }, { name: 'telecom', valueContactPoint: { system: 'phone', value: '555' } }, { name: 'gender', valueCode: 'female' }]]));
    t.same(again.contact, [{ name: { text: 'a name' } }, { name: { text: 'another' }, telecom: [{ system: 'phone', value: '555' }], gender: 'female' }], 'appended; a repeating child is a list');
  });
  t.test('insert: an identifier at index 1', async (t) => {
    const out = patch(patient(), op(['type', 'valueCode', 'insert'], ['path', 'valueString', 'Patient.identifier'], ['index', 'valueInteger', 1],
      ['value', 'valueIdentifier', { system: 'http://example.org', value: 'new' }]));
    t.same((out.identifier as J[]).map((i) => i.value), ['a', 'new', 'b', 'c']);
  });
  t.test('delete: Patient.birthDate', async (t) => {
    const out = patch(patient(), op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Patient.birthDate']));
    t.notOk('birthDate' in out);
  });
  t.test('replace: Patient.birthDate', async (t) => {
    const out = patch(patient(), op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.birthDate'], ['value', 'valueDate', '1930-01-01']));
    t.equal(out.birthDate, '1930-01-01');
  });
  t.test('move: Patient.identifier from 0 to 2', async (t) => {
    const out = patch(patient(), op(['type', 'valueCode', 'move'], ['path', 'valueString', 'Patient.identifier'], ['source', 'valueInteger', 0], ['destination', 'valueInteger', 2]));
    t.same((out.identifier as J[]).map((i) => i.value), ['b', 'c', 'a']);
  });
});

t.test('operations apply in order on the working copy, never on the original', async (t) => {
  const original = patient();
  const before = JSON.stringify(original);
  const out = patch(original,
    op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient.name[0]'], ['name', 'valueString', 'given'], ['value', 'valueString', 'Jim']),
    op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.name[0].given[2]'], ['value', 'valueString', 'Jimmy']),
    op(['type', 'valueCode', 'delete'], ['path', 'valueString', "Patient.identifier.where(system = 'http://example.org/ssn')"]));
  t.same((out.name as J[])[0]!.given, ['Peter', 'James', 'Jimmy'], 'the second operation sees what the first added');
  t.equal((out.identifier as J[]).length, 2);
  t.equal(JSON.stringify(original), before, 'the resource given is untouched');
});

t.test('add', async (t) => {
  const add = (path: string, name: string, key: string, value: unknown) => op(['type', 'valueCode', 'add'], ['path', 'valueString', path], ['name', 'valueString', name], ['value', key, value]);
  t.test('to a repeating element with no value yet makes a list', async (t) => {
    t.same(patch({ resourceType: 'Patient', id: 'p1' }, add('Patient', 'identifier', 'valueIdentifier', { value: 'x' })).identifier, [{ value: 'x' }]);
  });
  t.test('to a non-repeating element that has a value: 422 naming the operation', async (t) => {
    status(t, () => patch(patient(), add('Patient', 'gender', 'valueCode', 'male'), add('Patient', 'birthDate', 'valueDate', '2000-01-01')), 422, 'Parameters.parameter[1]');
  });
  t.test('a choice element takes the value\'s type in its name', async (t) => {
    const { deceasedBoolean: _, ...alive } = patient();
    t.equal(patch(alive, add('Patient', 'deceased', 'valueDateTime', '2020-01-01')).deceasedDateTime, '2020-01-01');
    status(t, () => patch(patient(), add('Patient', 'deceased', 'valueDateTime', '2020-01-01')), 422, 'Parameters.parameter[0]');
    status(t, () => patch(alive, add('Patient', 'deceased', 'valueString', 'yes')), 422);
  });
  t.test('a value of the wrong type, an unknown element, a primitive target: 422', async (t) => {
    status(t, () => patch(patient(), add('Patient', 'name', 'valueString', 'Peter')), 422);
    status(t, () => patch(patient(), add('Patient', 'spaceship', 'valueString', 'x')), 422);
    status(t, () => patch(patient(), add('Patient', '__proto__', 'valueString', 'x')), 400);
    status(t, () => patch(patient(), add('Patient.birthDate', 'extension', 'valueExtension', { url: 'u', valueString: 'x' })), 422);
  });
  t.test('a path matching none or several: 422', async (t) => {
    status(t, () => patch(patient(), add('Patient.contact', 'gender', 'valueCode', 'male')), 422, 'Parameters.parameter[0]');
    status(t, () => patch(patient(), add('Patient.identifier', 'use', 'valueCode', 'old')), 422);
  });
  t.test('a Quantity subtype where Quantity is expected, and a component built from parts with a choice inside', async (t) => {
    const obs: J = { resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'BP' } };
    const out = patch(obs, op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Observation'], ['name', 'valueString', 'component'],
      ['value', [{ name: 'code', valueCodeableConcept: { text: 'systolic' } }, { name: 'value', valueQuantity: { value: 120, unit: 'mmHg' } }]]));
    t.same(out.component, [{ code: { text: 'systolic' }, valueQuantity: { value: 120, unit: 'mmHg' } }]);
    const aged = patch({ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' } }, add('Condition', 'onset', 'valueAge', { value: 40, unit: 'a' }));
    t.same(aged.onsetAge, { value: 40, unit: 'a' }, 'the choice of its own type');
  });
  t.test('to a recursive backbone element (Questionnaire.item.item)', async (t) => {
    const q: J = { resourceType: 'Questionnaire', id: 'q1', status: 'draft', item: [{ linkId: '1', type: 'group' }] };
    const out = patch(q, op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Questionnaire.item[0]'], ['name', 'valueString', 'item'],
      ['value', [{ name: 'linkId', valueString: '1.1' }, { name: 'type', valueCode: 'string' }, { name: 'text', valueString: 'Why?' }]]));
    t.same((out.item as J[])[0]!.item, [{ linkId: '1.1', type: 'string', text: 'Why?' }]);
  });
  t.test('a contained resource', async (t) => {
    const out = patch(patient(), op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient'], ['name', 'valueString', 'contained'],
      { name: 'value', resource: { resourceType: 'Organization', id: 'org', name: 'Clinic' } }));
    t.same(out.contained, [{ resourceType: 'Organization', id: 'org', name: 'Clinic' }]);
  });
});

t.test('insert and move', async (t) => {
  const insert = (path: string, index: number, value: unknown) => op(['type', 'valueCode', 'insert'], ['path', 'valueString', path], ['index', 'valueInteger', index], ['value', 'valueIdentifier', value]);
  t.test('at the end is allowed, beyond it is 422', async (t) => {
    t.equal((patch(patient(), insert('Patient.identifier', 3, { value: 'd' })).identifier as J[])[3]!.value, 'd');
    status(t, () => patch(patient(), insert('Patient.identifier', 4, { value: 'd' })), 422, 'Parameters.parameter[0]');
  });
  t.test('into an empty list: found by the path\'s container', async (t) => {
    t.same(patch({ resourceType: 'Patient', id: 'p1' }, insert('Patient.identifier', 0, { value: 'd' })).identifier, [{ value: 'd' }]);
    status(t, () => patch({ resourceType: 'Patient', id: 'p1' }, insert('Patient.identifier', 1, { value: 'd' })), 422);
    status(t, () => patch(patient(), op(['type', 'valueCode', 'insert'], ['path', 'valueString', 'Patient.birthDate'], ['index', 'valueInteger', 0], ['value', 'valueDate', '2000-01-01'])), 422, 'Parameters.parameter[0]');
  });
  t.test('move out of the list: 422', async (t) => {
    status(t, () => patch(patient(), op(['type', 'valueCode', 'move'], ['path', 'valueString', 'Patient.identifier'], ['source', 'valueInteger', 3], ['destination', 'valueInteger', 0])), 422);
    status(t, () => patch(patient(), op(['type', 'valueCode', 'move'], ['path', 'valueString', 'Patient.identifier'], ['source', 'valueInteger', 0], ['destination', 'valueInteger', 3])), 422);
  });
  t.test('a path over two lists: 422', async (t) => {
    const two: J = { resourceType: 'Patient', id: 'p1', name: [{ given: ['a'] }, { given: ['b'] }] };
    status(t, () => patch(two, op(['type', 'valueCode', 'move'], ['path', 'valueString', 'Patient.name.given'], ['source', 'valueInteger', 0], ['destination', 'valueInteger', 0])), 422);
  });
});

t.test('delete and replace', async (t) => {
  const del = (path: string) => op(['type', 'valueCode', 'delete'], ['path', 'valueString', path]);
  t.test('a path matching nothing deletes nothing; several is 422', async (t) => {
    t.same(patch(patient(), del('Patient.contact')), patient());
    status(t, () => patch(patient(), del("Patient.identifier.where(system = 'http://example.org/mrn')")), 422, 'Parameters.parameter[0]');
  });
  t.test('the last element of a list takes the list with it', async (t) => {
    const out = patch(patient(), del('Patient.identifier[0]'), del('Patient.identifier[0]'), del('Patient.identifier[0]'));
    t.notOk('identifier' in out);
  });
  t.test('the resource itself cannot be deleted or replaced', async (t) => {
    status(t, () => patch(patient(), del('Patient')), 422);
    status(t, () => patch(patient(), op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient'], ['value', 'valueString', 'x'])), 422);
  });
  t.test('replace needs exactly one match', async (t) => {
    status(t, () => patch(patient(), op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.gender'], ['value', 'valueCode', 'male'])), 422, 'Parameters.parameter[0]');
    status(t, () => patch(patient(), op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.identifier'], ['value', 'valueIdentifier', { value: 'z' }])), 422);
  });
  t.test('replace a choice with another of its types', async (t) => {
    const out = patch(patient(), op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.deceased'], ['value', 'valueDateTime', '2024-05-01']));
    t.equal(out.deceasedDateTime, '2024-05-01');
    t.notOk('deceasedBoolean' in out);
  });
  t.test('a primitive list\'s ids and extensions stay with their values', async (t) => {
    const withExt: J = { resourceType: 'Patient', id: 'p1', name: [{ given: ['a', 'b', 'c'], _given: [null, { id: 'b-ext' }, null] }] };
    const moved = patch(withExt, op(['type', 'valueCode', 'move'], ['path', 'valueString', 'Patient.name[0].given'], ['source', 'valueInteger', 1], ['destination', 'valueInteger', 0]));
    t.same((moved.name as J[])[0], { given: ['b', 'a', 'c'], _given: [{ id: 'b-ext' }, null, null] });
    const deleted = patch(withExt, del('Patient.name[0].given[1]'));
    t.same((deleted.name as J[])[0], { given: ['a', 'c'] }, 'the companion goes when nothing is left in it');
  });
  t.test('a path that names no element of the resource: 422', async (t) => {
    status(t, () => patch(patient(), del("'Patient'")), 422);
    status(t, () => patch(patient(), del('Patient.name.family.foo()')), 422);
  });
});

t.test('malformed patches are 400', async (t) => {
  const bad = (body: unknown, expression?: string) => status(t, () => parseFhirPathPatch(body), 400, expression);
  bad([{ op: 'add' }]);
  bad({ resourceType: 'Patient' });
  bad({ resourceType: 'Parameters' }, 'Parameters.parameter');
  bad(params({ name: 'change', part: [] }), 'Parameters.parameter[0]');
  bad(params(op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient'], ['name', 'valueString', 'birthDate'])), 'Parameters.parameter[0]');
  bad(params(op(['type', 'valueCode', 'upsert'], ['path', 'valueString', 'Patient'])), 'Parameters.parameter[0]');
  bad(params(op(['type', 'valueCode', 'delete'])), 'Parameters.parameter[0]');
  bad(params(op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Patient.name.('])), 'Parameters.parameter[0]');
  bad(params(op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Patient.name'], ['index', 'valueInteger', 1])));
  bad(params(op(['type', 'valueCode', 'insert'], ['path', 'valueString', 'Patient.name'], ['index', 'valueInteger', -1], ['value', 'valueHumanName', {}])));
  bad(params(op(['type', 'valueCode', 'move'], ['path', 'valueString', 'Patient.name'], ['source', 'valueString', '0'], ['destination', 'valueInteger', 1])));
  bad(params(op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Patient.name'], ['colour', 'valueString', 'red'])));
  bad(params(op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.birthDate'], ['value', [] as J[]])));
  bad(params(op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Patient.birthDate']), 'not an operation' as unknown as J), 'Parameters.parameter[1]');
});
