/**
 * $validate (POST /fhir/{Type}/$validate, /fhir/{Type}/{id}/$validate) over HTTP on the real
 * database: a valid resource answers an information issue, an invalid one every issue the write
 * would raise, in modes create, update and delete, with the resource itself or a Parameters; the
 * 400s; access as the write's; and nothing written but the one audit row.
 */
import t from 'tap';
import { testApp } from '../helpers/app.js';
import { buildWorld, type Principal } from '../helpers/access-world.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('$validate', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const principal = (name: string): Principal => w.principals.find((p) => p.name === name)!;
  const validate = (url: string, payload: unknown, as: Principal | string = h.token) => (typeof payload === 'string'
    ? h.fhir({ method: 'POST', url, payload, headers: { 'content-type': 'application/fhir+json' }, token: typeof as === 'string' ? as : as.token })
    : w.inject(as, { method: 'POST', url, payload: payload as J }));
  const count = async (table: string, where: J = {}): Promise<number> => Number((await h.db(table).where(where).count({ n: '*' }).first())!.n);
  const counts = async () => ({
    patients: await count('patients'), conditions: await count('medical_conditions'), history: await count('resource_history'),
    logs: await count('security_logs'), validate: await count('security_logs', { action: 'validate' }),
  });
  const patient = { resourceType: 'Patient', name: [{ family: 'Valid', given: ['Ada'] }], gender: 'female', birthDate: '1980-01-02' };

  t.test('a valid create: All OK, nothing written but one validate audit row', async (t) => {
    const before = await counts();
    const res = await validate('/fhir/Patient/$validate', patient);
    t.equal(res.statusCode, 200, res.body.slice(0, 300));
    const oo = res.json();
    t.equal(oo.resourceType, 'OperationOutcome');
    t.equal(oo.issue.length, 1);
    t.equal(oo.issue[0].severity, 'information');
    const after = await counts();
    t.equal(after.patients, before.patients, 'no patient row');
    t.equal(after.history, before.history, 'no resource_history row');
    t.equal(after.validate, before.validate + 1, 'one validate row');
    t.equal(after.logs, before.logs + 1, 'and no other audit row');
    const row = await h.db('security_logs').where({ action: 'validate' }).orderBy('id', 'desc').first();
    t.equal(row.resource_type, 'Patient');
    t.notMatch(String(row.additional_data ?? ''), /Ada|Valid/, 'no PHI in the audit data');
  });

  t.test('an invalid resource: every structure issue, still 200 and nothing written', async (t) => {
    const before = await counts();
    const res = await validate('/fhir/Patient/$validate', { ...patient, gender: 'sometimes', birthDate: 'yesterday', active: 'yes' });
    t.equal(res.statusCode, 200, res.body.slice(0, 300));
    const issues = res.json().issue as J[];
    t.ok(issues.length >= 2, JSON.stringify(issues).slice(0, 400));
    t.ok(issues.every((i) => i.severity === 'error'));
    const after = await counts();
    t.equal(after.patients, before.patients);
    t.equal(after.history, before.history);
  });

  t.test('reference checks run: a Condition of a patient that does not exist', async (t) => {
    const before = await counts();
    const res = await validate('/fhir/Condition/$validate', {
      resourceType: 'Condition', subject: { reference: 'Patient/no-such-patient' }, recorder: { reference: `Practitioner/${w.doctorA}` },
      code: { text: 'asthma' },
    });
    t.equal(res.statusCode, 200, res.body.slice(0, 300));
    t.match(res.json().issue[0].diagnostics, /no-such-patient/);
    const ok = await validate('/fhir/Condition/$validate', {
      resourceType: 'Condition', subject: { reference: `Patient/${w.A}` }, recorder: { reference: `Practitioner/${w.doctorA}` }, code: { text: 'asthma' },
    });
    t.equal(ok.json().issue[0].severity, 'information', ok.body.slice(0, 300));
    t.equal((await counts()).conditions, before.conditions, 'no condition row');
  });

  t.test('Parameters and modes', async (t) => {
    const stored = await w.post('Patient', patient);
    const before = await counts();
    const upd = await validate(`/fhir/Patient/${stored.id}/$validate`, {
      resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { ...patient, gender: 'male' } }, { name: 'mode', valueCode: 'update' }],
    });
    t.equal(upd.statusCode, 200, upd.body.slice(0, 300));
    t.equal(upd.json().issue[0].severity, 'information');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${stored.id}` })).json().gender, 'female', 'not updated');
    const del = await validate(`/fhir/Patient/${stored.id}/$validate?mode=delete`, { resourceType: 'Parameters', parameter: [] });
    t.equal(del.statusCode, 200, del.body.slice(0, 300));
    t.equal(del.json().issue[0].severity, 'information');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${stored.id}` })).statusCode, 200, 'not deleted');
    const missing = await validate('/fhir/Patient/no-such-id/$validate?mode=delete', { resourceType: 'Parameters', parameter: [] });
    t.equal(missing.statusCode, 200);
    t.equal(missing.json().issue[0].code, 'not-found');
    const mismatch = await validate(`/fhir/Patient/${stored.id}/$validate`, { ...patient, id: 'another-id' });
    t.equal(mismatch.statusCode, 200);
    t.equal(mismatch.json().issue[0].severity, 'error');
    const after = await counts();
    t.equal(after.history, before.history, 'no version written');
    t.equal(after.validate - before.validate, 4, 'one audit row per $validate');
    t.equal(after.logs - before.logs, 6, 'and the two reads: nothing from the dry runs');
  });

  t.test('400s', async (t) => {
    const cases: [string, unknown][] = [
      ['/fhir/Patient/$validate', '[1, 2]'],
      ['/fhir/Patient/$validate', { resourceType: 'Observation', status: 'final' }],
      ['/fhir/Patient/$validate?mode=update', patient],
      ['/fhir/Patient/$validate?mode=sideways', patient],
      ['/fhir/Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'create' }] }],
    ];
    for (const [url, body] of cases) {
      const res = await validate(url, body);
      t.equal(res.statusCode, 400, `${url} ${JSON.stringify(body).slice(0, 60)}: ${res.body.slice(0, 200)}`);
      t.equal(res.json().resourceType, 'OperationOutcome');
    }
  });

  t.test('access: the right to the interaction validated', async (t) => {
    const nurse = principal('assigned nurse');
    const res = await validate('/fhir/Condition/$validate', {
      resourceType: 'Condition', subject: { reference: `Patient/${w.A}` }, recorder: { reference: `Practitioner/${w.doctorA}` }, code: { text: 'asthma' },
    }, nurse);
    t.equal(res.statusCode, 403, res.body.slice(0, 300));
    const doctor = principal('assigned doctor');
    const ok = await validate('/fhir/Condition/$validate', {
      resourceType: 'Condition', subject: { reference: `Patient/${w.A}` }, recorder: { reference: `Practitioner/${w.doctorA}` }, code: { text: 'asthma' },
    }, doctor);
    t.equal(ok.statusCode, 200, ok.body.slice(0, 300));
    t.equal(ok.json().issue[0].severity, 'information');
    const outOfReach = await validate('/fhir/Condition/$validate', {
      resourceType: 'Condition', subject: { reference: `Patient/${w.B}` }, recorder: { reference: `Practitioner/${w.doctorA}` }, code: { text: 'asthma' },
    }, doctor);
    t.equal(outOfReach.statusCode, 200);
    t.equal(outOfReach.json().issue[0].severity, 'error', 'B is out of the doctor\'s reach, as for a create');
  });
});
