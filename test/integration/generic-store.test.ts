import t from 'tap';
import { testApp } from '../helpers/app.js';
import { makeClinician, makePatient, OTHER_SERVER, unique } from '../helpers/world.js';
import { resourceDefinition, allResourceDefinitions } from '../../src/fhir/registry.js';
import { r4Definitions } from '../../src/fhir/r4/definitions.js';
import { compileExtractor } from '../../src/fhir/generic/extract.js';

const CVX = 'http://hl7.org/fhir/sid/cvx';

t.test('the generic store', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);
  const immunization = (extra: Record<string, unknown> = {}) => ({
    resourceType: 'Immunization', status: 'completed',
    vaccineCode: { coding: [{ system: CVX, code: '140', display: 'Influenza, seasonal' }] },
    patient: { reference: `Patient/${patient}` }, occurrenceDateTime: '2021-10-04T08:00:00Z', primarySource: true, ...extra,
  });
  const post = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    h.fhir({ method: 'POST', url: `/fhir/${String(body.resourceType)}`, payload: body, headers });
  const rows = async (type: string) => Number(((await h.db('fhir_resources').where({ resource_type: type }).count({ n: '*' }))[0] as { n: number }).n);

  t.test('every R4 type is served, each from exactly one home', async (t) => {
    const types = Object.keys(r4Definitions().types);
    t.equal(types.length, 146);
    // SearchParameter: HMS's own definitions, read-only (/fhir/SearchParameter)
    for (const type of types) if (type !== 'SearchParameter') t.ok(resourceDefinition(type), type);
    const tableBacked = allResourceDefinitions().filter((d) => d.storageKind !== 'generic').map((d) => d.type);
    t.same(tableBacked.sort(), ['Appointment', 'AuditEvent', 'CareTeam', 'Condition', 'Coverage', 'DiagnosticReport', 'Encounter', 'Invoice',
      'MedicationRequest', 'Observation', 'Patient', 'Practitioner', 'PractitionerRole', 'ServiceRequest']);
    for (const type of tableBacked) t.not(resourceDefinition(type)!.table, 'fhir_resources', `${type} keeps its table`);
    const meta = (await h.fhir({ method: 'GET', url: '/fhir/metadata' })).json();
    const doc = (type: string) => meta.rest[0].resource.find((r: { type: string }) => r.type === type).documentation as string;
    t.match(doc('Immunization'), /^\[generic store\]/);
    t.match(doc('Patient'), /^\[table-backed: patients\]/);
    const openapi = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    t.ok(openapi.paths['/fhir/Immunization/{id}']?.get && openapi.paths['/fhir/Claim']?.post, 'OpenAPI documents the generic types');
  });

  t.test('every standard parameter the generic types offer compiles', async (t) => {
    let count = 0;
    for (const def of allResourceDefinitions().filter((d) => d.storageKind === 'generic')) {
      for (const p of r4Definitions().types[def.type]!.searchParams) {
        if (!def.searchParams.some((s) => s.name === p.code)) continue;
        count++;
        if (!compileExtractor(def.type, p)) t.fail(`${def.type}.${p.code}: ${p.expression}`);
      }
    }
    t.ok(count > 1300, `${count} parameters`);
  });

  t.test('create, read, vread, update with If-Match, history, delete and 410', async (t) => {
    const created = await post(immunization());
    t.equal(created.statusCode, 201, created.body);
    const id = created.json().id;
    t.equal(created.json().meta.versionId, '1');
    const url = `/fhir/Immunization/${id}`;
    const read = await h.fhir({ method: 'GET', url });
    t.equal(read.statusCode, 200);
    t.equal(read.headers.etag, 'W/"1"');
    const { id: _i, meta: _m, ...body } = read.json();
    t.same(body, (({ resourceType, ...rest }) => ({ resourceType, ...rest }))(immunization()), 'reads back as written');
    const row = await h.db('fhir_resources').where({ resource_type: 'Immunization', id }).first();
    t.equal(row.patient_id, patient, 'the compartment patient is noted');
    t.equal(await rows('Patient'), 0, 'a seed-backed type is never stored generically');

    const stale = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"9"' }, payload: { ...immunization(), id } });
    t.equal(stale.statusCode, 412);
    const upd = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: { ...immunization({ lotNumber: 'LOT-1' }), id } });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal(upd.json().meta.versionId, '2');
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().lotNumber, undefined);
    t.equal((await h.fhir({ method: 'GET', url: `${url}/_history/2` })).json().lotNumber, 'LOT-1');
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Immunization?_id=${id}` })).json().total, 0, 'a deleted resource is not found');
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.same(hist.entry.map((e: { request: { method: string } }) => e.request.method), ['DELETE', 'PUT', 'POST']);
    const revived = await h.fhir({ method: 'PUT', url, payload: { ...immunization(), id } });
    t.equal(revived.statusCode, 201, 'an update after a delete creates it again');
    t.equal(revived.json().meta.versionId, '4');
  });

  t.test('ids of different types do not collide', async (t) => {
    const id = `same-${unique()}`;
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/Organization/${id}`, payload: { resourceType: 'Organization', id, name: 'One' } })).statusCode, 201);
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/Location/${id}`, payload: { resourceType: 'Location', id, name: 'Two' } })).statusCode, 201);
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/Organization/${id}`, payload: { resourceType: 'Organization', id, name: 'One again' } })).statusCode, 200);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Location/${id}` })).json().name, 'Two');
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Organization/${id}` })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Location/${id}` })).statusCode, 200, 'deleting one type leaves the other');
  });

  t.test('ids are exact: another case is another id, refused where the database cannot hold both', async (t) => {
    const id = `Case${unique()}`;
    t.equal((await h.fhir({ method: 'PUT', url: `/fhir/Organization/${id}`, payload: { resourceType: 'Organization', id, name: 'Upper' } })).statusCode, 201);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Organization/${id.toLowerCase()}` })).statusCode, 404, 'a read is exact');
    const lower = id.toLowerCase();
    const other = await h.fhir({ method: 'PUT', url: `/fhir/Organization/${lower}`, payload: { resourceType: 'Organization', id: lower, name: 'Lower' } });
    // SQLite compares ids exactly; MariaDB's collation (the seed tables' own) cannot hold both
    if (process.env.DATABASE_URL) t.equal(other.statusCode, 409, other.body); else t.equal(other.statusCode, 201);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Organization/${id}` })).json().name, 'Upper', 'the first is untouched');
  });

  t.test('conditional create', async (t) => {
    const identifier = [{ system: 'urn:hms:test', value: unique() }];
    const criteria = `identifier=urn:hms:test|${identifier[0]!.value}`;
    const first = await post(immunization({ identifier }), { 'if-none-exist': criteria });
    t.equal(first.statusCode, 201, first.body);
    const again = await post(immunization({ identifier }), { 'if-none-exist': criteria });
    t.equal(again.statusCode, 200);
    t.equal(again.json().id, first.json().id);
  });

  t.test('references are checked on write', async (t) => {
    const missing = await post(immunization({ patient: { reference: 'Patient/no-such-patient' } }));
    t.equal(missing.statusCode, 422);
    t.match(missing.json().issue[0].expression, ['Immunization.patient']);
    const org = await post(immunization({ manufacturer: { reference: 'Organization/no-such-org' } }));
    t.equal(org.statusCode, 422, 'a reference to a generic type is checked too');
    const elsewhere = await post(immunization({ manufacturer: { reference: `${OTHER_SERVER}/Organization/1` } }));
    t.equal(elsewhere.statusCode, 201, 'a reference to another server stays as given');
    t.equal(elsewhere.json().manufacturer.reference, `${OTHER_SERVER}/Organization/1`);
  });

  t.test('a table-backed resource a generic one refers to is not removed from under it', async (t) => {
    const condition = (await post({ resourceType: 'Condition', subject: { reference: `Patient/${patient}` }, code: { text: 'Asthma' } })).json();
    const proc = (await post({
      resourceType: 'Procedure', status: 'completed', subject: { reference: `Patient/${patient}` }, reasonReference: [{ reference: `Condition/${condition.id}` }],
    })).json();
    const refused = await h.fhir({ method: 'DELETE', url: `/fhir/Condition/${condition.id}` });
    t.equal(refused.statusCode, 409, refused.body);
    t.match(refused.json().issue[0].diagnostics, `Procedure/${proc.id}`);
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Procedure/${proc.id}` })).statusCode, 204);
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Condition/${condition.id}` })).statusCode, 204, 'once the referrer is gone');
  });

  t.test('a seed-backed type never goes to the generic store, whatever the path', async (t) => {
    const wrong = await h.fhir({ method: 'POST', url: '/fhir/Immunization', payload: { resourceType: 'Patient' } });
    t.equal(wrong.statusCode, 400);
    t.equal(await rows('Patient'), 0);
  });

  t.test('canonical references and quantity units are found as written', async (t) => {
    const tag = unique();
    const typed = `http://example.org/fhir/Questionnaire/q${tag}`;
    const untyped = `http://example.org/questionnaires/phq-9-${tag}`;
    const qr = async (questionnaire: string) => (await post({ resourceType: 'QuestionnaireResponse', status: 'completed', questionnaire, subject: { reference: `Patient/${patient}` } })).json().id as string;
    const a = await qr(typed);
    const b = await qr(untyped);
    const ids = async (q: string) => ((await h.fhir({ method: 'GET', url: `/fhir/${q}` })).json().entry ?? []).map((e: { resource: { id: string } }) => e.resource.id);
    t.same(await ids(`QuestionnaireResponse?questionnaire=${encodeURIComponent(typed)}`), [a]);
    t.same(await ids(`QuestionnaireResponse?questionnaire=${encodeURIComponent(untyped)}`), [b]);
    const charge = (await post({
      resourceType: 'ChargeItem', status: 'billable', code: { text: 'Aspirin' }, subject: { reference: `Patient/${patient}` },
      quantity: { value: 2, unit: `tablets${tag}`, system: 'http://unitsofmeasure.org', code: '{tbl}' },
    })).json().id as string;
    t.ok((await ids(`ChargeItem?subject=${patient}&quantity=2||tablets${tag}`)).includes(charge), 'by its unit');
    t.ok((await ids(`ChargeItem?subject=${patient}&quantity=2|http://unitsofmeasure.org|{tbl}`)).includes(charge), 'by its code');
    t.notOk((await ids(`ChargeItem?subject=${patient}&quantity=2|http://unitsofmeasure.org|tablets${tag}`)).includes(charge), 'the unit is no UCUM code');
  });

  t.test('search, includes across both kinds of storage, $everything', async (t) => {
    const code = unique();
    const imm = (await post(immunization({ vaccineCode: { coding: [{ system: CVX, code }] }, performer: [{ actor: { reference: `Practitioner/${doctor}` } }] }))).json();
    const proc = (await post({
      resourceType: 'Procedure', status: 'completed', subject: { reference: `Patient/${patient}` },
      code: { coding: [{ system: 'http://snomed.info/sct', code: '80146002' }] }, performedPeriod: { start: '2020-01-01T10:00:00Z', end: '2020-01-01T11:00:00Z' },
    })).json();
    const byPatient = (await h.fhir({ method: 'GET', url: `/fhir/Immunization?patient=${patient}&vaccine-code=${CVX}|${code}&_include=Immunization:patient&_include=Immunization:performer` })).json();
    t.same(byPatient.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'match').map((e: { resource: { id: string } }) => e.resource.id), [imm.id]);
    const included = byPatient.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'include').map((e: { resource: { resourceType: string; id: string } }) => `${e.resource.resourceType}/${e.resource.id}`).sort();
    t.same(included, [`Patient/${patient}`, `Practitioner/${doctor}`].sort(), 'includes reach the seed tables');
    const rev = (await h.fhir({ method: 'GET', url: `/fhir/Patient?_id=${patient}&_revinclude=Procedure:subject` })).json();
    t.ok(rev.entry.some((e: { resource: { id: string } }) => e.resource.id === proc.id), 'revinclude from a seed type reaches the generic store');
    const chained = (await h.fhir({ method: 'GET', url: `/fhir/Procedure?subject:Patient._id=${patient}` })).json();
    t.ok(chained.entry?.some((e: { resource: { id: string } }) => e.resource.id === proc.id), 'a chain into a seed type');
    const everything = (await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything?_count=500` })).json();
    const ids = everything.entry.map((e: { resource: { resourceType: string; id: string } }) => `${e.resource.resourceType}/${e.resource.id}`);
    t.ok(ids.includes(`Immunization/${imm.id}`) && ids.includes(`Procedure/${proc.id}`), '$everything holds the generic resources');
  });
});
