import t from 'tap';
import { randomUUID } from 'node:crypto';
import { buildApp } from '../../src/api/app.js';
import { testApp } from '../helpers/app.js';

const body = (system: string, value: string) => ({
  resourceType: 'Patient',
  identifier: [{ system, value }],
  name: [{ family: 'Conditional' }],
  birthDate: '1970-01-01',
});

t.test('conditional create (If-None-Exist)', async (t) => {
  const h = await testApp(t);
  // a second app over its own connection pool stands in for a second API process
  const other = await buildApp({ config: h.config, logger: false });
  t.teardown(() => other.close());
  const system = `urn:hms:cond:${randomUUID()}`;

  t.test('creates when nothing matches, then returns the match with 200 and creates nothing', async (t) => {
    const headers = { 'if-none-exist': `identifier=${system}|first` };
    const a = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers, payload: body(system, 'first') });
    t.equal(a.statusCode, 201);
    const b = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers, payload: body(system, 'first') });
    t.equal(b.statusCode, 200);
    t.equal(b.json().id, a.json().id);
  });

  t.test('stays race-free under 20 concurrent identical requests across two app instances', async (t) => {
    const value = `race-${randomUUID()}`;
    const headers = { 'if-none-exist': `identifier=${encodeURIComponent(system)}|${value}`, authorization: `Bearer ${h.token}`, 'content-type': 'application/fhir+json' };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? other : h.app).inject({ method: 'POST', url: '/fhir/Patient', headers, payload: body(system, value) })));
    const statuses = results.map((r) => r.statusCode);
    t.equal(statuses.filter((s) => s === 201).length, 1, `exactly one create: ${statuses.join(',')}`);
    t.equal(statuses.filter((s) => s === 200).length, 19);
    t.equal(new Set(results.map((r) => r.json().id)).size, 1, 'all answers name the same patient');
    const n = await h.db('search_token').where({ resource_type: 'Patient', param: 'identifier', system, code: value }).count({ n: '*' });
    t.equal(Number((n[0] as { n: number }).n), 1, 'one patient stored');
  });

  t.test('answers 412 when the criteria match several patients', async (t) => {
    const value = `dup-${randomUUID()}`;
    for (let i = 0; i < 2; i++) t.equal((await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: body(system, value) })).statusCode, 201);
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'if-none-exist': `identifier=${system}|${value}` }, payload: body(system, value) });
    t.equal(res.statusCode, 412);
    t.equal(res.json().resourceType, 'OperationOutcome');
  });

  t.test('refuses unknown parameters in the criteria with 400 instead of matching everything', async (t) => {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'if-none-exist': 'nonsense=1' }, payload: body(system, 'x') });
    t.equal(res.statusCode, 400);
  });

  t.test('refuses criteria without any search parameter (they would match every patient)', async (t) => {
    for (const criteria of ['identifier=', '_count=1']) {
      const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', headers: { 'if-none-exist': criteria }, payload: body(system, 'x') });
      t.equal(res.statusCode, 400, criteria);
    }
  });

  t.test('accepts the criteria given as a full URL', async (t) => {
    const value = `url-${randomUUID()}`;
    const headers = { 'if-none-exist': `http://example.org/fhir/Patient?identifier=${system}|${value}` };
    t.equal((await h.fhir({ method: 'POST', url: '/fhir/Patient', headers, payload: body(system, value) })).statusCode, 201);
    t.equal((await h.fhir({ method: 'POST', url: '/fhir/Patient', headers, payload: body(system, value) })).statusCode, 200);
  });
});
