/**
 * Search over the generic store's index for the parameter types the seed types search by column:
 * dates (ranges, R4 prefix table), numbers, quantities, uris; :missing, OR and AND, _sort with
 * keyset paging, chains and includes through index-backed references. Over HTTP, values extracted
 * at write time. https://hl7.org/fhir/R4/search.html
 */
import t from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { makePatient, unique } from '../helpers/world.js';

interface Bundle { entry?: { resource: { resourceType: string; id: string }; search: { mode: string } }[]; link?: { relation: string; url: string }[]; total?: number }

const UCUM = 'http://unitsofmeasure.org';
const CURRENCY = 'urn:iso:std:iso:4217';

async function post(h: TestApp, resource: Record<string, unknown>): Promise<string> {
  const res = await h.fhir({ method: 'POST', url: `/fhir/${String(resource.resourceType)}`, payload: resource });
  if (res.statusCode !== 201) throw new Error(`${String(resource.resourceType)} create failed: ${res.body}`);
  return res.json().id as string;
}

async function search(h: TestApp, url: string): Promise<Bundle> {
  const res = await h.fhir({ method: 'GET', url });
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${String(res.statusCode)} ${res.body}`);
  return res.json() as Bundle;
}

const matchesOf = (b: Bundle): string[] => (b.entry ?? []).filter((e) => e.search.mode === 'match').map((e) => e.resource.id);

/** The ids a search matches, as a set (sorted). */
async function found(h: TestApp, url: string): Promise<string[]> {
  return matchesOf(await search(h, url)).sort();
}

/** The ids of every page of a search, following its next links, and then back by its previous links. */
async function pages(h: TestApp, url: string): Promise<{ forward: string[]; backward: string[]; pages: number }> {
  const forward: string[] = [];
  const seen: Bundle[] = [];
  let next: string | undefined = url;
  while (next) {
    const b = await search(h, next);
    seen.push(b);
    forward.push(...matchesOf(b));
    const link = b.link?.find((l) => l.relation === 'next')?.url;
    next = link ? new URL(link).pathname + new URL(link).search : undefined;
    if (seen.length > 20) throw new Error('runaway paging');
  }
  // back from the last page
  const backward: string[] = [];
  let prev = seen[seen.length - 1]!.link?.find((l) => l.relation === 'previous')?.url;
  backward.unshift(...matchesOf(seen[seen.length - 1]!));
  while (prev) {
    const b = await search(h, new URL(prev).pathname + new URL(prev).search);
    backward.unshift(...matchesOf(b));
    prev = b.link?.find((l) => l.relation === 'previous')?.url;
  }
  return { forward, backward, pages: seen.length };
}

t.test('index-backed search over the generic store', async (t) => {
  const h = await testApp(t);

  t.test('dates: the R4 prefixes over ranges, precisions, zones, open Periods, :missing, OR, AND, _sort', async (t) => {
    const patient = await makePatient(h);
    const procedure = (extra: Record<string, unknown>) => post(h, { resourceType: 'Procedure', status: 'completed', subject: { reference: `Patient/${patient}` }, ...extra });
    const p1 = await procedure({ performedDateTime: '2023-05-10T10:30:00Z' }); // [10:30:00, 10:30:01)
    const p2 = await procedure({ performedPeriod: { start: '2023-05-09', end: '2023-05-11' } }); // [May 9, May 12)
    const p3 = await procedure({ performedPeriod: { start: '2023-05-10T08:00:00+02:00' } }); // [May 10 06:00Z, open)
    const p4 = await procedure({ performedDateTime: '2023' }); // the year
    const p5 = await procedure({ performedDateTime: '2023-05' }); // the month
    const p6 = await procedure({}); // none
    const p7 = await procedure({ performedDateTime: '1990-01-01' });
    const q = (date: string) => found(h, `/fhir/Procedure?subject=Patient/${patient}&${date}`);
    const sorted = (ids: string[]) => [...ids].sort();

    t.same(await q('date=2023-05-10'), sorted([p1]), 'eq: only what lies within the day');
    t.same(await q('date=eq2023-05'), sorted([p1, p2, p5]), 'eq month');
    t.same(await q('date=2023'), sorted([p1, p2, p4, p5]), 'eq year: the open Period is in no year');
    t.same(await q('date=ne2023-05-10'), sorted([p2, p3, p4, p5, p7]));
    t.same(await q('date=gt2023-05-10'), sorted([p2, p3, p4, p5]), 'gt: reaches past the day');
    t.same(await q('date=lt2023-05-10'), sorted([p2, p4, p5, p7]), 'lt: starts before the day');
    t.same(await q('date=ge2023-05-10'), sorted([p1, p2, p3, p4, p5]));
    t.same(await q('date=le2023-05-10'), sorted([p1, p2, p4, p5, p7]));
    t.same(await q('date=sa2023-05-09'), sorted([p1, p3]), 'sa: starts after the day ends');
    t.same(await q('date=sa2023-05-10'), []);
    t.same(await q('date=eb2023-05-11'), sorted([p1, p7]), 'eb: ends before the day starts');
    t.same(await q('date=eb2023'), sorted([p7]));
    t.same(await q('date=ap2023-05-10'), sorted([p1, p2, p3, p4, p5]), 'ap: not 1990');
    t.same(await q('date=ap1990-01-01'), sorted([p7]));
    t.same(await q('date=2023-05-10T12:30%2B02:00'), sorted([p1]), 'a minute given with a zone');
    t.same(await q('date=2023-05-10T10:30Z'), sorted([p1]));
    t.same(await q('date=2023-05-10T10:31Z'), []);
    t.same(await q('date=gt2100-01-01'), sorted([p3]), 'an open end reaches past any date');
    t.same(await q('date=lt2023-05-10T06:00Z'), sorted([p2, p4, p5, p7]));
    t.same(await q('date=lt2023-05-10T06:01Z'), sorted([p2, p3, p4, p5, p7]), 'the Period starts at 06:00Z (08:00+02:00)');
    t.same(await q('date:missing=true'), [p6]);
    t.same(await q('date:missing=false'), sorted([p1, p2, p3, p4, p5, p7]));
    t.same(await q('date=2023-05-10,1990'), sorted([p1, p7]), 'values OR');
    t.same(await q('date=ge2023-05-10&date=lt2023-05-10'), sorted([p2, p4, p5]), 'repeated parameters AND');
    t.same(await q('date=ge2023-05-10&date=lt2023-05-10&date=ne2023-05'), [p4], 'three occurrences (grouped)');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Procedure?date=2023-13` })).statusCode, 400, 'no month 13');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Procedure?date:exact=2023` })).statusCode, 400, 'no :exact on dates');

    const asc = await pages(h, `/fhir/Procedure?subject=Patient/${patient}&_sort=date&_count=2`);
    t.same(asc.forward, [p7, p4, p5, p2, p3, p1, p6], 'ascending by the earliest start; no date last');
    t.same(asc.backward, asc.forward, 'and back by the previous links');
    t.equal(asc.pages, 4);
    const desc = await pages(h, `/fhir/Procedure?subject=Patient/${patient}&_sort=-date&_count=3`);
    t.same(desc.forward, [p6, p3, p4, p5, p2, p1, p7], 'descending by the latest end; no date first');
    t.same(desc.backward, desc.forward);
  });

  t.test('sort ties are broken by id, across pages', async (t) => {
    const patient = await makePatient(h);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await post(h, { resourceType: 'Procedure', status: 'completed', subject: { reference: `Patient/${patient}` }, performedDateTime: '2022-02-02' }));
    const other = await post(h, { resourceType: 'Procedure', status: 'completed', subject: { reference: `Patient/${patient}` }, performedDateTime: '2022-02-01' });
    const r = await pages(h, `/fhir/Procedure?subject=Patient/${patient}&_sort=date&_count=2`);
    t.same(r.forward, [other, ...[...ids].sort()]);
    t.same(r.backward, r.forward);
    const d = await pages(h, `/fhir/Procedure?subject=Patient/${patient}&_sort=-date,status&_count=4`);
    t.same(d.forward, [...[...ids].sort(), other]);
  });

  t.test('numbers: RiskAssessment.probability', async (t) => {
    const patient = await makePatient(h);
    const risk = (...probabilities: number[]) => post(h, {
      resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${patient}` },
      prediction: probabilities.map((p) => ({ probabilityDecimal: p })),
    });
    const a = await risk(0.25);
    const b = await risk(0.251);
    const c = await risk(0.26);
    const d = await risk(0.3);
    const e = await risk(0.5);
    const both = await risk(0.1, 0.9);
    const none = await post(h, { resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${patient}` }, prediction: [{ probabilityRange: { low: { value: 0.2 }, high: { value: 0.4 } } }] });
    const q = (v: string) => found(h, `/fhir/RiskAssessment?subject=Patient/${patient}&${v}`);
    const sorted = (ids: string[]) => [...ids].sort();
    t.same(await q('probability=0.25'), sorted([a, b]), '0.25 is [0.245, 0.255)');
    t.same(await q('probability=0.250'), sorted([a]), '0.250 is [0.2495, 0.2505)');
    t.same(await q('probability=eq0.30'), sorted([d]));
    t.same(await q('probability=0.3'), sorted([a, b, c, d]), '0.3 is [0.25, 0.35)');
    t.same(await q('probability=ne0.25'), sorted([c, d, e, both]), 'ne: some value outside the range');
    t.same(await q('probability=gt0.25'), sorted([b, c, d, e, both]));
    t.same(await q('probability=ge0.3'), sorted([d, e, both]));
    t.same(await q('probability=lt0.26'), sorted([a, b, both]));
    t.same(await q('probability=le0.25'), sorted([a, both]));
    t.same(await q('probability=ap0.5'), sorted([e]), 'ap: [0.45, 0.55]');
    t.same(await q('probability=0.1'), [both]);
    t.same(await q('probability=0.9'), [both]);
    t.same(await q('probability=0.1&probability=0.9'), [both], 'AND of two values one resource holds');
    t.same(await q('probability=0.30,0.50'), sorted([d, e]));
    t.same(await q('probability:missing=true'), [none], 'a Range gives no number');
    t.equal((await h.fhir({ method: 'GET', url: '/fhir/RiskAssessment?probability=abc' })).statusCode, 400);
    const asc = await pages(h, `/fhir/RiskAssessment?subject=Patient/${patient}&_sort=probability&_count=3`);
    t.same(asc.forward, [both, a, b, c, d, e, none], 'by the least value ascending');
    const desc = await pages(h, `/fhir/RiskAssessment?subject=Patient/${patient}&_sort=-probability&_count=3`);
    t.same(desc.forward, [none, both, e, d, c, b, a], 'by the greatest descending');
    t.same(desc.backward, desc.forward);
  });

  t.test('quantities: ChargeItem.quantity and price-override (Money), with and without units', async (t) => {
    const patient = await makePatient(h);
    const charge = (extra: Record<string, unknown>) => post(h, {
      resourceType: 'ChargeItem', status: 'billable', code: { text: 'charge' }, subject: { reference: `Patient/${patient}` }, ...extra,
    });
    const mg = await charge({ quantity: { value: 2, system: UCUM, code: 'mg', unit: 'milligram' }, priceOverride: { value: 12.5, currency: 'EUR' } });
    const tablets = await charge({ quantity: { value: 2, unit: 'tablets' }, factorOverride: 0.8 });
    const bare = await charge({ quantity: { value: 2 } });
    const big = await charge({ quantity: { value: 20, system: UCUM, code: 'mg' }, priceOverride: { value: 12.5, currency: 'USD' } });
    const gram = await charge({ quantity: { value: 2.0, system: UCUM, code: 'g' } });
    const none = await charge({});
    const q = (v: string) => found(h, `/fhir/ChargeItem?subject=Patient/${patient}&${v}`);
    const sorted = (ids: string[]) => [...ids].sort();
    t.same(await q('quantity=2'), sorted([mg, tablets, bare, gram]), 'no unit asked: any unit');
    t.same(await q(`quantity=2|${UCUM}|mg`), [mg]);
    t.same(await q('quantity=2||mg'), [mg], 'a code without a system');
    t.same(await q('quantity=2||tablets'), [tablets], 'a unit without a code is matched as the code');
    t.same(await q(`quantity=2|${UCUM}|`), sorted([mg, gram]), 'a system alone');
    t.same(await q(`quantity=gt2|${UCUM}|mg`), [big]);
    t.same(await q('quantity=ge2'), sorted([mg, tablets, bare, big, gram]));
    t.same(await q('quantity=ap20'), [big]);
    t.same(await q(`quantity=2|${UCUM}|mg,2|${UCUM}|g`), sorted([mg, gram]));
    t.same(await q(`quantity=2|http://example.org/other|mg`), []);
    t.same(await q('quantity:missing=true'), [none]);
    t.same(await q(`price-override=12.5|${CURRENCY}|EUR`), [mg]);
    t.same(await q('price-override=12.5'), sorted([mg, big]));
    t.same(await q('price-override=12.5||usd'), [], 'codes are case-sensitive');
    t.same(await q('factor-override=0.8'), [tablets]);
    t.same(await q('factor-override:missing=false'), [tablets]);
    t.equal((await h.fhir({ method: 'GET', url: '/fhir/ChargeItem?quantity=2|mg' })).statusCode, 400, 'value|code is no quantity');
    const asc = await pages(h, `/fhir/ChargeItem?subject=Patient/${patient}&_sort=quantity&_count=2`);
    t.same(asc.forward, [...sorted([mg, tablets, bare, gram]), big, none]);
    t.same(asc.backward, asc.forward);
  });

  t.test('uris: ValueSet.url exact, :below, :above, :missing, _sort', async (t) => {
    const u = unique();
    const base = `http://example.org/${u}/fhir`;
    const name = `VS${u}`;
    const vs = (url?: string) => post(h, { resourceType: 'ValueSet', status: 'active', name, ...(url ? { url } : {}) });
    const v123 = await vs(`${base}/ValueSet/123`);
    const v1234 = await vs(`${base}/ValueSet/1234`);
    const vBase = await vs(base);
    const vUpper = await vs(base.toUpperCase());
    const vNone = await vs();
    const q = (v: string) => found(h, `/fhir/ValueSet?name=${name}&${v}`);
    const sorted = (ids: string[]) => [...ids].sort();
    t.same(await q(`url=${base}/ValueSet/123`), [v123], 'exact');
    t.same(await q(`url=${base}/ValueSet/12`), [], 'no prefix match without :below');
    t.same(await q(`url=${base}/valueset/123`), [], 'case-sensitive');
    t.same(await q(`url:below=${base}/ValueSet/123`), sorted([v123, v1234]));
    t.same(await q(`url:below=${base}`), sorted([v123, v1234, vBase]));
    t.same(await q(`url:above=${base}/ValueSet/123/_history/5`), sorted([v123, vBase]));
    t.same(await q(`url:above=${base}`), [vBase]);
    t.same(await q(`url=${base},${base.toUpperCase()}`), sorted([vBase, vUpper]), 'values OR');
    t.same(await q('url:missing=true'), [vNone]);
    t.same(await q('url:missing=false'), sorted([v123, v1234, vBase, vUpper]));
    t.same(await found(h, `/fhir/ValueSet?url=${base}/ValueSet/123`), [v123], 'alone, the only parameter');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/ValueSet?url:contains=x` })).statusCode, 400);
    const asc = await pages(h, `/fhir/ValueSet?name=${name}&_sort=url&_count=2`);
    // binary order: upper case first
    t.same(asc.forward, [vUpper, vBase, v123, v1234, vNone]);
  });

  t.test('string and token sorts over the index', async (t) => {
    const u = unique();
    const vs = (title: string, status: string) => post(h, { resourceType: 'ValueSet', status, name: `S${u}`, title });
    const b = await vs('bravo', 'active');
    const a = await vs('Émile', 'draft');
    const c = await vs('alpha', 'retired');
    const d = await vs('Charlie', 'active');
    const byTitle = await pages(h, `/fhir/ValueSet?name=S${u}&_sort=title&_count=3`);
    t.same(byTitle.forward, [c, b, d, a], 'alpha, bravo, Charlie, Émile: case and accents ignored');
    const byTitleDesc = await pages(h, `/fhir/ValueSet?name=S${u}&_sort=-title&_count=3`);
    t.same(byTitleDesc.forward, [a, d, b, c]);
    const byStatus = await pages(h, `/fhir/ValueSet?name=S${u}&_sort=status,-title&_count=2`);
    t.same(byStatus.forward, [d, b, a, c], 'active (Charlie, bravo), draft, retired');
    t.same(byStatus.backward, byStatus.forward);
  });

  t.test('chains and includes through index-backed references', async (t) => {
    const family = `Chain${unique()}`;
    const patient = await makePatient(h, family);
    const imm = await post(h, {
      resourceType: 'Immunization', status: 'completed', vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
      patient: { reference: `Patient/${patient}` }, occurrenceDateTime: '2021-10-04T08:00:00Z', primarySource: true,
    });
    const imm2 = await post(h, {
      resourceType: 'Immunization', status: 'completed', vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '141' }] },
      patient: { reference: `Patient/${patient}` }, occurrenceDateTime: '2022-03-01', primarySource: true,
    });
    const evaluation = (immunization: string) => post(h, {
      resourceType: 'ImmunizationEvaluation', status: 'completed', patient: { reference: `Patient/${patient}` },
      targetDisease: { text: 'flu' }, immunizationEvent: { reference: `Immunization/${immunization}` }, doseStatus: { text: 'valid' },
    });
    const e1 = await evaluation(imm);
    const e2 = await evaluation(imm2);
    t.same(await found(h, `/fhir/ImmunizationEvaluation?patient=${patient}&immunization-event.date=2021-10-04`), [e1], 'a chain into a generic type\'s date');
    t.same(await found(h, `/fhir/ImmunizationEvaluation?patient=${patient}&immunization-event.date=ge2021-10-05`), [e2]);
    t.same(await found(h, `/fhir/ImmunizationEvaluation?patient=${patient}&immunization-event.date=ge2021&immunization-event.date=lt2022`), [e1], 'two chains ANDed');
    t.same(await found(h, `/fhir/ImmunizationEvaluation?patient.name=${family}`), [e1, e2].sort(), 'a chain into a seed type\'s index');
    t.same(await found(h, `/fhir/Immunization?patient.name=${family}&date=2022`), [imm2]);
    const inc = await search(h, `/fhir/ImmunizationEvaluation?patient=${patient}&immunization-event.date=2021&_include=ImmunizationEvaluation:immunization-event`);
    t.same((inc.entry ?? []).filter((e) => e.search.mode === 'include').map((e) => `${e.resource.resourceType}/${e.resource.id}`), [`Immunization/${imm}`]);
    const rev = await search(h, `/fhir/Immunization?patient=${patient}&date=2022&_revinclude=ImmunizationEvaluation:immunization-event`);
    t.same(matchesOf(rev), [imm2]);
    t.same((rev.entry ?? []).filter((e) => e.search.mode === 'include').map((e) => e.resource.id), [e2]);
    const sortedByDate = await pages(h, `/fhir/Immunization?patient=${patient}&_sort=-date&_count=1`);
    t.same(sortedByDate.forward, [imm2, imm]);
  });
});
