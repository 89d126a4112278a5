import t from 'tap';
import { testApp } from '../helpers/app.js';
import { validateResource } from '../../src/fhir/validate.js';

t.test('HMS-defined search parameters are SearchParameter resources referenced by the CapabilityStatement', async (t) => {
  const h = await testApp(t);
  const meta = await h.fhir({ method: 'GET', url: '/fhir/metadata', token: null });
  const invoice = (meta.json().rest[0].resource as { type: string; searchParam: { name: string; definition: string }[] }[]).find((r) => r.type === 'Invoice')!;
  const dueDate = invoice.searchParam.find((p) => p.name === 'due-date')!;
  t.equal(dueDate.definition, 'http://hms.example.org/fhir/SearchParameter/Invoice-due-date');
  t.ok(invoice.searchParam.find((p) => p.name === 'payment-status'));
  t.ok((meta.json().rest[0].resource as { type: string }[]).some((r) => r.type === 'SearchParameter'), 'SearchParameter is listed');

  const read = await h.fhir({ method: 'GET', url: '/fhir/SearchParameter/Invoice-due-date', token: null });
  t.equal(read.statusCode, 200);
  t.match(read.json(), { resourceType: 'SearchParameter', url: dueDate.definition, code: 'due-date', base: ['Invoice'], type: 'date' });
  t.doesNotThrow(() => validateResource('SearchParameter', read.json()), 'a valid R4 SearchParameter');

  const all = await h.fhir({ method: 'GET', url: '/fhir/SearchParameter', token: null });
  const urls = (all.json().entry as { resource: { url: string } }[]).map((e) => e.resource.url);
  t.ok(urls.includes(dueDate.definition));
  t.equal(all.json().total, urls.length);
  for (const url of urls) t.ok(url.startsWith('http://hms.example.org/fhir/SearchParameter/'), url);

  t.equal((await h.fhir({ method: 'GET', url: '/fhir/SearchParameter/Patient-name', token: null })).statusCode, 404, 'standard parameters are HL7\'s, not served here');
});
