/**
 * The generic store's search values: every standard R4 parameter's FHIRPath evaluated by
 * fhirpath.js (src/fhir/generic/extract.ts) over the Synthea records and the official examples,
 * then conversions that would show if a type were converted wrongly. docs/fhirpath.md
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { compileExtractor, CURRENCY_SYSTEM, DATE_MAX_MS, DATE_MIN_MS, rewriteResolve, type Extractor } from '../../src/fhir/generic/extract.js';
import { r4Definitions, r4Type, type R4SearchParam } from '../../src/fhir/r4/definitions.js';
import { findReferences } from '../../src/fhir/references.js';
import type { IndexValue } from '../../src/fhir/registry.js';
import type { Resource } from '../../src/fhir/types.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures');
const readJson = (file: string): Resource => JSON.parse(readFileSync(file, 'utf8')) as Resource;
type Entry = { fullUrl?: string; resource?: Resource };

/**
 * A transaction Bundle's resources as a transaction stores them: each reference to another
 * entry's fullUrl (urn:uuid:) becomes that entry's Type/id.
 */
function transactionResources(bundle: Resource): Resource[] {
  const entries = (bundle.entry as Entry[] | undefined) ?? [];
  const local = new Map<string, string>();
  for (const e of entries) if (e.fullUrl && e.resource?.id) local.set(e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`);
  const out: Resource[] = [];
  for (const e of entries) {
    if (!e.resource) continue;
    const r = structuredClone(e.resource);
    for (const { holder } of findReferences(r)) holder.reference = local.get(holder.reference) ?? holder.reference;
    out.push(r);
  }
  return out;
}

const syntheaFiles = readdirSync(join(fixtures, 'synthea')).filter((f) => f.endsWith('.json')).sort();
const synthea = syntheaFiles.map((f) => readJson(join(fixtures, 'synthea', f)));
const officialFiles = readdirSync(join(fixtures, 'r4')).filter((f) => f.endsWith('.json')).sort();
const official = officialFiles.map((f) => readJson(join(fixtures, 'r4', f)));
/** Every resource of the fixtures: Synthea's entries (references resolved), the examples and their Bundles' entries. */
const all: Resource[] = [
  ...synthea.flatMap(transactionResources),
  ...official,
  ...official.filter((r) => r.resourceType === 'Bundle').flatMap((b) => ((b.entry as Entry[] | undefined) ?? []).flatMap((e) => (e.resource ? [e.resource] : []))),
];

const extractors = new Map<string, Map<string, Extractor>>();
function extractorsOf(type: string): Map<string, Extractor> {
  let m = extractors.get(type);
  if (!m) {
    m = new Map();
    for (const p of r4Type(type)?.searchParams ?? []) { const e = compileExtractor(type, p); if (e) m.set(p.code, e); }
    extractors.set(type, m);
  }
  return m;
}
/** The values of one parameter of a resource. */
function values(r: Resource, code: string): IndexValue[] {
  const e = extractorsOf(r.resourceType).get(code);
  if (!e) throw new Error(`${r.resourceType} has no indexed parameter ${code}`);
  return e(r);
}
const find = (type: string, id: string): Resource => {
  const r = all.find((x) => x.resourceType === type && x.id === id);
  if (!r) throw new Error(`no ${type}/${id} in the fixtures`);
  return r;
};
const ms = (iso: string): number => Date.parse(iso);
const second = (iso: string): IndexValue => ({ low: ms(iso), high: ms(iso) + 1000 });

// Brent Beer's record (synthea/Brent_Beer_...json)
const BRENT = 'Patient/d0368972-8517-4623-907e-920b04f003b6';
const DR_SCHOEN = 'Practitioner/3e177bd6-7cd9-4b2d-9245-271684a76b03';

t.test('every parameter of every R4 type compiles, but composite and special ones', async (t) => {
  let compiled = 0;
  const refused: string[] = [];
  for (const [type, info] of Object.entries(r4Definitions().types)) {
    for (const p of info.searchParams) {
      const e = compileExtractor(type, p);
      if (p.type === 'composite' || p.type === 'special') t.equal(e, undefined, `${type}.${p.code} (${p.type}) is not indexed`);
      else if (e) compiled++;
      else refused.push(`${type}.${p.code}: ${p.expression}`);
    }
  }
  t.same(refused, [], 'fhirpath.js refuses no expression (resolve() rewritten)');
  t.equal(compiled, 1626, 'of the 1,699 parameters of the 146 types, 72 composite and 1 special (Location.near) left out');
});

t.test('over all fixtures every parameter extracts without throwing, and most types give values', async (t) => {
  t.equal(synthea.length, 12);
  t.ok(all.length > 2300, `${all.length} resources`);
  const types = new Set<string>();
  let evaluations = 0;
  let valued = 0;
  let count = 0;
  const withValues = new Set<string>();
  for (const r of all) {
    const info = r4Type(r.resourceType);
    t.ok(info, `${r.resourceType} is an R4 type`);
    types.add(r.resourceType);
    for (const p of info!.searchParams) {
      const e = compileExtractor(r.resourceType, p);
      if (!e) { t.ok(p.type === 'composite' || p.type === 'special', `${r.resourceType}.${p.code} compiles`); continue; }
      let v: IndexValue[] = [];
      try { v = e(r); } catch (err) { t.fail(`${r.resourceType}.${p.code} threw ${String(err)}`); }
      evaluations++;
      count += v.length;
      if (v.length) { valued++; withValues.add(`${p.type}`); }
      for (const x of v) if (!valueOfType(p, x)) t.fail(`${r.resourceType}/${r.id} ${p.code} (${p.type}): ${JSON.stringify(x)}`);
    }
  }
  t.ok(types.size >= 20, `${types.size} types`);
  t.ok(evaluations > 54_000, `${evaluations} evaluations`);
  t.ok(valued > 12_000 && count > 14_000, `${valued} gave ${count} values`);
  t.same([...withValues].sort(), ['date', 'quantity', 'reference', 'string', 'token', 'uri'], 'values of every type the fixtures have (no number parameter on them)');
});

/** The value has the shape its parameter type indexes (src/fhir/registry.ts IndexValue). */
function valueOfType(p: R4SearchParam, v: IndexValue): boolean {
  switch (p.type) {
    case 'string': case 'uri': return typeof v === 'string' && v.length > 0;
    case 'reference': return typeof v === 'string' && (/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(v) || /^[a-z][a-z0-9+.-]*:/i.test(v)) && !v.startsWith('urn:');
    case 'token': return typeof v === 'object' && 'code' in v && typeof v.code === 'string' && v.code.length > 0;
    case 'date': return typeof v === 'object' && 'low' in v && Number.isFinite(v.low) && Number.isFinite(v.high) && v.low < v.high;
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'quantity': return typeof v === 'object' && 'value' in v && Number.isFinite(v.value);
    default: return false;
  }
}

t.test('Immunization: patient, date, vaccine-code', async (t) => {
  const imm = find('Immunization', 'bccff539-fecc-4e68-bfd0-56f51e82b52e');
  t.same(values(imm, 'patient'), [BRENT], 'the urn:uuid: the transaction made Patient/id');
  t.same(values(imm, 'date'), [second('2012-07-11T00:11:58+00:00')], 'occurrenceDateTime to the second');
  t.same(values(imm, 'vaccine-code'), [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }], 'the CVX coding');
  t.same(values(imm, 'status'), [{ code: 'completed' }]);
  // as the Bundle carries it, before the transaction: a urn:uuid: is no stored reference
  const raw = ((synthea[syntheaFiles.findIndex((f) => f.startsWith('Brent_Beer'))]!.entry as Entry[]).find((e) => e.resource?.id === imm.id))!.resource!;
  t.same(values(raw, 'patient'), []);
  t.same(values({ ...imm, occurrenceDateTime: undefined, occurrenceString: 'at about five' }, 'date'), [], 'occurrenceString is no date');
});

t.test('Procedure date from performedPeriod; Encounter period and length', async (t) => {
  const proc = find('Procedure', '4b186945-71b4-41ab-acb5-1ebf4c9ae228');
  t.same(values(proc, 'date'), [{ low: ms('2012-07-11T00:11:58+00:00'), high: ms('2012-07-11T00:26:58+00:00') + 1000 }], 'start to the end of the end second');
  t.same(values(proc, 'patient'), [BRENT], 'subject.where(resolve() is Patient)');
  t.same(values(proc, 'subject'), [BRENT]);
  t.same(values(proc, 'code'), [{ system: 'http://snomed.info/sct', code: '428191000124101' }]);
  const enc = find('Encounter', '1dfff3f8-3d77-474b-94fa-4c5ef2cc9aa3');
  t.same(values(enc, 'date'), [{ low: ms('1981-07-12T00:11:58+00:00'), high: ms('1981-07-12T00:41:58+00:00') + 1000 }]);
  t.same(values(enc, 'practitioner'), [DR_SCHOEN], 'participant.individual.where(resolve() is Practitioner)');
  t.same(values(enc, 'class'), [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }], 'a Coding');
  const f001 = find('Encounter', 'f001');
  t.same(values(f001, 'length'), [{ value: 140, system: 'http://unitsofmeasure.org', code: 'min' }], 'a Duration');
});

t.test('Claim and ExplanationOfBenefit', async (t) => {
  const claim = find('Claim', '1310e406-e237-4563-80c6-1fc78e86dc55');
  t.same(values(claim, 'patient'), [BRENT]);
  t.same(values(claim, 'created'), [second('1981-07-12T00:41:58+00:00')]);
  t.same(values(claim, 'provider'), ['Organization/5e765f2b-e908-3888-9fc7-df2cb87beb58']);
  t.same(values(claim, 'use'), [{ code: 'claim' }]);
  const eob = find('ExplanationOfBenefit', 'eb7f92a6-4db8-405e-b884-3d355a516982');
  t.same(values(eob, 'patient'), [BRENT]);
  t.same(values(eob, 'created'), [second('1981-07-12T00:41:58+00:00')]);
  t.same(values(eob, 'provider'), [DR_SCHOEN]);
  t.same(values(eob, 'care-team'), [DR_SCHOEN]);
  t.same(values(eob, 'encounter'), ['Encounter/1dfff3f8-3d77-474b-94fa-4c5ef2cc9aa3']);
  t.same(values(eob, 'coverage'), [], '#coverage names a contained resource: not indexed');
  t.same(values(eob, 'identifier'), [
    { system: 'https://bluebutton.cms.gov/resources/variables/clm_id', code: '20bf1b39-b419-49fb-95e2-d124d5a48660' },
    { system: 'https://bluebutton.cms.gov/resources/identifier/claim-group', code: '99999999999' },
  ]);
  t.same(values(eob, 'status'), [{ code: 'active' }]);
});

t.test('Organization name, address-city, address and telecom', async (t) => {
  const sturdy = find('Organization', '5e765f2b-e908-3888-9fc7-df2cb87beb58');
  t.same(values(sturdy, 'name'), ['STURDY MEMORIAL HOSPITAL']);
  t.same(values(sturdy, 'address-city'), ['ATTLEBORO']);
  t.same(values(sturdy, 'address'), ['211 PARK STREET', 'ATTLEBORO', 'MA', '02703', 'US'], 'lines, city, state, postal code, country');
  t.same(values(sturdy, 'active'), [{ code: 'true' }], 'a boolean');
  t.same(values(sturdy, 'type'), [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov' }]);
  const hl7 = find('Organization', 'hl7');
  t.same(values(hl7, 'name'), ['Health Level Seven International', 'HL7 International'], 'name and alias');
  t.same(values(hl7, 'endpoint'), ['Endpoint/example']);
});

t.test('Patient name, birthdate, telecom, identifier, deceased', async (t) => {
  const brent = find('Patient', 'd0368972-8517-4623-907e-920b04f003b6');
  t.same(values(brent, 'name'), ['Beer', 'Brent', 'Mr.'], 'family, given, prefix');
  t.same(values(brent, 'family'), ['Beer']);
  t.same(values(brent, 'given'), ['Brent']);
  t.same(values(brent, 'birthdate'), [{ low: Date.UTC(1977, 6, 5), high: Date.UTC(1977, 6, 6) }], 'a date: its (UTC) day');
  t.same(values(brent, 'telecom'), [{ system: 'phone', code: '555-956-3629' }], 'a ContactPoint: its system and value');
  t.same(values(brent, 'phone'), [{ system: 'phone', code: '555-956-3629' }]);
  t.same(values(brent, 'email'), []);
  t.same(values(brent, 'identifier').slice(0, 3), [
    { system: 'https://github.com/synthetichealth/synthea', code: '7dc94cc0-8c2e-4835-9994-cecbe894bcbf' },
    { system: 'http://hospital.smarthealthit.org', code: '7dc94cc0-8c2e-4835-9994-cecbe894bcbf' },
    { system: 'http://hl7.org/fhir/sid/us-ssn', code: '999-62-5100' },
  ]);
  t.equal(values(brent, 'identifier').length, 5);
  t.same(values(brent, 'gender'), [{ code: 'male' }]);
  t.same(values(brent, 'address-postalcode'), ['02771']);
  t.same(values(brent, 'deceased'), [{ code: 'false' }], 'Patient.deceased.exists() and Patient.deceased != false: a computed boolean');
  const example = find('Patient', 'example');
  t.same(values(example, 'name'), ['Chalmers', 'Peter', 'James', 'Jim', 'Windsor', 'Peter', 'James'], 'every name, given names each');
  t.same(values(example, 'birthdate'), [{ low: Date.UTC(1974, 11, 25), high: Date.UTC(1974, 11, 26) }]);
  t.same(values(example, 'organization'), ['Organization/1']);
  const deceased = { resourceType: 'Patient', deceasedDateTime: '2015-02-14T13:42:00+10:00' };
  t.same(values(deceased, 'deceased'), [{ code: 'true' }]);
  t.same(values(deceased, 'death-date'), [second('2015-02-14T03:42:00Z')], 'the zone honoured');
});

t.test('dates by precision and zone; Period ends; Timing', async (t) => {
  const cond = (onset: Record<string, unknown>): IndexValue[] => values({ resourceType: 'Condition', ...onset }, 'onset-date');
  t.same(cond({ onsetDateTime: '2020' }), [{ low: Date.UTC(2020, 0, 1), high: Date.UTC(2021, 0, 1) }], 'a year');
  t.same(cond({ onsetDateTime: '2020-02' }), [{ low: Date.UTC(2020, 1, 1), high: Date.UTC(2020, 2, 1) }], 'a month (leap February)');
  t.same(cond({ onsetDateTime: '2020-12-31' }), [{ low: Date.UTC(2020, 11, 31), high: Date.UTC(2021, 0, 1) }], 'a day');
  t.same(cond({ onsetDateTime: '2020-06-01T10:00:00-05:00' }), [second('2020-06-01T15:00:00Z')], 'seconds, in UTC');
  t.same(cond({ onsetDateTime: '2020-06-01T10:00:00.250Z' }), [{ low: ms('2020-06-01T10:00:00.250Z'), high: ms('2020-06-01T10:00:00.250Z') + 1 }], 'milliseconds');
  t.same(cond({ onsetDateTime: '2020-06-01T10:00:00' }), [second('2020-06-01T10:00:00Z')], 'no zone: UTC, as search values are read');
  t.same(cond({ onsetPeriod: { start: '2020-01-15' } }), [{ low: Date.UTC(2020, 0, 15), high: DATE_MAX_MS }], 'an open end at the upper bound');
  t.same(cond({ onsetPeriod: { end: '2020-01' } }), [{ low: DATE_MIN_MS, high: Date.UTC(2020, 1, 1) }], 'an open start at year 1, the end to the end of its month');
  t.same(cond({ onsetPeriod: {} }), [], 'a Period with no ends gives nothing');
  t.same(cond({ onsetString: 'childhood' }), []);
  t.same(cond({ onsetDateTime: 'not a date' }), [], 'an invalid date gives nothing, and does not throw');
  t.equal(DATE_MIN_MS, new Date('0001-01-01T00:00:00Z').getTime());
  const timing = { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' },
    occurrenceTiming: { event: ['2021-03-01T09:00:00Z', '2021-03-02'], repeat: { boundsPeriod: { start: '2021-03-01', end: '2021-03-31' }, frequency: 1, period: 1, periodUnit: 'd' } } };
  t.same(values(timing, 'occurrence'), [
    second('2021-03-01T09:00:00Z'),
    { low: Date.UTC(2021, 2, 2), high: Date.UTC(2021, 2, 3) },
    { low: Date.UTC(2021, 2, 1), high: Date.UTC(2021, 3, 1) },
  ], 'each event, and the bounds');
  t.same(values(timing, 'patient'), ['Patient/p1']);
});

t.test('quantity and number parameters', async (t) => {
  const charge = {
    resourceType: 'ChargeItem', status: 'billable', code: { coding: [{ system: 'http://snomed.info/sct', code: '7657000' }] }, subject: { reference: 'Patient/p1' },
    quantity: { value: 2, unit: 'tablets' }, factorOverride: 0.8, priceOverride: { value: 40.5, currency: 'EUR' },
  };
  t.same(values(charge, 'quantity'), [{ value: 2, code: 'tablets' }], 'no code: the unit');
  t.same(values(charge, 'factor-override'), [0.8], 'a decimal');
  t.same(values(charge, 'price-override'), [{ value: 40.5, system: CURRENCY_SYSTEM, code: 'EUR' }], 'Money: ISO 4217');
  t.same(values(charge, 'patient'), ['Patient/p1']);
  const risk = {
    resourceType: 'RiskAssessment', status: 'final', subject: { reference: 'Patient/p1' }, occurrenceDateTime: '2006-01-13T23:01:00Z',
    prediction: [{ probabilityDecimal: 0.02 }, { probabilityRange: { low: { value: 1 }, high: { value: 5 } } }, { probabilityDecimal: 0.000012 }],
  };
  t.same(values(risk, 'probability'), [0.02, 0.000012], 'decimals; a Range is no number');
  t.same(values(risk, 'date'), [second('2006-01-13T23:01:00Z')]);
  const seq = { resourceType: 'MolecularSequence', coordinateSystem: 0, variant: [{ start: 128, end: 129 }] };
  t.same(values(seq, 'variant-start'), [128], 'an integer');
  t.same(values(seq, 'variant-end'), [129]);
  const onset = { resourceType: 'Condition', subject: { reference: 'Patient/p1' }, onsetAge: { value: 52, unit: 'yr', system: 'http://unitsofmeasure.org', code: 'a' } };
  t.same(values(onset, 'onset-age'), [{ value: 52, system: 'http://unitsofmeasure.org', code: 'a' }, { value: 52, code: 'yr' }], 'an Age: its code, and its human unit apart (value||unit finds it)');
  const ranged = { ...onset, onsetAge: undefined, onsetRange: { low: { value: 40, system: 'http://unitsofmeasure.org', code: 'a' }, high: { value: 50, system: 'http://unitsofmeasure.org', code: 'a' } } };
  t.same(values(ranged, 'onset-age'), [{ value: 40, system: 'http://unitsofmeasure.org', code: 'a' }, { value: 50, system: 'http://unitsofmeasure.org', code: 'a' }], 'a Range: its low and high');
  const obs = find('Observation', 'satO2');
  t.same(values(obs, 'value-quantity'), [{ value: 95, system: 'http://unitsofmeasure.org', code: '%' }]);
  const bp = find('Observation', 'blood-pressure');
  t.same(values(bp, 'component-value-quantity').filter((q) => (q as { system?: string }).system).map((q) => (q as { value: number }).value), [107, 60]);
  const invoice = find('Invoice', 'example');
  t.same(values(invoice, 'totalnet'), [{ value: 40, system: CURRENCY_SYSTEM, code: 'EUR' }]);
});

t.test('reference, uri and canonical values', async (t) => {
  const prov = {
    resourceType: 'Provenance', recorded: '2021-01-01T00:00:00Z', agent: [{ who: { reference: 'Practitioner/d1' } }],
    target: [
      { reference: 'Observation/o1' }, { reference: 'Patient/p1' }, { reference: 'Patient/p2/_history/3' },
      { reference: 'https://other.example/fhir/Patient/p3' }, { reference: 'https://other.example/fhir/Group/Patient' },
      { reference: '#p4' }, { reference: 'urn:uuid:0d3b1a2c-6e5f-4a7b-8c9d-0e1f2a3b4c5d' }, { reference: 'RelatedPerson/Patient' },
      { identifier: { value: 'p5' } }, { reference: 'Encounter/e1' },
    ],
  };
  t.same(values(prov, 'patient'), ['Patient/p1', 'Patient/p2', 'https://other.example/fhir/Patient/p3'],
    'target.where(resolve() is Patient): the Patient references only, the version dropped, an absolute URL as it is');
  t.same(values(prov, 'target'), ['Observation/o1', 'Patient/p1', 'Patient/p2', 'https://other.example/fhir/Patient/p3', 'https://other.example/fhir/Group/Patient', 'RelatedPerson/Patient', 'Encounter/e1'],
    'every reference but #contained, urn: and a logical one');
  t.same(values(prov, 'agent'), ['Practitioner/d1']);
  t.equal(rewriteResolve('Provenance.target.where(resolve() is Patient)'), "Provenance.target.where(reference.matches('(^|/)Patient/[^/]+(/_history/[^/]+)?$'))");
  t.equal(rewriteResolve('AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Patient)'),
    "AuditEvent.agent.who.where(reference.matches('(^|/)Patient/[^/]+(/_history/[^/]+)?$')) | AuditEvent.entity.what.where(reference.matches('(^|/)Patient/[^/]+(/_history/[^/]+)?$'))");
  const appt = find('Appointment', 'example');
  t.same(values(appt, 'patient'), ['Patient/example']);
  t.same(values(appt, 'practitioner'), ['Practitioner/example']);
  t.same(values(appt, 'location'), ['Location/1']);
  t.same(values(appt, 'actor'), ['Patient/example', 'Practitioner/example', 'Location/1']);
  const vs = {
    resourceType: 'ValueSet', status: 'active', url: 'http://example.org/fhir/ValueSet/x', version: '2.0',
    useContext: [{ code: { system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'age' }, valueRange: { low: { value: 18, unit: 'yr', system: 'http://unitsofmeasure.org', code: 'a' } } },
      { code: { system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'focus' }, valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }], text: 'Diabetes' } }],
  };
  t.same(values(vs, 'url'), ['http://example.org/fhir/ValueSet/x'], 'a uri');
  t.same(values(vs, 'version'), [{ code: '2.0' }], 'a string as a token');
  t.same(values(vs, 'context-quantity'), [{ value: 18, system: 'http://unitsofmeasure.org', code: 'a' }, { value: 18, code: 'yr' }]);
  t.same(values(vs, 'context'), [{ system: 'http://snomed.info/sct', code: '44054006' }]);
  t.same(values(vs, 'context-type'), [{ system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'age' }, { system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'focus' }]);
  const plan = { resourceType: 'PlanDefinition', status: 'draft', library: ['http://example.org/fhir/Library/l1|1.0'], relatedArtifact: [{ type: 'depends-on', resource: 'http://example.org/fhir/Library/l2' }, { type: 'citation', resource: 'http://example.org/fhir/Library/l3' }] };
  t.same(values(plan, 'depends-on'), ['http://example.org/fhir/Library/l2', 'http://example.org/fhir/Library/l1|1.0'], 'canonicals as they are');
  t.same(values({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueCodeableConcept: { text: 'Positive', coding: [{ code: 'POS', display: 'positive' }] } }, 'value-string'), ['Positive'],
    '(Observation.value.ofType(CodeableConcept)).text');
});

t.test('an extractor does not throw on odd input, and leaves the resource as it was', async (t) => {
  const p = r4Type('Patient')!.searchParams;
  const odd = { resourceType: 'Patient', name: 'not an array', birthDate: 19700101, telecom: [null, { value: 3 }], identifier: [{}], link: [{ other: 'Patient/x' }] } as unknown as Resource;
  const before = JSON.stringify(odd);
  for (const param of p) {
    const e = compileExtractor('Patient', param);
    if (!e) continue;
    t.doesNotThrow(() => e(odd), param.code);
  }
  t.equal(JSON.stringify(odd), before, 'the resource is not changed');
  const brent = find('Patient', 'd0368972-8517-4623-907e-920b04f003b6');
  const copy = JSON.stringify(brent);
  for (const e of extractorsOf('Patient').values()) e(brent);
  t.equal(JSON.stringify(brent), copy);
});

t.test('extraction time per resource, all parameters of its type, warm', async (t) => {
  const jobs = all.map((r) => [r, [...extractorsOf(r.resourceType).values()]] as const);
  const pass = (): number => { let n = 0; for (const [r, es] of jobs) for (const e of es) n += e(r).length; return n; };
  pass(); // warm
  const runs: number[] = [];
  let n = 0;
  for (let i = 0; i < 3; i++) { const t0 = performance.now(); n = pass(); runs.push(performance.now() - t0); }
  const best = Math.min(...runs);
  const evaluations = jobs.reduce((s, [, es]) => s + es.length, 0);
  t.comment(`extraction: ${all.length} resources, ${evaluations} parameter evaluations, ${n} values; warm passes ${runs.map((x) => x.toFixed(0)).join(' / ')} ms; best ${(best * 1000 / all.length).toFixed(0)} µs per resource`);
  t.ok(best / all.length < 5, 'under 5 ms per resource even on a loaded machine');
});
