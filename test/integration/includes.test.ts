import t from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { makeClinician, makePatient, unique } from '../helpers/world.js';

interface Entry { fullUrl: string; resource: { resourceType: string; id: string }; search: { mode: string } }
const entries = (body: { entry?: Entry[] }): Entry[] => body.entry ?? [];
const refsOf = (body: { entry?: Entry[] }, mode: string): string[] =>
  entries(body).filter((e) => e.search.mode === mode).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();

async function post(h: TestApp, resource: Record<string, unknown>): Promise<string> {
  const res = await h.fhir({ method: 'POST', url: `/fhir/${String(resource.resourceType)}`, payload: resource });
  if (res.statusCode !== 201) throw new Error(`${String(resource.resourceType)} create failed: ${res.body}`);
  return res.json().id as string;
}

const encounter = (patient: string, doctor: string, start = '2024-03-01T10:00:00Z') => ({
  resourceType: 'Encounter', status: 'finished',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
  subject: { reference: `Patient/${patient}` }, participant: [{ individual: { reference: `Practitioner/${doctor}` } }],
  period: { start },
});
const heartRate = (patient: string, enc: string, value: number, when = '2024-03-01T10:05:00Z') => ({
  resourceType: 'Observation', status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
  subject: { reference: `Patient/${patient}` }, encounter: { reference: `Encounter/${enc}` },
  effectiveDateTime: when, valueQuantity: { value, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
});
const condition = (patient: string, enc: string, doctor: string) => ({
  resourceType: 'Condition', subject: { reference: `Patient/${patient}` }, encounter: { reference: `Encounter/${enc}` },
  recorder: { reference: `Practitioner/${doctor}` }, onsetDateTime: '2024-03-01',
  code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I10', display: 'Essential hypertension' }] },
});

t.test('_include, _revinclude, :iterate, chains and $everything', async (t) => {
  const h = await testApp(t);
  const family = `Incl${unique()}`;
  const patient = await makePatient(h, family);
  const other = await makePatient(h, `Other${unique()}`);
  const doctor = await makeClinician(h, 'doctor', { name: `Dr Chain${unique()}` });
  const enc = await post(h, encounter(patient, doctor));
  const enc2 = await post(h, encounter(patient, doctor, '2024-04-01T10:00:00Z'));
  const otherEnc = await post(h, encounter(other, doctor));
  const obs = await post(h, heartRate(patient, enc, 72));
  const obs2 = await post(h, heartRate(patient, enc2, 80, '2024-04-01T10:05:00Z'));
  await post(h, heartRate(other, otherEnc, 90));
  const cond = await post(h, condition(patient, enc, doctor));

  t.test('_include adds the referenced patient once, with mode include', async (t) => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Observation?patient=${patient}&_include=Observation:patient` });
    t.equal(res.statusCode, 200, res.body);
    t.same(refsOf(res.json(), 'match'), [`Observation/${obs}`, `Observation/${obs2}`].sort());
    t.same(refsOf(res.json(), 'include'), [`Patient/${patient}`]);
  });

  t.test('_include of a reference to Practitioner (users) and Encounter', async (t) => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Encounter?patient=${patient}&_include=Encounter:practitioner&_include=Encounter:patient` });
    t.equal(res.statusCode, 200, res.body);
    t.same(refsOf(res.json(), 'include'), [`Patient/${patient}`, `Practitioner/${doctor}`].sort());
    const cond2 = await h.fhir({ method: 'GET', url: `/fhir/Condition?_id=${cond}&_include=Condition:encounter` });
    t.same(refsOf(cond2.json(), 'include'), [`Encounter/${enc}`]);
  });

  t.test('_revinclude finds what refers to the matches', async (t) => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Patient?_id=${patient}&_revinclude=Encounter:patient&_revinclude=Condition:patient` });
    t.equal(res.statusCode, 200, res.body);
    t.same(refsOf(res.json(), 'match'), [`Patient/${patient}`]);
    t.same(refsOf(res.json(), 'include'), [`Condition/${cond}`, `Encounter/${enc}`, `Encounter/${enc2}`].sort());
  });

  t.test(':iterate follows one more level from what was included', async (t) => {
    const res = await h.fhir({
      method: 'GET',
      url: `/fhir/Patient?_id=${patient}&_revinclude=Encounter:patient&_revinclude:iterate=Observation:encounter&_include:iterate=Encounter:practitioner`,
    });
    t.equal(res.statusCode, 200, res.body);
    t.same(refsOf(res.json(), 'include'), [`Encounter/${enc}`, `Encounter/${enc2}`, `Observation/${obs}`, `Observation/${obs2}`, `Practitioner/${doctor}`].sort());
    const flat = await h.fhir({ method: 'GET', url: `/fhir/Patient?_id=${patient}&_revinclude=Encounter:patient&_revinclude=Observation:encounter` });
    t.notOk(refsOf(flat.json(), 'include').some((r) => r.startsWith('Observation/')), 'without :iterate the second level is not followed');
  });

  t.test('an include of an unknown parameter is reported (lenient) or refused (strict)', async (t) => {
    const lenient = await h.fhir({ method: 'GET', url: `/fhir/Observation?patient=${patient}&_include=Observation:nope` });
    t.equal(lenient.statusCode, 200);
    t.ok(entries(lenient.json()).some((e) => e.search.mode === 'outcome'));
    const strict = await h.fhir({ method: 'GET', url: `/fhir/Observation?patient=${patient}&_include=Observation:nope`, headers: { prefer: 'handling=strict' } });
    t.equal(strict.statusCode, 400);
  });

  t.test('chained parameters search one level through a reference', async (t) => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Observation?patient.family=${family}` });
    t.equal(res.statusCode, 200, res.body);
    t.same(refsOf(res.json(), 'match'), [`Observation/${obs}`, `Observation/${obs2}`].sort());
    const byName = await h.fhir({ method: 'GET', url: `/fhir/Encounter?subject:Patient.family=${family}` });
    t.same(refsOf(byName.json(), 'match'), [`Encounter/${enc}`, `Encounter/${enc2}`].sort());
    const none = await h.fhir({ method: 'GET', url: `/fhir/Observation?patient.family=Nobody${unique()}` });
    t.same(refsOf(none.json(), 'match'), []);
    const deep = await h.fhir({ method: 'GET', url: '/fhir/Observation?patient.general-practitioner.name=x' });
    t.equal(deep.statusCode, 400, 'chains are one level deep');
    const notRef = await h.fhir({ method: 'GET', url: '/fhir/Observation?status.name=x' });
    t.equal(notRef.statusCode, 400);
  });

  t.test('an untyped chain searches every stored type the reference may point at', async (t) => {
    const selfReported = await post(h, { ...heartRate(patient, enc, 66, '2024-05-01T08:00:00Z'), performer: [{ reference: `Patient/${patient}` }] });
    const res = await h.fhir({ method: 'GET', url: `/fhir/Observation?performer.family=${family}` });
    t.equal(res.statusCode, 200, res.body);
    t.same(refsOf(res.json(), 'match'), [`Observation/${selfReported}`], 'performer may be a Patient: its family matches');
    const typed = await h.fhir({ method: 'GET', url: `/fhir/Observation?performer:Practitioner.family=${family}` });
    t.same(refsOf(typed.json(), 'match'), [], ':Type narrows the chain to one type');
    const unknown = await h.fhir({ method: 'GET', url: '/fhir/Observation?performer.nope=x' });
    t.equal(unknown.statusCode, 200, 'lenient: a chain no target type supports is ignored');
    t.ok(entries(unknown.json()).some((e) => e.search.mode === 'outcome'));
    const strict = await h.fhir({ method: 'GET', url: '/fhir/Observation?performer.nope=x', headers: { prefer: 'handling=strict' } });
    t.equal(strict.statusCode, 400);
    await h.fhir({ method: 'DELETE', url: `/fhir/Observation/${selfReported}` });
  });

  t.test('AuditEvent entity includes follow the recorded type', async (t) => {
    await h.fhir({ method: 'GET', url: `/fhir/Encounter/${enc}` });
    const res = await h.fhir({ method: 'GET', url: `/fhir/AuditEvent?entity=Encounter/${enc}&_include=AuditEvent:entity&_count=1` });
    t.equal(res.statusCode, 200, res.body);
    t.equal(refsOf(res.json(), 'match').length, 1);
    t.same(refsOf(res.json(), 'include'), [`Encounter/${enc}`]);
    const byPatient = await h.fhir({ method: 'GET', url: `/fhir/AuditEvent?patient=${enc}` });
    t.same(refsOf(byPatient.json(), 'match'), [], 'an Encounter id is not a Patient entity');
  });

  t.test('a referenced resource cannot be removed (409); once unreferenced it can', async (t) => {
    const lone = await post(h, encounter(patient, doctor, '2024-06-01T10:00:00Z'));
    const ob = await post(h, heartRate(patient, lone, 70, '2024-06-01T10:05:00Z'));
    const refused = await h.fhir({ method: 'DELETE', url: `/fhir/Encounter/${lone}` });
    t.equal(refused.statusCode, 409, refused.body);
    t.match(refused.json().issue[0].diagnostics, `Observation/${ob}`);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Encounter/${lone}` })).statusCode, 200, 'nothing was deleted');
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Observation/${ob}` })).statusCode, 204);
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Encounter/${lone}` })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Encounter/${lone}` })).statusCode, 410);
  });

  t.test('Patient/$everything returns the compartment and the practitioners referenced', async (t) => {
    const res = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything` });
    t.equal(res.statusCode, 200, res.body);
    const matches = refsOf(res.json(), 'match');
    for (const r of [`Patient/${patient}`, `Encounter/${enc}`, `Encounter/${enc2}`, `Observation/${obs}`, `Observation/${obs2}`, `Condition/${cond}`]) t.ok(matches.includes(r), r);
    t.notOk(matches.includes(`Encounter/${otherEnc}`), 'nothing of another patient');
    t.same(refsOf(res.json(), 'include'), [`Practitioner/${doctor}`]);
  });

  t.test('$everything pages with _count and narrows with _type', async (t) => {
    const seen: string[] = [];
    let url: string | undefined = `/fhir/Patient/${patient}/$everything?_count=2`;
    for (let pages = 0; url && pages < 20; pages++) {
      const res = await h.fhir({ method: 'GET', url });
      t.equal(res.statusCode, 200, res.body);
      const page = refsOf(res.json(), 'match');
      t.ok(page.length <= 2);
      seen.push(...page);
      const next = (res.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'next')?.url;
      url = next ? next.replace(/^https?:\/\/[^/]+/, '') : undefined;
    }
    t.equal(new Set(seen).size, seen.length, 'no resource on two pages');
    t.ok(seen.length >= 6);
    const typed = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything?_type=Encounter` });
    t.same(refsOf(typed.json(), 'match'), [`Encounter/${enc}`, `Encounter/${enc2}`].sort());
    const bad = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything?_type=Nope` });
    t.equal(bad.statusCode, 400);
    const missing = await h.fhir({ method: 'GET', url: '/fhir/Patient/no-such-patient/$everything' });
    t.equal(missing.statusCode, 404);
    const spaced = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything?_type=Encounter,%20Patient` });
    t.ok(refsOf(spaced.json(), 'match').includes(`Patient/${patient}`), '_type names are trimmed');
    const later = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything?_since=2099-01-01T00:00:00Z` });
    t.same(refsOf(later.json(), 'match'), [], '_since applies to the patient too');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}/$everything?start=2020` })).statusCode, 400, 'unsupported parameters are refused');
  });

  t.test('$everything paging ends although every page adds audit events about the patient', async (t) => {
    let url: string | undefined = `/fhir/Patient/${patient}/$everything?_count=1&_type=AuditEvent`;
    let pages = 0;
    for (; url && pages < 500; pages++) {
      const res = await h.fhir({ method: 'GET', url });
      t.equal(res.statusCode, 200);
      const next = (res.json().link as { relation: string; url: string }[]).find((l) => l.relation === 'next')?.url;
      url = next ? next.replace(/^https?:\/\/[^/]+/, '') : undefined;
    }
    t.equal(url, undefined, `paging ended after ${pages} pages`);
  });
});
