/**
 * Type and system history (GET /fhir/{Type}/_history, GET /fhir/_history) over HTTP on the real
 * database: the entries, newest first; _since, _at, _count and keyset paging by the next link;
 * narrowing by access (an assigned doctor sees their patients' versions only, a role without
 * history rights gets 403 and the type is left out of system history); the audit; the refusals;
 * the CapabilityStatement.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { buildWorld, type Principal } from '../helpers/access-world.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('type and system history', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const principal = (name: string): Principal => w.principals.find((p) => p.name === name)!;
  const get = async (url: string, as: Principal | string = h.token): Promise<J> => {
    const res = await w.inject(as, { method: 'GET', url });
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
    return res.json();
  };
  const newPatient = async (): Promise<J> => w.post('Patient', { resourceType: 'Patient', name: [{ family: `Hist${randomUUID().slice(0, 8)}` }], gender: 'female' });
  const keys = (b: J): string[] => (b.entry ?? []).map((e: J) => `${e.fullUrl.split('/fhir/')[1]}@${e.response.etag}`);
  /** Every entry of a history, following next links. */
  const walk = async (url: string, as: Principal | string = h.token): Promise<J[]> => {
    const out: J[] = [];
    let next: string | undefined = url;
    for (let i = 0; next && i < 200; i++) {
      const b = await get(next.replace(/^https?:\/\/[^/]+/, ''), as);
      out.push(...(b.entry ?? []));
      next = b.link.find((l: J) => l.relation === 'next')?.url;
    }
    return out;
  };

  const p = await newPatient();
  const since = encodeURIComponent(p.meta.lastUpdated);
  const p2 = (await h.fhir({ method: 'PUT', url: `/fhir/Patient/${p.id}`, payload: { ...p, gender: 'male' } })).json();
  const gone = await newPatient();
  t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Patient/${gone.id}` })).statusCode, 204);

  t.test('type history: entries newest first, with request and response', async (t) => {
    const b = await get(`/fhir/Patient/_history?_since=${since}&_count=100`);
    t.equal(b.resourceType, 'Bundle');
    t.equal(b.type, 'history');
    t.match(b.link.find((l: J) => l.relation === 'self').url, /\/fhir\/Patient\/_history\?/);
    const k = keys(b);
    t.ok(k.indexOf(`Patient/${p.id}@W/"2"`) < k.indexOf(`Patient/${p.id}@W/"1"`), 'v2 before v1');
    t.ok(k.indexOf(`Patient/${gone.id}@W/"2"`) >= 0 && k.indexOf(`Patient/${gone.id}@W/"2"`) < k.indexOf(`Patient/${gone.id}@W/"1"`));
    const v2 = b.entry.find((e: J) => e.fullUrl.endsWith(`/Patient/${p.id}`) && e.response.etag === 'W/"2"');
    t.same(v2.request, { method: 'PUT', url: `Patient/${p.id}` });
    t.equal(v2.response.status, '200');
    t.equal(v2.resource.gender, 'male');
    t.equal(v2.resource.meta.versionId, '2');
    const v1 = b.entry.find((e: J) => e.fullUrl.endsWith(`/Patient/${p.id}`) && e.response.etag === 'W/"1"');
    t.same(v1.request, { method: 'POST', url: 'Patient' });
    t.equal(v1.response.status, '201');
    t.equal(v1.resource.gender, 'female');
    const del = b.entry.find((e: J) => e.fullUrl.endsWith(`/Patient/${gone.id}`) && e.response.etag === 'W/"2"');
    t.same(del.request, { method: 'DELETE', url: `Patient/${gone.id}` });
    t.equal(del.response.status, '204');
    t.notOk(del.resource, 'a delete carries no resource');
    for (const e of b.entry) t.equal(e.fullUrl.split('/fhir/')[1].split('/')[0], 'Patient');
    const times = b.entry.map((e: J) => e.response.lastModified);
    t.same(times, [...times].sort().reverse(), 'newest first');
  });

  t.test('paging: _count and a keyset next link cover every version once', async (t) => {
    const all = keys(await get(`/fhir/Patient/_history?_since=${since}&_count=100`));
    const first = await get(`/fhir/Patient/_history?_since=${since}&_count=1`);
    t.equal(first.entry.length, 1);
    const next = first.link.find((l: J) => l.relation === 'next').url as string;
    t.match(next, /_cursor=/);
    t.notMatch(next, /offset/i);
    const paged = (await walk(`/fhir/Patient/_history?_since=${since}&_count=1`)).map((e) => `${e.fullUrl.split('/fhir/')[1]}@${e.response.etag}`);
    t.same(paged, all);
    t.equal(new Set(paged).size, paged.length, 'no version twice');
    const capped = await get('/fhir/Patient/_history?_count=100000');
    t.ok(capped.entry.length <= h.config.HMS_MAX_COUNT);
  });

  t.test('_at: the versions current then', async (t) => {
    const b = await get(`/fhir/Patient/_history?_at=${encodeURIComponent(p2.meta.lastUpdated)}&_count=1000`);
    const k = keys(b);
    t.ok(k.includes(`Patient/${p.id}@W/"2"`));
    t.notOk(k.includes(`Patient/${p.id}@W/"1"`), 'v1 was superseded by then');
    t.notOk(k.some((x) => x.startsWith(`Patient/${gone.id}@`)), 'not yet created');
    const early = await get('/fhir/Patient/_history?_at=2001-01-01');
    t.notOk(early.entry, 'nothing existed in 2001');
  });

  t.test('narrowed by access: an assigned doctor sees their patients only, and is audited per patient', async (t) => {
    const doctor = principal('assigned doctor');
    const entries = await walk(`/fhir/Condition/_history?_count=5`, doctor);
    t.ok(entries.some((e) => e.fullUrl.endsWith(`/Condition/${w.of.Condition!.A}`)), 'sees A\'s condition');
    t.notOk(entries.some((e) => e.fullUrl.endsWith(`/Condition/${w.of.Condition!.B}`)), 'not B\'s');
    const patients = await walk('/fhir/Patient/_history?_count=50', doctor);
    t.ok(patients.some((e) => e.fullUrl.endsWith(`/Patient/${w.A}`)));
    t.notOk(patients.some((e) => e.fullUrl.endsWith(`/Patient/${w.B}`)));
    t.notOk(patients.some((e) => e.fullUrl.endsWith(`/Patient/${p.id}`)), 'nor a patient assigned to nobody');
    const system = await walk('/fhir/_history?_count=50', doctor);
    t.notOk(system.some((e) => e.resource && JSON.stringify(e.resource).includes(`Patient/${w.B}"`)), 'no version of B in system history');
    t.notOk(system.some((e) => e.fullUrl.endsWith(`/Patient/${w.B}`)));
    const rows = await h.db('security_logs').where({ action: 'history', resource_type: 'Condition' }).select('patient_id', 'additional_data');
    t.ok(rows.some((r: J) => r.patient_id === w.A), 'audited under A');
    t.notOk(rows.some((r: J) => r.patient_id === w.B));
  });

  t.test('a role without history rights: 403 at type level, left out of system history', async (t) => {
    const finance = principal('finance');
    const res = await w.inject(finance, { method: 'GET', url: '/fhir/Condition/_history' });
    t.equal(res.statusCode, 403, res.body.slice(0, 200));
    t.equal(res.json().resourceType, 'OperationOutcome');
    const system = await walk('/fhir/_history?_count=50', finance);
    t.ok(system.length > 0);
    t.notOk(system.some((e) => e.fullUrl.includes('/Condition/')), 'no Condition');
  });

  t.test('system history covers every type', async (t) => {
    const entries = await walk('/fhir/_history?_count=50');
    const types = new Set(entries.map((e) => e.fullUrl.split('/fhir/')[1].split('/')[0]));
    t.ok(types.has('Patient') && types.has('Condition') && types.has('CareTeam'), [...types].join(','));
    const times = entries.map((e) => e.response.lastModified);
    t.same(times, [...times].sort().reverse(), 'newest first across types');
    const audit = await h.db('security_logs').where({ action: 'history', resource_type: 'Resource' }).count({ n: '*' }).first();
    t.ok(Number(audit!.n) > 0);
  });

  t.test('refusals', async (t) => {
    for (const q of ['_count=abc', '_since=yesterday', '_cursor=garbage', '_at=never']) {
      const res = await h.fhir({ method: 'GET', url: `/fhir/Patient/_history?${q}` });
      t.equal(res.statusCode, 400, q);
      t.equal(res.json().resourceType, 'OperationOutcome');
    }
    t.equal((await h.fhir({ method: 'GET', url: '/fhir/AuditEvent/_history' })).statusCode < 500, true, 'a type without history-type is no 500');
    const batch = await h.fhir({ method: 'POST', url: '/fhir', payload: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient/_history' } }] } });
    t.ok(batch.statusCode < 500, batch.body.slice(0, 300));
    const entry = batch.statusCode === 200 ? batch.json().entry[0].response.status : String(batch.statusCode);
    t.match(entry, /^4/, 'a batch entry of type history is a 4xx');
    // the id route still reads ids
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${p.id}` })).statusCode, 200);
  });

  t.test('CapabilityStatement', async (t) => {
    const cs = (await h.app.inject({ method: 'GET', url: '/fhir/metadata' })).json();
    const rest = cs.rest[0];
    t.ok(rest.interaction.some((i: J) => i.code === 'history-system'));
    const patient = rest.resource.find((r: J) => r.type === 'Patient');
    t.ok(patient.interaction.some((i: J) => i.code === 'history-type'));
    t.ok(patient.operation.some((o: J) => o.name === 'validate' && o.definition === 'http://hl7.org/fhir/OperationDefinition/Resource-validate'));
    t.ok(patient.operation.some((o: J) => o.name === 'everything'));
    const audit = rest.resource.find((r: J) => r.type === 'AuditEvent');
    t.notOk(audit.interaction.some((i: J) => i.code === 'history-type'));
  });
});
