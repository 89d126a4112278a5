/**
 * Insurers' eligibility checks (docs/eligibility.md): a CoverageEligibilityRequest, by plain
 * create, by $submit or in a transaction Bundle, is stored with the CoverageEligibilityResponse
 * computed from the patient's insurance rows, both audited; finance and insurer clients with the
 * scopes may do it, others are refused; bad input writes nothing.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { makePatient, unique } from '../helpers/world.js';
import { clientToken } from '../helpers/access-world.js';
import { startSession } from '../../src/auth/sessions.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const INSURER_SCOPE = 'system/CoverageEligibilityRequest.c system/CoverageEligibilityResponse.rs system/Coverage.rs system/Patient.rs';

t.test('CoverageEligibilityRequest answered from the insurance table', async (t) => {
  const h = await testApp(t);
  const userToken = async (role: 'finance' | 'nurse' | 'patient') => {
    const id = randomUUID();
    await h.db('users').insert({ id, email: `${role}-${unique()}@test.example.org`, password_hash: '!', name: `${role} ${unique()}`, role });
    return startSession(h.db, id, { ttlSeconds: 3600 });
  };
  const finance = await userToken('finance');
  const nurse = await userToken('nurse');
  const insurer = (await clientToken(h, INSURER_SCOPE, 'insurer')).token;
  const narrow = (await clientToken(h, 'system/Coverage.rs', 'insurer')).token;

  const insurance = async (patient: string, extra: J) => {
    const id = randomUUID();
    await h.db('insurance').insert({
      id, patient_id: patient, insurance_company: `Insurer ${unique()}`, policy_number: `POL-${unique()}`, policy_holder_name: 'self',
      relationship_to_patient: 'self', coverage_type: 'primary', effective_date: '2024-01-01', expiration_date: '2024-12-31',
      copay_amount: 20, deductible_amount: 1000, deductible_met: 100, status: 'active', pre_auth_required: false, version_id: 1,
      created_at: '2024-01-01 00:00:00', updated_at: '2024-01-01 00:00:00', ...extra,
    });
    return id;
  };
  const request = (patient: string | undefined, extra: J = {}): J => ({
    resourceType: 'CoverageEligibilityRequest', status: 'active', purpose: ['validation', 'benefits', 'auth-requirements'],
    ...(patient ? { patient: { reference: `Patient/${patient}` } } : {}), created: '2024-06-01', insurer: { display: 'Any insurer' },
    servicedDate: '2024-06-15', ...extra,
  });
  const count = async (type: string) => Number((await h.db('fhir_resources').where({ resource_type: type }).count({ n: '*' }))[0]!.n);
  const responseOf = async (requestId: string, token?: string) => {
    const r = await h.fhir({ method: 'GET', url: `/fhir/CoverageEligibilityResponse?request=CoverageEligibilityRequest/${requestId}`, ...(token ? { token } : {}) });
    t.equal(r.statusCode, 200, r.body);
    return (r.json().entry ?? []).map((e: J) => e.resource) as J[];
  };
  const benefit = (item: J, code: string) => item.benefit.find((b: J) => b.type.coding[0].code === code);

  // patient with primary + secondary in force on 2024-06-15 and an expired tertiary
  const P = await makePatient(h);
  const primary = await insurance(P, { coverage_type: 'primary', copay_amount: 25, deductible_amount: 1500, deductible_met: 300, pre_auth_required: true });
  const secondary = await insurance(P, { coverage_type: 'secondary', copay_amount: 10, deductible_amount: 500, deductible_met: 500 });
  const expired = await insurance(P, { coverage_type: 'tertiary', effective_date: '2023-01-01', expiration_date: '2023-12-31', status: 'expired' });
  const Q = await makePatient(h); // no coverage

  t.test('plain POST by finance: response computed, stored, ordered, values of the rows', async (t) => {
    const created = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest', token: finance, payload: request(P) });
    t.equal(created.statusCode, 201, created.body);
    const [resp, ...more] = await responseOf(created.json().id, finance);
    t.equal(more.length, 0, 'one response');
    t.match(resp, {
      resourceType: 'CoverageEligibilityResponse', status: 'active', purpose: ['validation', 'benefits', 'auth-requirements'],
      patient: { reference: `Patient/${P}` }, request: { reference: `CoverageEligibilityRequest/${created.json().id}` },
      outcome: 'complete', insurer: { display: 'Any insurer' }, servicedDate: '2024-06-15',
    });
    t.type(resp.created, 'string');
    t.match(resp.disposition, /In force on 2024-06-15/);
    t.same(resp.insurance.map((i: J) => [i.coverage.reference, i.inforce]),
      [[`Coverage/${primary}`, true], [`Coverage/${secondary}`, true], [`Coverage/${expired}`, false]], 'in force first, primary first; the expired one inforce false');
    const [p, s, x] = resp.insurance;
    t.equal(benefit(p.item[0], 'copay').allowedMoney.value, 25);
    t.equal(benefit(p.item[0], 'deductible').allowedMoney.value, 1500);
    t.equal(benefit(p.item[0], 'deductible').usedMoney.value, 300);
    t.equal(p.item[0].authorizationRequired, true);
    t.equal(benefit(s.item[0], 'copay').allowedMoney.value, 10);
    t.equal(benefit(s.item[0], 'deductible').usedMoney.value, 500);
    t.equal(s.item[0].authorizationRequired, false);
    t.notOk(x.item, 'no benefits for a coverage not in force');
    const logs = (await h.db('security_logs').where({ action: 'create', patient_id: P }).whereIn('resource_type', ['CoverageEligibilityRequest', 'CoverageEligibilityResponse'])) as J[];
    t.same(new Set(logs.map((l) => l.resource_type)), new Set(['CoverageEligibilityRequest', 'CoverageEligibilityResponse']), 'both creates audited for the patient');
  });

  t.test('no coverage in force: outcome error with an error entry', async (t) => {
    const none = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest', token: finance, payload: request(Q) });
    t.equal(none.statusCode, 201, none.body);
    const [r1] = await responseOf(none.json().id);
    t.match(r1, { outcome: 'error', error: [{ code: { coding: [{ code: 'no-coverage' }] } }] });
    t.notOk(r1.insurance);
    const before = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest', token: finance, payload: request(P, { servicedDate: '2022-03-01' }) });
    const [r2] = await responseOf(before.json().id);
    t.match(r2, { outcome: 'error', error: [{ code: { coding: [{ code: 'not-in-force' }] } }] });
    t.ok(r2.insurance.every((i: J) => i.inforce === false));
  });

  t.test('$submit by an insurer client answers the response; Parameters form too', async (t) => {
    const res = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest/$submit', token: insurer, payload: request(P) });
    t.equal(res.statusCode, 200, res.body);
    const resp = res.json();
    t.equal(resp.resourceType, 'CoverageEligibilityResponse');
    t.equal(resp.insurance.length, 3);
    const reqId = resp.request.reference.split('/')[1];
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/CoverageEligibilityRequest/${reqId}`, token: finance })).statusCode, 200, 'request stored, finance reads it');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/CoverageEligibilityResponse/${resp.id}`, token: insurer })).statusCode, 200, 'insurer reads the response');
    t.equal((await responseOf(reqId)).length, 1, 'answered once');
    const params = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest/$submit', token: finance, payload: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: request(P) }] } });
    t.equal(params.statusCode, 200, params.body);
    t.equal(params.json().resourceType, 'CoverageEligibilityResponse');
  });

  t.test('refused: a nurse (no financial access) and a client without the scope', async (t) => {
    const before = await count('CoverageEligibilityRequest');
    for (const [who, token] of [['nurse', nurse], ['narrow client', narrow]] as const) {
      const a = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest', token, payload: request(P) });
      t.equal(a.statusCode, 403, `${who} create: ${a.body}`);
      const b = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest/$submit', token, payload: request(P) });
      t.equal(b.statusCode, 403, `${who} $submit: ${b.body}`);
      const c = await h.fhir({ method: 'GET', url: '/fhir/CoverageEligibilityResponse', token });
      t.equal(c.statusCode, 403, `${who} search responses`);
    }
    t.equal(await count('CoverageEligibilityRequest'), before, 'nothing written');
  });

  t.test('inside a transaction Bundle the request gets its response', async (t) => {
    const res = await h.fhir({
      method: 'POST', url: '/fhir', payload: {
        resourceType: 'Bundle', type: 'transaction',
        entry: [{ fullUrl: `urn:uuid:${randomUUID()}`, resource: request(P), request: { method: 'POST', url: 'CoverageEligibilityRequest' } }],
      },
    });
    t.equal(res.statusCode, 200, res.body);
    const id = res.json().entry[0].response.location.split('/')[1];
    const [resp] = await responseOf(id);
    t.equal(resp?.outcome, 'complete');
  });

  t.test('what the server looked up to answer one entry does not open it to the caller in the next', async (t) => {
    // the client may ask but not read coverage: the answer to entry 0 is the server's, which reads P's coverage
    const asker = (await clientToken(h, 'system/CoverageEligibilityRequest.c system/Patient.rs', 'insurer')).token;
    const entries = [
      { fullUrl: `urn:uuid:${randomUUID()}`, resource: request(P), request: { method: 'POST', url: 'CoverageEligibilityRequest' } },
      { fullUrl: `urn:uuid:${randomUUID()}`, resource: request(P, { insurance: [{ coverage: { reference: `Coverage/${primary}` } }] }), request: { method: 'POST', url: 'CoverageEligibilityRequest' } },
    ];
    const alone = await h.fhir({ method: 'POST', url: '/fhir', token: asker, payload: { resourceType: 'Bundle', type: 'transaction', entry: [entries[0]] } });
    t.equal(alone.statusCode, 200, `the first entry alone is allowed: ${alone.body.slice(0, 300)}`);
    const res = await h.fhir({ method: 'POST', url: '/fhir', token: asker, payload: { resourceType: 'Bundle', type: 'transaction', entry: entries } });
    t.equal(res.statusCode, 422, res.body.slice(0, 300));
    t.match(res.json().issue[0].diagnostics, /^Bundle\.entry\[1\].*Coverage/, 'the second entry names a Coverage the client cannot see');
  });

  t.test('bad input: 400/422 and nothing written', async (t) => {
    const reqs = await count('CoverageEligibilityRequest');
    const resps = await count('CoverageEligibilityResponse');
    const cases: [string, J, number[]][] = [
      ['no patient', request(undefined), [400, 422]],
      ['unknown patient', request(randomUUID()), [422]],
      ['bad date', request(P, { servicedDate: '2024-02-30' }), [400, 422]],
      ['item without category or product', request(P, { item: [{ quantity: { value: 1 } }] }), [400, 422]],
    ];
    for (const [name, body, codes] of cases) {
      for (const url of ['/fhir/CoverageEligibilityRequest', '/fhir/CoverageEligibilityRequest/$submit']) {
        const r = await h.fhir({ method: 'POST', url, token: finance, payload: body });
        t.ok(codes.includes(r.statusCode), `${name} ${url}: ${r.statusCode} ${r.body}`);
        t.equal(r.json().resourceType, 'OperationOutcome');
      }
    }
    const wrong = await h.fhir({ method: 'POST', url: '/fhir/CoverageEligibilityRequest/$submit', token: finance, payload: { resourceType: 'Patient' } });
    t.equal(wrong.statusCode, 400);
    t.equal(await count('CoverageEligibilityRequest'), reqs, 'no request written');
    t.equal(await count('CoverageEligibilityResponse'), resps, 'no response written');
  });
});
