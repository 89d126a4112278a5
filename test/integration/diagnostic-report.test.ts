import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences } from '../helpers/world.js';

t.test('DiagnosticReport', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);
  const obs = await h.fhir({
    method: 'POST', url: '/fhir/Observation',
    payload: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] }, subject: { reference: `Patient/${patient}` }, valueQuantity: { value: 13, code: 'g/dL', system: 'http://unitsofmeasure.org' } },
  });
  t.equal(obs.statusCode, 201, obs.body);
  const targets = { Patient: patient, Practitioner: doctor, Observation: obs.json().id };
  const created: string[] = [];
  for (const { name, resource } of officialExamples('DiagnosticReport')) {
    t.test(`official example ${name} round-trips`, async (t) => {
      const body = rewriteReferences(resource, targets) as Record<string, unknown>;
      delete body.encounter;
      const res = await h.fhir({ method: 'POST', url: '/fhir/DiagnosticReport', payload: body });
      t.equal(res.statusCode, 201, res.body);
      created.push(res.json().id);
      const read = await h.fhir({ method: 'GET', url: `/fhir/DiagnosticReport/${res.json().id}` });
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body));
    });
  }
  t.test('search, update, delete', async (t) => {
    const ids = async (q: string) => ((await h.fhir({ method: 'GET', url: `/fhir/DiagnosticReport?${q}` })).json().entry ?? []).map((e: { resource: { id: string } }) => e.resource.id).sort();
    t.same(await ids(`patient=${patient}`), [...created].sort());
    t.equal((await ids(`patient=${patient}&result=Observation/${targets.Observation}`)).length, 1);
    t.equal((await ids(`patient=${patient}&code=http://loinc.org|38269-7`)).length, 1);
    t.equal((await ids(`subject=Patient/${patient}&status=final`)).length >= 1, true);
    const finals = await ids(`subject=Patient/${patient}&status=final`);
    t.same(await ids(`subject=Patient/${patient}&status=http://hl7.org/fhir/diagnostic-report-status|final`), finals, 'status with its system');
    t.same(await ids(`subject=Patient/${patient}&status=http://example.org/other|final`), [], 'another system matches nothing');
    const summary = await h.fhir({ method: 'GET', url: `/fhir/DiagnosticReport?_id=${created[0]!}&_summary=true` });
    t.equal(summary.statusCode, 200, summary.body);
    const brief = summary.json().entry[0].resource;
    t.notOk(brief.result, '_summary=true leaves out result (not isSummary in R4)');
    t.ok(brief.status && brief.code);
    t.equal((await ids(`patient=${patient}&date=ge2000`)).length >= 1, true);
    const id = created[0]!;
    const current = (await h.fhir({ method: 'GET', url: `/fhir/DiagnosticReport/${id}` })).json();
    const upd = await h.fhir({ method: 'PUT', url: `/fhir/DiagnosticReport/${id}`, payload: { ...current, status: 'amended' } });
    t.equal(upd.statusCode, 200, upd.body);
    t.equal((await h.db('diagnostic_reports').where({ id }).first()).status, 'amended');
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/DiagnosticReport/${id}` })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/DiagnosticReport/${id}` })).statusCode, 410);
  });
  t.test('a result that is not a stored Observation is refused with 422', async (t) => {
    const res = await h.fhir({
      method: 'POST', url: '/fhir/DiagnosticReport',
      payload: { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient}` }, result: [{ reference: `Observation/${randomUUID()}` }] },
    });
    t.equal(res.statusCode, 422);
    t.same(res.json().issue[0].expression, ['DiagnosticReport.result[0]']);
  });
});
