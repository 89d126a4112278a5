import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makePatient, rewriteReferences, unique } from '../helpers/world.js';
import { CoverageDefinition } from '../../src/fhir/resources/Coverage.js';
import { coverageToRow } from '../../src/mappers/coverage-mapper.js';
import { FhirError } from '../../src/fhir/outcome.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('Coverage over insurance', async (t) => {
  const h = await testApp(t);
  const coverage = (patient: string, extra: J = {}): J => ({
    resourceType: 'Coverage', status: 'active', identifier: [{ system: 'urn:hms:policy', value: `POL-${unique()}` }],
    beneficiary: { reference: `Patient/${patient}` }, payor: [{ display: `Insurer ${unique()}` }], relationship: { coding: [{ code: 'self' }] },
    period: { start: '2024-01-01', end: '2024-12-31' }, order: 1, ...extra,
  });
  const create = (body: J) => h.fhir({ method: 'POST', url: '/fhir/Coverage', payload: body });
  const ids = (bundle: J): string[] => (bundle.entry ?? []).filter((e: J) => e.search?.mode !== 'outcome').map((e: J) => e.resource.id).sort();
  const search = async (qs: string) => { const r = await h.fhir({ method: 'GET', url: `/fhir/Coverage?${qs}` }); t.equal(r.statusCode, 200, qs); return r.json() as J; };
  const rows = async (patient: string) => (await h.db('insurance').where({ patient_id: patient })).length;

  t.test('official examples 7546D and 9876B1 round-trip; SP1234 is refused (its period ends before it could start)', async (t) => {
    for (const { name, resource } of officialExamples('Coverage')) {
      const patient = await makePatient(h);
      const body = rewriteReferences(resource, { Patient: patient });
      const created = await create(body);
      if (name === 'Coverage-SP1234.json') {
        t.equal(created.statusCode, 422, name);
        t.match(created.json().issue[0].diagnostics, /Coverage.period: the end \(2012-03-17\) is before the start/);
        t.equal(await rows(patient), 0, 'nothing written');
        continue;
      }
      t.equal(created.statusCode, 201, `${name}: ${created.body}`);
      const read = await h.fhir({ method: 'GET', url: `/fhir/Coverage/${created.json().id}` });
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body), name);
    }
    const patient = await makePatient(h);
    const sp = rewriteReferences(officialExamples('Coverage').find((e) => e.name === 'Coverage-SP1234.json')!.resource, { Patient: patient }) as J;
    const withStart = { ...sp, period: { start: '2011-03-17', end: '2012-03-17' } };
    const created = await create(withStart);
    t.equal(created.statusCode, 201, 'SP1234 with a period start is accepted');
    t.same(withoutIdAndMeta((await h.fhir({ method: 'GET', url: `/fhir/Coverage/${created.json().id}` })).json()), withoutIdAndMeta(withStart));
  });

  t.test('create, read, vread, update, history, delete (hard: the order is free again)', async (t) => {
    const patient = await makePatient(h);
    const created = await create(coverage(patient));
    t.equal(created.statusCode, 201, created.body);
    const { id } = created.json();
    const url = `/fhir/Coverage/${id}`;
    const row = await h.db('insurance').where({ id }).first();
    t.match(row, { patient_id: patient, coverage_type: 'primary', relationship_to_patient: 'self', policy_holder_name: 'self', effective_date: '2024-01-01', status: 'active' });
    const changed = { ...created.json(), status: 'cancelled', costToBeneficiary: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-copay-type', code: 'copay' }] }, valueMoney: { value: 25, currency: 'USD' } }] };
    const upd = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: changed });
    t.equal(upd.statusCode, 200, upd.body);
    t.match(await h.db('insurance').where({ id }).first(), { status: 'inactive', version_id: 2 });
    t.equal(Number((await h.db('insurance').where({ id }).first()).copay_amount), 25);
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().status, 'active');
    t.same((await h.fhir({ method: 'GET', url: `${url}/_history` })).json().entry.map((e: J) => e.request.method), ['PUT', 'POST']);
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    t.equal(await rows(patient), 0, 'the row is gone');
    t.equal((await create(coverage(patient))).statusCode, 201, 'a new primary coverage is accepted');
  });

  t.test('a natively inserted row reads as a whole Coverage', async (t) => {
    const patient = await makePatient(h);
    const id = randomUUID();
    await h.db('insurance').insert({
      id, patient_id: patient, insurance_company: 'Blue Shield', policy_number: `NAT-${unique()}`, group_number: 'G-7', policy_holder_name: 'John Smith',
      relationship_to_patient: 'spouse', coverage_type: 'secondary', effective_date: '2023-01-01', expiration_date: '2023-12-31', copay_amount: 25,
      deductible_amount: 1000, deductible_met: 250, status: 'expired', pre_auth_required: true, version_id: 1, created_at: '2023-01-01 00:00:00', updated_at: '2023-01-01 00:00:00',
    });
    const res = await h.fhir({ method: 'GET', url: `/fhir/Coverage/${id}` });
    t.equal(res.statusCode, 200, res.body);
    const c = res.json();
    t.match(c, { status: 'cancelled', order: 2, beneficiary: { reference: `Patient/${patient}` }, payor: [{ display: 'Blue Shield' }], policyHolder: { display: 'John Smith' } });
    t.equal(c.relationship.coding[0].code, 'spouse');
    t.same(c.period, { start: '2023-01-01', end: '2023-12-31' });
    t.same(c.costToBeneficiary.map((x: J) => [x.type.coding[0].code, x.valueMoney.value]), [['copay', 25], ['deductible', 1000]]);
    t.equal(c.class[0].value, 'G-7');
    // written back unchanged through the API, the row keeps its values
    const put = await h.fhir({ method: 'PUT', url: `/fhir/Coverage/${id}`, payload: c });
    t.equal(put.statusCode, 200, put.body);
    t.match(await h.db('insurance').where({ id }).first(), { status: 'expired', coverage_type: 'secondary', relationship_to_patient: 'spouse', policy_holder_name: 'John Smith' });
  });

  t.test('search parameters', async (t) => {
    const patient = await makePatient(h);
    const type = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EHCPOL' }] };
    // the payor is a stored Organization (generic store): a reference to one that does not exist is refused
    await h.fhir({ method: 'PUT', url: '/fhir/Organization/ins-a', payload: { resourceType: 'Organization', id: 'ins-a', name: 'A Insurance' } });
    const a = (await create(coverage(patient, { type, payor: [{ reference: 'Organization/ins-a', display: 'A Insurance' }] }))).json();
    const b = (await create(coverage(patient, { order: 2, status: 'cancelled', subscriber: { reference: `Patient/${patient}` } }))).json();
    const p = `patient=${patient}`;
    t.same(ids(await search(p)), [a.id, b.id].sort());
    t.same(ids(await search(`beneficiary=Patient/${patient}`)), [a.id, b.id].sort());
    t.same(ids(await search(`identifier=${a.identifier[0].value}`)), [a.id]);
    t.same(ids(await search(`identifier=urn:hms:policy|${b.identifier[0].value}`)), [b.id]);
    t.same(ids(await search(`${p}&payor=Organization/ins-a`)), [a.id]);
    t.same(ids(await search(`${p}&subscriber=Patient/${patient}`)), [b.id]);
    t.same(ids(await search(`${p}&status=active`)), [a.id]);
    t.same(ids(await search(`${p}&status=cancelled`)), [b.id]);
    t.same(ids(await search(`${p}&type=http://terminology.hl7.org/CodeSystem/v3-ActCode|EHCPOL`)), [a.id]);
    t.same(ids(await search(`${p}&type=PUBLICPOL`)), []);
    t.same(ids(await search(`patient.family=NoSuchFamily${unique()}`)), []);
  });

  t.test('business rules refuse and write nothing', async (t) => {
    const patient = await makePatient(h);
    const refuse = async (body: J, status: number, pattern: RegExp) => {
      const before = await rows(patient);
      const res = await create(body);
      t.equal(res.statusCode, status, res.body);
      t.match(res.json().issue[0].diagnostics, pattern);
      t.equal(await rows(patient), before, 'nothing written');
    };
    await refuse(coverage(patient, { period: { start: '2024-05-01', end: '2024-04-30' } }), 422, /end .* is before the start/);
    await refuse(coverage(patient, { order: 4 }), 422, /order 4 is not supported/);
    await refuse(coverage(patient, { relationship: { coding: [{ code: 'child' }] } }), 422, /policy holder needs a name/);
    await refuse(coverage(patient, { payor: undefined }), 400, /payor/); // required by the R4 schema
    await refuse(coverage(patient, { payor: [{ extension: [{ url: 'urn:x', valueString: 'x' }] }] }), 422, /payor needs a display/);
    await refuse(coverage(patient, { identifier: undefined }), 422, /policy number/);
    await refuse(coverage(patient, { beneficiary: { reference: 'RelatedPerson/x' } }), 422, /must refer to a Patient/);
    await refuse(coverage(randomUUID()), 422, /does not exist/);
    const primary = (await create(coverage(patient))).json();
    await refuse(coverage(patient), 409, /already has a primary coverage/);
    const secondary = (await create(coverage(patient, { order: 2 }))).json();
    const clash = await h.fhir({ method: 'PUT', url: `/fhir/Coverage/${secondary.id}`, payload: { ...secondary, order: 1 } });
    t.equal(clash.statusCode, 409, 'an update onto a taken order');
    const same = await h.fhir({ method: 'PUT', url: `/fhir/Coverage/${primary.id}`, payload: { ...primary, network: 'N1' } });
    t.equal(same.statusCode, 200, 'a coverage keeps its own order on update');
  });

  t.test('the unique key backstop answers 409, also for concurrent writes', async (t) => {
    const patient = await makePatient(h);
    const results = await Promise.all([1, 2, 3].map(() => create(coverage(patient, { order: 3 }))));
    t.same(results.map((r) => r.statusCode).sort(), [201, 409, 409]);
    t.equal(await rows(patient), 1);
    // the storage hook itself, when the check before it was passed (a race): 409, not a database error
    const row = { ...coverageToRow(coverage(patient, { order: 3 }) as never, { now: '2024-01-01 00:00:00' }), id: randomUUID(), version_id: 1 };
    const err = await h.db.transaction((trx) => CoverageDefinition.storage!.insertRow!(trx, row.id, row)).catch((e: unknown) => e);
    t.ok(err instanceof FhirError, String(err));
    t.equal((err as FhirError).status, 409);
  });

  t.test('Patient/$everything of the policy holder, subscriber or payor includes the coverage (R4 Patient compartment)', async (t) => {
    const beneficiary = await makePatient(h);
    const holder = await makePatient(h);
    const created = await create(coverage(beneficiary, {
      policyHolder: { reference: `Patient/${holder}`, display: 'Holder' }, subscriber: { reference: `Patient/${holder}` },
      relationship: { coding: [{ code: 'child' }] },
    }));
    t.equal(created.statusCode, 201, created.body);
    const covered = async (patient: string) => {
      const res = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything?_type=Coverage` });
      t.equal(res.statusCode, 200, res.body);
      return ids(res.json()).includes(created.json().id);
    };
    t.ok(await covered(beneficiary), 'the beneficiary');
    t.ok(await covered(holder), 'the policy holder');
    t.notOk(await covered(await makePatient(h)), 'another patient');
  });
});
