import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';
import { makeClinician, makePatient, rewriteReferences, unique } from '../helpers/world.js';
import { CPT_SYSTEM, INVOICE_EXTENSIONS } from '../../src/mappers/invoice-mapper.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('Invoice over billing', async (t) => {
  const h = await testApp(t);
  const patient = await makePatient(h);
  const doctor = await makeClinician(h);
  const invoice = (extra: J = {}, p = patient): J => ({
    resourceType: 'Invoice', status: 'issued', identifier: [{ system: 'urn:hms:test', value: `INV-${unique()}` }], subject: { reference: `Patient/${p}` },
    date: '2024-02-10', totalGross: { value: 150, currency: 'USD' },
    lineItem: [{ chargeItemCodeableConcept: { coding: [{ system: CPT_SYSTEM, code: '99213' }], text: 'Office visit' } }],
    ...extra,
  });
  const create = async (body: J) => h.fhir({ method: 'POST', url: '/fhir/Invoice', payload: body });
  const ids = (bundle: J): string[] => (bundle.entry ?? []).filter((e: J) => e.search?.mode !== 'outcome').map((e: J) => e.resource.id).sort();
  const search = async (qs: string) => { const r = await h.fhir({ method: 'GET', url: `/fhir/Invoice?${qs}` }); t.equal(r.statusCode, 200, qs); return r.json() as J; };
  const billingCount = async () => Number(((await h.db('billing').count({ n: '*' })) as J[])[0]!.n);

  t.test('the official example round-trips with its subject rewritten', async (t) => {
    for (const { name, resource } of officialExamples('Invoice')) {
      // the invoice number must be unique: a shared database keeps earlier runs' invoices
      const body = rewriteReferences(resource, { Patient: patient, Practitioner: doctor }) as J;
      body.identifier = body.identifier.map((i: J) => ({ ...i, value: `${i.value}-${unique()}` }));
      const created = await create(body);
      t.equal(created.statusCode, 201, `${name}: ${created.body}`);
      const read = await h.fhir({ method: 'GET', url: `/fhir/Invoice/${created.json().id}` });
      t.same(withoutIdAndMeta(read.json()), withoutIdAndMeta(body), name);
      const row = await h.db('billing').where({ id: created.json().id }).first();
      t.equal(Number(row.amount_charged), 48);
      t.equal(Number(row.amount_due), 48, 'the generated amount_due');
      t.equal(row.created_by, h.userId);
      t.equal(row.service_description, 'Invoice', 'the fallback description');
    }
  });

  t.test('create, read, vread, update, history, delete', async (t) => {
    const created = await create(invoice());
    t.equal(created.statusCode, 201, created.body);
    const id = created.json().id;
    const url = `/fhir/Invoice/${id}`;
    const paid = invoice({ id, identifier: created.json().identifier, extension: [{ url: INVOICE_EXTENSIONS.amountPaid, valueMoney: { value: 50, currency: 'USD' } }, { url: INVOICE_EXTENSIONS.paymentStatus, valueCode: 'partial' }] });
    const upd = await h.fhir({ method: 'PUT', url, headers: { 'if-match': 'W/"1"' }, payload: paid });
    t.equal(upd.statusCode, 200, upd.body);
    const row = await h.db('billing').where({ id }).first();
    t.match(row, { payment_status: 'partial', version_id: 2 });
    t.equal(Number(row.amount_due), 100);
    t.same(withoutIdAndMeta((await h.fhir({ method: 'GET', url })).json()), withoutIdAndMeta(paid));
    t.notOk((await h.fhir({ method: 'GET', url: `${url}/_history/1` })).json().extension);
    const hist = (await h.fhir({ method: 'GET', url: `${url}/_history` })).json();
    t.same(hist.entry.map((e: J) => e.request.method), ['PUT', 'POST']);
    t.equal((await h.fhir({ method: 'DELETE', url })).statusCode, 204);
    t.equal((await h.fhir({ method: 'GET', url })).statusCode, 410);
    t.notOk(await h.db('billing').where({ id }).first(), 'delete removes the row');
  });

  t.test('an update keeps created_by: the user who created the invoice', async (t) => {
    const id = randomUUID();
    const other = await makeClinician(h);
    await h.db('billing').insert({
      id, patient_id: patient, invoice_number: `NAT-${unique()}`, service_date: '2024-01-01', service_description: 'Native', amount_charged: 10,
      billing_date: '2024-01-01', due_date: '2024-01-31', created_by: other, version_id: 1, created_at: '2024-01-01 00:00:00', updated_at: '2024-01-01 00:00:00',
    });
    const read = (await h.fhir({ method: 'GET', url: `/fhir/Invoice/${id}` })).json();
    const upd = await h.fhir({ method: 'PUT', url: `/fhir/Invoice/${id}`, payload: { ...read, note: [{ text: 'checked' }] } });
    t.equal(upd.statusCode, 200, upd.body);
    t.match(await h.db('billing').where({ id }).first(), { created_by: other, notes: 'checked', service_description: 'Native' });
  });

  t.test('a natively inserted row reads as a whole Invoice', async (t) => {
    const id = randomUUID();
    const number = `NAT-${unique()}`;
    await h.db('billing').insert({
      id, patient_id: patient, invoice_number: number, service_date: '2024-01-02', service_description: 'Lab work', procedure_codes: '80053, 85025',
      diagnosis_codes: 'R73.9', amount_charged: 200, amount_paid: 80, payment_status: 'overdue', billing_date: '2024-01-03', due_date: '2024-01-20',
      payment_method: 'cash', created_by: h.userId, version_id: 1, created_at: '2024-01-03 00:00:00', updated_at: '2024-01-03 00:00:00',
    });
    const res = await h.fhir({ method: 'GET', url: `/fhir/Invoice/${id}` });
    t.equal(res.statusCode, 200, res.body);
    const inv = res.json();
    t.equal(inv.status, 'issued');
    t.same(inv.subject, { reference: `Patient/${patient}` });
    t.equal(inv.identifier[0].value, number);
    t.same(inv.totalGross, { value: 200, currency: 'USD' });
    t.same(inv.lineItem.map((i: J) => i.chargeItemCodeableConcept.coding[0].code), ['80053', '85025']);
    const ext = (url: string) => inv.extension.find((e: J) => e.url === url);
    t.equal(ext(INVOICE_EXTENSIONS.paymentStatus).valueCode, 'overdue');
    t.same(ext(INVOICE_EXTENSIONS.amountPaid).valueMoney, { value: 80, currency: 'USD' });
    t.same(ext(INVOICE_EXTENSIONS.amountDue).valueMoney, { value: 120, currency: 'USD' });
    t.equal(ext(INVOICE_EXTENSIONS.dueDate).valueDate, '2024-01-20');
    t.equal(ext(INVOICE_EXTENSIONS.diagnosis).valueCoding.code, 'R73.9');
  });

  t.test('search parameters', async (t) => {
    const p2 = await makePatient(h);
    const a = (await create(invoice({ date: '2023-05-01', totalGross: { value: 99.5, currency: 'USD' }, extension: [{ url: INVOICE_EXTENSIONS.dueDate, valueDate: '2023-05-15' }] }, p2))).json();
    const b = (await create(invoice({ status: 'balanced', date: '2023-06-01', totalGross: { value: 500, currency: 'USD' }, extension: [{ url: INVOICE_EXTENSIONS.amountPaid, valueMoney: { value: 500, currency: 'USD' } }] }, p2))).json();
    const c = (await create(invoice({ status: 'cancelled', date: '2023-07-01', totalGross: { value: 20, currency: 'USD' } }, p2))).json();
    const d = (await create(invoice({ date: '2023-07-02', extension: [{ url: INVOICE_EXTENSIONS.paymentStatus, valueCode: 'overdue' }] }, p2))).json();
    const p = `patient=${p2}`;
    t.same(ids(await search(p)), [a.id, b.id, c.id, d.id].sort());
    t.same(ids(await search(`subject=Patient/${p2}`)), [a.id, b.id, c.id, d.id].sort());
    t.same(ids(await search(`${p}&status=issued`)), [a.id, d.id].sort());
    t.same(ids(await search(`${p}&status=balanced`)), [b.id]);
    t.same(ids(await search(`${p}&status=cancelled`)), [c.id]);
    t.same(ids(await search(`${p}&status:not=issued`)), [b.id, c.id].sort());
    t.same(ids(await search(`identifier=${a.identifier[0].value}`)), [a.id]);
    t.same(ids(await search(`identifier=urn:hms:test|${b.identifier[0].value}`)), [b.id]);
    t.same(ids(await search(`${p}&date=2023-06-01`)), [b.id]);
    t.same(ids(await search(`${p}&date=ge2023-07-01`)), [c.id, d.id].sort());
    t.same(ids(await search(`${p}&date=lt2023-06`)), [a.id]);
    t.same(ids(await search(`${p}&totalgross=gt100`)), [b.id, d.id].sort());
    t.same(ids(await search(`${p}&totalgross=99.5`)), [a.id]);
    t.same(ids(await search(`${p}&totalgross=le20||USD`)), [c.id]);
    t.same(ids(await search(`${p}&totalgross=20||EUR`)), []);
    t.same(ids(await search(`${p}&totalgross=le20|urn:iso:std:iso:4217|USD`)), [c.id], 'the ISO 4217 currency system');
    t.same(ids(await search(`${p}&totalgross=le20|http://unitsofmeasure.org|USD`)), [], 'money is not in UCUM');
    t.same(ids(await search(`${p}&due-date=2023-05-15`)), [a.id]);
    t.same(ids(await search(`${p}&due-date=gt2023-07-31`)), [d.id], 'due 30 days after 2023-07-02 by default');
    t.same(ids(await search(`${p}&payment-status=overdue`)), [d.id]);
    t.same(ids(await search(`${p}&payment-status=paid,written_off`)), [b.id, c.id].sort());
    const sorted = await search(`${p}&_sort=-totalgross`);
    t.same(sorted.entry.map((e: J) => e.resource.id), [b.id, d.id, a.id, c.id]);
    t.equal((await search(`patient.family=NoSuchFamily${unique()}`)).total ?? 0, 0);
  });

  t.test('the CapabilityStatement declares the two HMS search parameters', async (t) => {
    const cs = (await h.fhir({ method: 'GET', url: '/fhir/metadata' })).json();
    const inv = cs.rest[0].resource.find((r: J) => r.type === 'Invoice');
    const byName = Object.fromEntries(inv.searchParam.map((p: J) => [p.name, p.definition]));
    t.equal(byName['due-date'], 'http://hms.example.org/fhir/SearchParameter/Invoice-due-date');
    t.equal(byName['payment-status'], 'http://hms.example.org/fhir/SearchParameter/Invoice-payment-status');
  });

  t.test('business rules refuse and write nothing', async (t) => {
    const refuse = async (body: J, status: number, pattern: RegExp) => {
      const before = await billingCount();
      const res = await create(body);
      t.equal(res.statusCode, status, res.body);
      t.match(res.json().issue[0].diagnostics, pattern);
      t.equal(await billingCount(), before, 'nothing written');
    };
    await refuse(invoice({ extension: [{ url: INVOICE_EXTENSIONS.amountPaid, valueMoney: { value: 151, currency: 'USD' } }] }), 422, /exceeds the amount charged/);
    await refuse(invoice({ extension: [{ url: INVOICE_EXTENSIONS.amountDue, valueMoney: { value: 10, currency: 'USD' } }] }), 422, /amount due/);
    await refuse(invoice({ extension: [{ url: INVOICE_EXTENSIONS.dueDate, valueDate: '2024-02-01' }] }), 422, /before the start/);
    await refuse(invoice({ extension: [{ url: INVOICE_EXTENSIONS.serviceDate, valueDate: '2024-02-11' }] }), 422, /before the start/);
    await refuse(invoice({ extension: [{ url: INVOICE_EXTENSIONS.paymentMethod, valueCode: 'bitcoin' }] }), 422, /not one of/);
    await refuse(invoice({ status: 'balanced', extension: [{ url: INVOICE_EXTENSIONS.paymentStatus, valueCode: 'overdue' }] }), 422, /only applies to an issued/);
    await refuse(invoice({ totalGross: undefined }), 422, /totalGross is required/);
    await refuse(invoice({ subject: { reference: 'Group/1' } }), 422, /must refer to a Patient/);
    await refuse(invoice({}, randomUUID()), 422, /does not exist/);
    await refuse(invoice({ extension: [{ url: INVOICE_EXTENSIONS.encounter, valueReference: { reference: `Encounter/${randomUUID()}` } }] }), 422, /does not exist/);
    const first = (await create(invoice())).json();
    await refuse(invoice({ identifier: first.identifier }), 409, /already used/);
    const second = (await create(invoice())).json();
    const clash = await h.fhir({ method: 'PUT', url: `/fhir/Invoice/${second.id}`, payload: { ...second, identifier: first.identifier } });
    t.equal(clash.statusCode, 409, 'an update to a used number');
    const same = await h.fhir({ method: 'PUT', url: `/fhir/Invoice/${first.id}`, payload: { ...first, note: [{ text: 'again' }] } });
    t.equal(same.statusCode, 200, 'an invoice keeps its own number on update');
  });
});
