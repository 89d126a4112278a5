import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';

/** Each run tags its patients with its own identifier system, so searches see only them. */
const run = `urn:hms:search:${randomUUID()}`;
const scope = `identifier=${encodeURIComponent(run + '|')}`;

interface P { key: string; body: Record<string, unknown> }
const people: P[] = [
  { key: 'chalmers', body: { name: [{ use: 'official', family: 'Chalmers', given: ['Peter', 'James'] }, { use: 'usual', given: ['Jim'] }], gender: 'male', birthDate: '1974-12-25', telecom: [{ system: 'phone', value: '555-0101' }, { system: 'email', value: 'peter@example.org' }], address: [{ line: ['534 Erewhon St'], city: 'PleasantVille', state: 'Vic', postalCode: '3999' }], active: true } },
  { key: 'muller', body: { name: [{ family: 'Müller', given: ['Zoë'] }], gender: 'female', birthDate: '1990-02', telecom: [{ system: 'email', value: 'zoe@example.org' }], address: [{ city: 'Berlin', postalCode: '10115' }], active: true } },
  { key: 'chen', body: { name: [{ family: 'Chen', given: ['Li'] }], gender: 'female', birthDate: '2001-07-04', telecom: [{ system: 'fax', value: '555-0199' }], active: false } },
  { key: 'okafor', body: { name: [{ family: 'Okafor', given: ['Chidi'] }], gender: 'other', birthDate: '1955-01-01', address: [{ city: 'Lagos' }] } },
  { key: 'nobirth', body: { name: [{ family: 'Anonymous' }] } },
];

type Bundle = { total?: number; entry?: { resource: { id: string; resourceType: string; name?: { family?: string }[]; issue?: unknown[] }; search: { mode: string } }[]; link: { relation: string; url: string }[] };

t.test('Patient search', async (t) => {
  const h = await testApp(t);
  const ids: Record<string, string> = {};
  for (const p of people) {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', identifier: [{ system: run, value: p.key }], ...p.body } });
    t.equal(res.statusCode, 201, res.body);
    ids[p.key] = res.json().id;
  }
  const search = async (q: string, headers: Record<string, string> = {}): Promise<Bundle> => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?${scope}&${q}`, headers });
    t.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const keys = (b: Bundle): string[] => (b.entry ?? []).filter((e) => e.search.mode === 'match').map((e) => Object.keys(ids).find((k) => ids[k] === e.resource.id)!).sort();
  const expectKeys = async (q: string, expected: string[]) => t.same(keys(await search(q)), [...expected].sort(), q);

  t.test('identifier by system|value, |value and value', async () => {
    await expectKeys(`identifier=${encodeURIComponent(run + '|chen')}`, ['chen']);
    await expectKeys('_count=100', Object.keys(ids));
    const byValue = (await h.fhir({ method: 'GET', url: `/fhir/Patient?identifier=okafor&${scope}` })).json();
    t.same(keys(byValue), ['okafor']);
    await expectKeys('identifier=%7Cchen', []);
  });

  t.test('name, family and given: starts-with, case- and accent-insensitive', async () => {
    await expectKeys('family=chal', ['chalmers']);
    await expectKeys('family=MULLER', ['muller']);
    await expectKeys('given=zoe', ['muller']);
    await expectKeys('name=jim', ['chalmers']);
    await expectKeys('name=ch', ['chalmers', 'chen', 'okafor']);
    await expectKeys('family=halm', []);
  });

  t.test(':exact and :contains', async () => {
    await expectKeys('family:exact=Müller', ['muller']);
    await expectKeys('family:exact=müller', []);
    await expectKeys('family:exact=Chal', []);
    await expectKeys('family:contains=halm', ['chalmers']);
    await expectKeys('name:contains=IDI', ['okafor']);
  });

  t.test('OR with commas, AND with repeats', async () => {
    await expectKeys('family=chen,okafor', ['chen', 'okafor']);
    await expectKeys('name=ch&gender=female', ['chen']);
  });

  t.test('birthdate with every prefix and partial dates', async () => {
    await expectKeys('birthdate=1974', ['chalmers']);
    await expectKeys('birthdate=1974-12', ['chalmers']);
    await expectKeys('birthdate=1974-12-25', ['chalmers']);
    await expectKeys('birthdate=eq1990-02', ['muller']);
    await expectKeys('birthdate=ne1974-12-25', ['chen', 'muller', 'okafor']);
    await expectKeys('birthdate=gt1990', ['chen']);
    await expectKeys('birthdate=ge1990', ['chen', 'muller']);
    await expectKeys('birthdate=lt1974-12-25', ['okafor']);
    await expectKeys('birthdate=le1974-12-25', ['chalmers', 'okafor']);
    await expectKeys('birthdate=sa2000', ['chen']);
    await expectKeys('birthdate=eb1960', ['okafor']);
    await expectKeys('birthdate=ap1955-01-01', ['okafor']);
    await expectKeys('birthdate=ge1970&birthdate=lt1995', ['chalmers', 'muller']);
    await expectKeys('birthdate:missing=true', ['nobirth']);
    await expectKeys('birthdate:missing=false', ['chalmers', 'chen', 'muller', 'okafor']);
  });

  t.test('date edge cases: OR with the unknown-birth-date sentinel, instants on a DATE column, years past 9999', async () => {
    await expectKeys('birthdate=lt1900,gt2100', []);
    await expectKeys('birthdate=ge1974-12-25T10:00Z', ['chalmers', 'chen', 'muller']);
    await expectKeys('birthdate=eq1974-12-25T10:00Z', []);
    await expectKeys('birthdate=le1974-12-25T10:00Z', ['chalmers', 'okafor']);
    await expectKeys('_lastUpdated=gt9999', []);
    await expectKeys('_lastUpdated=lt9999', Object.keys(ids));
    await expectKeys('birthdate=gt0050', ['chalmers', 'chen', 'muller', 'okafor']);
  });

  t.test('birth dates before 1901 and around year 1 are searchable', async () => {
    const system = `urn:hms:old:${randomUUID()}`;
    const made: string[] = [];
    for (const birthDate of ['1899-06-15', '1900-03-01']) {
      const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', identifier: [{ system, value: birthDate }], name: [{ family: 'Victorian' }], birthDate } });
      t.equal(res.statusCode, 201, res.body);
      made.push(res.json().id);
    }
    const found = async (q: string): Promise<string[]> => {
      const b = (await h.fhir({ method: 'GET', url: `/fhir/Patient?identifier=${encodeURIComponent(system + '|')}&${q}` })).json() as Bundle;
      return (b.entry ?? []).map((e) => e.resource.id).sort();
    };
    t.same(await found('birthdate=1899'), [made[0]]);
    t.same(await found('birthdate=1899-06-15'), [made[0]]);
    t.same(await found('birthdate=eq1900-03-01'), [made[1]]);
    t.same(await found('birthdate=ne1900-03-01'), [made[0]]);
    t.same(await found('birthdate=gt1899-12-31'), [made[1]]);
    t.same(await found('birthdate=lt1850'), []);
    t.same(await found('birthdate=gt0001'), made.slice().sort());
  });

  t.test('a time-zone offset outside +-14:00 is a 400, not a match-all', async () => {
    for (const q of ['birthdate=2020-01-01T00:00%2B99:99', '_lastUpdated=ne2020-01-01T00:00%2B24:00']) {
      const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?${scope}&${q}` });
      t.equal(res.statusCode, 400, q);
    }
    await expectKeys('_lastUpdated=gt2020-01-01T00:00%2B14:00', Object.keys(ids));
  });

  t.test('ids match case-sensitively', async () => {
    await expectKeys(`_id=${ids.chen!.toUpperCase()}`, []);
  });

  t.test('an unknown modifier is a 400 even in lenient mode; :[type] narrows a reference', async () => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?${scope}&family:text=zzz` });
    t.equal(res.statusCode, 400);
    t.equal(res.json().resourceType, 'OperationOutcome');
  });

  t.test('a malformed date is a 400, and its refusal is audited without the value', async () => {
    const marker = `1974-13-${randomUUID().slice(0, 4)}`;
    const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?birthdate=${marker}` });
    t.equal(res.statusCode, 400);
    t.equal(res.json().resourceType, 'OperationOutcome');
    await h.app.auditLog.settle();
    const rows = await h.db('security_logs').where({ action: 'refused', user_id: h.userId });
    t.ok(rows.length > 0, 'the refusal is logged');
    t.notOk(JSON.stringify(rows).includes(marker), 'without the search value');
  });

  t.test('gender as code or system|code, :not and :missing', async () => {
    await expectKeys('gender=female', ['chen', 'muller']);
    await expectKeys('gender=http://hl7.org/fhir/administrative-gender|male', ['chalmers']);
    await expectKeys('gender=http://other.example|male', []);
    await expectKeys('gender:not=female', ['chalmers', 'nobirth', 'okafor']);
    await expectKeys('gender:missing=true', ['nobirth']);
  });

  t.test('phone, email and telecom', async () => {
    await expectKeys('phone=555-0101', ['chalmers']);
    await expectKeys('email=zoe@example.org', ['muller']);
    await expectKeys('telecom=fax|555-0199', ['chen']);
    await expectKeys('telecom=555-0199', ['chen']);
    await expectKeys('phone=555-0199', []);
    await expectKeys('email:missing=true', ['chen', 'nobirth', 'okafor']);
    await expectKeys('phone:missing=false', ['chalmers']);
  });

  t.test('address and its parts', async () => {
    await expectKeys('address=534', ['chalmers']);
    await expectKeys('address=erewhon', []);
    await expectKeys('address:contains=erewhon', ['chalmers']);
    await expectKeys('address=berlin', ['muller']);
    await expectKeys('address-city=lagos', ['okafor']);
    await expectKeys('address-state=vic', ['chalmers']);
    await expectKeys('address-postalcode=101', ['muller']);
    await expectKeys('address-city:missing=true', ['chen', 'nobirth']);
  });

  t.test('active', async () => {
    await expectKeys('active=false', ['chen']);
    await expectKeys('active=true', ['chalmers', 'muller', 'nobirth', 'okafor']);
  });

  t.test('general-practitioner by id and Type/id', async () => {
    const doctorId = randomUUID();
    await h.db('users').insert({ id: doctorId, email: `dr-${doctorId}@example.org`, password_hash: 'x', name: 'Dr Who', role: 'doctor' });
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', identifier: [{ system: run, value: 'gp' }], name: [{ family: 'Patel' }], birthDate: '1970-01-01', generalPractitioner: [{ reference: `Practitioner/${doctorId}` }] } });
    t.equal(res.statusCode, 201, res.body);
    ids.gp = res.json().id;
    await expectKeys(`general-practitioner=${doctorId}`, ['gp']);
    await expectKeys(`general-practitioner=Practitioner/${doctorId}`, ['gp']);
    await expectKeys(`general-practitioner:missing=false`, ['gp']);
    await expectKeys(`general-practitioner:Practitioner=${doctorId}`, ['gp']);
    await expectKeys(`general-practitioner:Organization=${doctorId}`, []);
    const row = await h.db('patients').where({ id: ids.gp }).first();
    t.equal(row.primary_doctor_id, doctorId, 'the first Practitioner lands in primary_doctor_id');
  });

  t.test('_id and _lastUpdated', async () => {
    await expectKeys(`_id=${ids.chen},${ids.okafor}`, ['chen', 'okafor']);
    await expectKeys('_lastUpdated=gt2000-01-01', Object.keys(ids));
    await expectKeys('_lastUpdated=lt2000-01-01', []);
  });

  t.test('_sort on several keys, descending with -', async () => {
    const b = await search('_sort=-birthdate,family&birthdate:missing=false');
    t.same(b.entry!.map((e) => e.resource.name![0]!.family), ['Chen', 'Müller', 'Chalmers', 'Patel', 'Okafor']);
    const g = await search('_sort=gender,family&_count=100');
    // column values sort: female < male < other < prefer_not_to_say (gender absent), then family
    t.same(g.entry!.map((e) => e.resource.name![0]!.family), ['Chen', 'Müller', 'Chalmers', 'Okafor', 'Anonymous', 'Patel']);
  });

  t.test('_total, _summary=count, _count=0', async () => {
    const all = await search('_total=accurate&_count=2');
    t.equal(all.total, 6);
    t.equal(all.entry!.length, 2);
    const none = await search('_total=none&_count=2');
    t.equal(none.total, undefined);
    const count = await search('_summary=count');
    t.equal(count.total, 6);
    t.equal(count.entry, undefined);
    const zero = await search('_count=0&_total=accurate');
    t.equal(zero.total, 6);
    t.equal(zero.entry, undefined);
    t.equal((await search('_count=0')).total, undefined, '_count=0 alone does not claim a total of 0');
  });

  t.test('_summary=true and _elements mark results SUBSETTED', async () => {
    const b = await search(`_id=${ids.chalmers}&_elements=gender`);
    const r = b.entry![0]!.resource as Record<string, unknown>;
    t.same(Object.keys(r).sort(), ['gender', 'id', 'meta', 'resourceType']);
    t.match(JSON.stringify(r.meta), /SUBSETTED/);
    const s = await search(`_id=${ids.chalmers}&_summary=true`);
    t.ok((s.entry![0]!.resource as Record<string, unknown>).name);
  });

  t.test('keyset paging: next and previous links walk the set without gaps or repeats, even while rows are inserted', async () => {
    const seen: string[] = [];
    let b = await search('_count=2&_sort=family');
    seen.push(...b.entry!.map((e) => e.resource.id));
    // an insert that sorts before the cursor must not shift later pages
    const early = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', identifier: [{ system: run, value: 'aaa' }], name: [{ family: 'Aaron' }], birthDate: '1999-09-09' } });
    t.equal(early.statusCode, 201);
    const pages: Bundle[] = [b];
    for (;;) {
      const next = b.link.find((l) => l.relation === 'next');
      if (!next) break;
      const u = new URL(next.url);
      b = (await h.fhir({ method: 'GET', url: u.pathname + u.search })).json();
      pages.push(b);
      seen.push(...(b.entry ?? []).map((e) => e.resource.id));
    }
    t.equal(new Set(seen).size, seen.length, 'no repeats');
    t.same(seen.slice().sort(), Object.values(ids).sort(), 'every original patient once; the early insert is not pushed in');
    const last = pages[pages.length - 1]!;
    const prev = last.link.find((l) => l.relation === 'previous');
    t.ok(prev, 'a later page links back');
    const u = new URL(prev!.url);
    const back = (await h.fhir({ method: 'GET', url: u.pathname + u.search })).json() as Bundle;
    const secondLast = pages[pages.length - 2]!;
    t.same(back.entry!.map((e) => e.resource.id), secondLast.entry!.map((e) => e.resource.id), 'previous gives the page before');
    ids.aaa = early.json().id;
  });

  t.test('a tampered cursor is a 400', async () => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?_cursor=bm9wZQ` });
    t.equal(res.statusCode, 400);
    const objectValues = Buffer.from(JSON.stringify(['n', [1, 2]])).toString('base64url');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient?_cursor=${objectValues}` })).statusCode, 400);
  });

  t.test('unknown parameters: ignored with a warning entry, or 400 with Prefer: handling=strict', async () => {
    const lenient = await search('foo=bar&family=chen');
    t.same(keys(lenient), ['chen']);
    const outcome = lenient.entry!.find((e) => e.search.mode === 'outcome');
    t.ok(outcome);
    t.match(JSON.stringify(outcome!.resource), /foo/);
    const strict = await h.fhir({ method: 'GET', url: `/fhir/Patient?${scope}&foo=bar`, headers: { prefer: 'handling=strict' } });
    t.equal(strict.statusCode, 400);
    t.match(strict.json().issue[0].diagnostics, /foo/);
  });

  t.test('POST _search with a form body gives the same results as GET', async () => {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient/_search', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `${scope}&family=chen` });
    t.equal(res.statusCode, 200, res.body);
    t.same(keys(res.json()), ['chen']);
    t.match(res.json().link[0].url, /family=chen/);
    const json = await h.fhir({ method: 'POST', url: '/fhir/Patient/_search', payload: { _sort: 1 } });
    t.equal(json.statusCode, 415, 'a JSON body is not a parameter list');
  });

  t.test('searchset Bundles carry fullUrl and search.mode', async () => {
    const b = await search('family=chen');
    t.equal((b as unknown as { type: string }).type, 'searchset');
    t.match(b.entry![0], { fullUrl: new RegExp(`/fhir/Patient/${ids.chen}$`), search: { mode: 'match' } });
  });

  t.test('a search writes one security_logs row with the returned ids', async () => {
    await search('family=okafor');
    await h.app.auditLog.settle();
    const rows = await h.db('security_logs').where({ action: 'search', resource_type: 'Patient', user_id: h.userId }).orderBy('timestamp', 'desc').limit(50);
    t.ok(rows.some((r: { additional_data: string | object }) => JSON.stringify(r.additional_data).includes(ids.okafor!)));
  });
});
