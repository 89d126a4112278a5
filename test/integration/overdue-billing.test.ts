import t from 'tap';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { testApp } from '../helpers/app.js';
import { makePatient, unique } from '../helpers/world.js';
import { createDb, dialectOf } from '../../src/db/knex.js';
import { AuditLog } from '../../src/db/audit-log.js';
import { inTransaction } from '../../src/db/transactions.js';
import { readMany, nowSeconds } from '../../src/db/resource-repository.js';
import { reviseNatively } from '../../src/db/native-revision.js';
import { PatientDefinition } from '../../src/fhir/resources/Patient.js';
import { withMeta } from '../../src/fhir/resource-view.js';
import { indexEntries } from '../../src/fhir/search/index-entries.js';
import { sqlToInstant } from '../../src/mappers/datatypes.js';
import { CPT_SYSTEM, INVOICE_EXTENSIONS } from '../../src/mappers/invoice-mapper.js';
import { overdueBilling } from '../../src/workers/processors/overdue-billing.js';
import { PermanentJobError, type JobDeps } from '../../src/workers/jobs.js';
import type { Resource } from '../../src/fhir/types.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A JSON column: text on SQLite, parsed by mysql2. */
const json = (v: unknown): J => (typeof v === 'string' ? JSON.parse(v) : v) as J;
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const GRACE = 5;
const BATCH = 3;
/** When native rows were written (TIMESTAMP holds 1970-2038 only, unlike the DATE columns). */
const NATIVE_AT = '2020-01-10 08:00:00';

// The sweep acts on every invoice of the database; a database shared with other test files (and
// earlier runs of this one) holds invoices of today's years. This file's invoices live in years of
// their own before 1900 (one per test, after every year an earlier run used), and each test first
// sweeps everything due before its year.
let year = 0;
const nextYear = (): number => year++;

t.test('overdue billing sweep', async (t) => {
  const h = await testApp(t, { HMS_OVERDUE_BATCH: BATCH, HMS_OVERDUE_GRACE_DAYS: GRACE });
  const audit = new AuditLog(h.db);
  const deps = (extra: Partial<JobDeps> = {}, db: Knex = h.db): JobDeps => ({
    db, config: h.config, log: silent, auditLog: db === h.db ? audit : new AuditLog(db), now: () => new Date(), ...extra,
  });
  const patient = await makePatient(h);
  const latest = (await h.db('billing').where('due_date', '<', '1900-01-01').max({ d: 'due_date' }))[0] as J;
  year = latest?.d ? Number(String(latest.d).slice(0, 4)) + 1 : 1100;

  /** Sweeps everything due before the year: only this test's invoices can then fall overdue. */
  const freshYear = async (): Promise<number> => {
    const y = nextYear();
    await overdueBilling({ asOf: `${y}-01-01` }, deps());
    return y;
  };

  const ext = (url: string, value: J): J => ({ url, ...value });
  /** An Invoice through the API; returns its id. */
  const createInvoice = async (y: number, o: { due: string; gross?: number; paid?: number; status?: string; paymentStatus?: string; p?: string }): Promise<string> => {
    const extension: J[] = [ext(INVOICE_EXTENSIONS.dueDate, { valueDate: `${y}-${o.due}` })];
    if (o.paid !== undefined) extension.push(ext(INVOICE_EXTENSIONS.amountPaid, { valueMoney: { value: o.paid, currency: 'USD' } }));
    if (o.paymentStatus) extension.push(ext(INVOICE_EXTENSIONS.paymentStatus, { valueCode: o.paymentStatus }));
    const res = await h.fhir({
      method: 'POST', url: '/fhir/Invoice', payload: {
        resourceType: 'Invoice', status: o.status ?? 'issued', identifier: [{ system: 'urn:hms:test', value: `OVD-${unique()}` }],
        subject: { reference: `Patient/${o.p ?? patient}` }, date: `${y}-01-15`, totalGross: { value: o.gross ?? 100, currency: 'USD' },
        lineItem: [{ chargeItemCodeableConcept: { coding: [{ system: CPT_SYSTEM, code: '99213' }], text: 'Office visit' } }],
        note: [{ text: 'kept note' }], extension,
      },
    });
    if (res.statusCode !== 201) throw new Error(`invoice create failed: ${res.body}`);
    return res.json().id as string;
  };
  /** A billing row written natively (no history), as the seeder writes them. */
  const insertNative = async (y: number, o: { due: string; gross?: number; paid?: number; status?: string; p?: string }): Promise<string> => {
    const id = randomUUID();
    await h.db('billing').insert({
      id, patient_id: o.p ?? patient, invoice_number: `NAT-${unique()}-${unique()}`, service_date: `${y}-01-10`, service_description: 'Native',
      procedure_codes: '80053', amount_charged: o.gross ?? 100, amount_paid: o.paid ?? 0, payment_status: o.status ?? 'pending',
      billing_date: `${y}-01-10`, due_date: `${y}-${o.due}`, created_by: h.userId, version_id: 1, created_at: NATIVE_AT, updated_at: NATIVE_AT,
    });
    return id;
  };
  const read = async (id: string): Promise<J> => {
    const r = await h.fhir({ method: 'GET', url: `/fhir/Invoice/${id}` });
    if (r.statusCode !== 200) throw new Error(`GET Invoice/${id}: ${r.statusCode} ${r.body}`);
    return r.json();
  };
  const paymentStatus = (inv: J): string | undefined => inv.extension?.find((e: J) => e.url === INVOICE_EXTENSIONS.paymentStatus)?.valueCode;
  const withoutStatusAndMeta = (inv: J): J => {
    const { meta: _m, ...rest } = structuredClone(inv);
    rest.extension = (rest.extension ?? []).filter((e: J) => e.url !== INVOICE_EXTENSIONS.paymentStatus);
    return rest;
  };
  const searchIds = async (qs: string): Promise<string[]> => {
    const r = await h.fhir({ method: 'GET', url: `/fhir/Invoice?${qs}&_count=1000` });
    if (r.statusCode !== 200) throw new Error(`search ${qs}: ${r.statusCode} ${r.body}`);
    return ((r.json().entry ?? []) as J[]).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource.id as string).sort();
  };
  const historyCounts = async (ids: string[]): Promise<Map<string, number>> => {
    const rows = (await h.db('resource_history').where({ resource_type: 'Invoice' }).whereIn('resource_id', ids)
      .groupBy('resource_id').select('resource_id').count({ n: '*' })) as J[];
    return new Map(rows.map((r) => [String(r.resource_id), Number(r.n)]));
  };

  t.test('changes exactly the unpaid invoices past due date plus grace days, each as a new version', async (t) => {
    const y = await freshYear();
    const asOf = `${y}-06-01`; // cut-off: due before 05-27
    const p2 = await makePatient(h);
    const due = {
      pending: await createInvoice(y, { due: '03-01' }),
      partial: await createInvoice(y, { due: '03-02', paid: 40, paymentStatus: 'partial' }),
      lastDay: await createInvoice(y, { due: '05-26', p: p2 }),
      native: await insertNative(y, { due: '02-01' }),
      nativePartial: await insertNative(y, { due: '02-02', paid: 10, status: 'partial' }),
    };
    const kept = {
      withinGrace: await createInvoice(y, { due: '05-30' }),
      cutOffDay: await createInvoice(y, { due: '05-27' }),
      nothingDue: await createInvoice(y, { due: '03-01', paid: 100 }),
      paid: await createInvoice(y, { due: '03-01', paid: 100, status: 'balanced' }),
      writtenOff: await createInvoice(y, { due: '03-01', status: 'cancelled' }),
      future: await createInvoice(y, { due: '09-01' }),
      alreadyOverdue: await createInvoice(y, { due: '03-01', paymentStatus: 'overdue' }),
      nativePaid: await insertNative(y, { due: '02-01', paid: 100, status: 'paid' }),
      nativeZero: await insertNative(y, { due: '02-01', gross: 0 }),
    };
    const deleted = await createInvoice(y, { due: '03-01' });
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Invoice/${deleted}` })).statusCode, 204);

    const before = new Map<string, J>();
    for (const id of [...Object.values(due), ...Object.values(kept)]) before.set(id, await read(id));
    const rowsBefore = new Map<string, J>();
    for (const r of (await h.db('billing').whereIn('id', [...before.keys()])) as J[]) rowsBefore.set(String(r.id), r);
    const historyBefore = await historyCounts([...before.keys(), deleted]);

    const result = await overdueBilling({ asOf }, deps());
    t.match(result, { asOf, cutoff: `${y}-05-27`, graceDays: GRACE, changed: 5, aborted: false });
    t.ok((result.batches as number) >= 2, `batches of ${BATCH}: ${String(result.batches)}`);
    t.ok((result.examined as number) >= 5);

    for (const [name, id] of Object.entries(due)) {
      const after = await read(id);
      const was = before.get(id)!;
      t.equal(paymentStatus(after), 'overdue', `${name} reads overdue`);
      t.equal(after.status, 'issued');
      t.equal(after.meta.versionId, String(Number(was.meta.versionId) + 1), `${name}: one version more`);
      t.same(withoutStatusAndMeta(after), withoutStatusAndMeta(was), `${name}: nothing else changed`);
      const row = await h.db('billing').where({ id }).first();
      t.equal(row.payment_status, 'overdue');
      t.equal(Number(row.version_id), Number(was.meta.versionId) + 1);
      t.equal(sqlToInstant(row.updated_at), after.meta.lastUpdated, 'meta.lastUpdated is the row\'s updated_at');
      const vread = await h.fhir({ method: 'GET', url: `/fhir/Invoice/${id}/_history/${after.meta.versionId}` });
      t.equal(vread.statusCode, 200);
      t.same(vread.json(), after, `${name}: the version in the history reads as the resource does`);
      const hist = (await h.fhir({ method: 'GET', url: `/fhir/Invoice/${id}/_history` })).json();
      t.same(hist.entry.map((e: J) => e.resource.meta.versionId), [after.meta.versionId, was.meta.versionId], `${name}: _history lists the new version, then the one before`);
      t.equal(hist.entry[0].request.method, 'PUT');
      t.equal(paymentStatus(hist.entry[1].resource), rowsBefore.get(id)!.payment_status === 'partial' ? 'partial' : undefined, `${name}: the version before is as it was`);
      const old = await h.fhir({ method: 'GET', url: `/fhir/Invoice/${id}/_history/${was.meta.versionId}` });
      t.equal(old.statusCode, 200, `${name}: the version before stays readable`);
      t.same(withoutStatusAndMeta(old.json()), withoutStatusAndMeta(was));
    }
    for (const [name, id] of Object.entries(kept)) {
      const after = await read(id);
      t.same(after, before.get(id), `${name} is left as it was`);
      t.match(await h.db('billing').where({ id }).first(), { payment_status: rowsBefore.get(id)!.payment_status, version_id: rowsBefore.get(id)!.version_id });
    }
    const historyAfter = await historyCounts([...before.keys(), deleted]);
    for (const id of Object.values(kept)) t.equal(historyAfter.get(id), historyBefore.get(id), 'no version added to an unchanged invoice');
    t.equal(historyAfter.get(deleted), historyBefore.get(deleted), 'a deleted invoice gets no version');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Invoice/${deleted}` })).statusCode, 410, 'and stays deleted');
    t.equal(historyAfter.get(due.native), 2, 'a native row keeps its first state as version 1, then version 2');

    t.same(await searchIds(`payment-status=overdue&patient=${patient}&due-date=ge${y}-01-01`), [due.pending, due.partial, due.native, due.nativePartial, kept.alreadyOverdue].sort(), 'payment-status=overdue finds them');
    t.same(await searchIds(`payment-status=overdue&patient=${p2}`), [due.lastDay]);
    // Invoice.status is index-backed: a native row that now has a kept version is found by its index rows
    const issued = await searchIds(`status=issued&patient=${patient}&due-date=ge${y}-01-01`);
    for (const id of [due.pending, due.partial, due.native, due.nativePartial, kept.nativeZero]) t.ok(issued.includes(id), 'status=issued finds it');
    t.same(await searchIds(`payment-status=pending,partial&patient=${patient}&due-date=ge${y}-01-01`), [kept.withinGrace, kept.cutOffDay, kept.nothingDue, kept.future, kept.nativeZero].sort());

    // the new version is the write path's: an update naming it succeeds and continues the history
    const current = await read(due.pending);
    const put = await h.fhir({ method: 'PUT', url: `/fhir/Invoice/${due.pending}`, headers: { 'if-match': `W/"${current.meta.versionId}"` }, payload: { ...current, note: [{ text: 'called the patient' }] } });
    t.equal(put.statusCode, 200, put.body);
    t.equal(put.json().meta.versionId, String(Number(current.meta.versionId) + 1));
    t.equal(paymentStatus(put.json()), 'overdue');
    const stale = await h.fhir({ method: 'PUT', url: `/fhir/Invoice/${due.partial}`, headers: { 'if-match': 'W/"1"' }, payload: await read(due.partial) });
    t.equal(stale.statusCode, 412, 'the version read before the sweep is stale');

    t.test('a second run changes nothing', async (t) => {
      const counts = await historyCounts([...before.keys()]);
      const again = await overdueBilling({ asOf }, deps());
      t.match(again, { changed: 0, batches: 0, examined: 0 });
      t.same(await historyCounts([...before.keys()]), counts);
    });

    t.test('one security log row per run, with the counts and no patient data', async (t) => {
      const rows = ((await h.db('security_logs').where({ action: 'overdue-sweep' }).orderBy('seq', 'desc').limit(10)) as J[])
        .filter((r) => json(r.additional_data).asOf === asOf);
      t.equal(rows.length, 2, 'the run and the second run');
      const [second, first] = rows.map((r): J => ({ ...r, data: json(r.additional_data) }));
      t.match(first, { role: 'system', resource_type: 'Invoice', resource_id: null, patient_id: null, user_id: null, data: { examined: result.examined, changed: 5, batches: result.batches, asOf } });
      t.ok(Number(first!.success));
      t.match(second, { data: { changed: 0, batches: 0 } });
      t.notMatch(JSON.stringify(rows), patient, 'no patient id');
      t.notMatch(JSON.stringify(rows), due.pending, 'no invoice id');
    });
  });

  t.test('asOf defaults to the day of the clock; a malformed one fails permanently', async (t) => {
    const y = await freshYear();
    const id = await createInvoice(y, { due: '03-01' });
    const early = await overdueBilling({}, deps({ now: () => new Date(`${y}-03-05T23:00:00Z`) }));
    t.match(early, { asOf: `${y}-03-05`, cutoff: `${y}-02-28`, changed: 0 }, 'within the grace days');
    const late = await overdueBilling({}, deps({ now: () => new Date(`${y}-03-07T00:30:00Z`) }));
    t.match(late, { asOf: `${y}-03-07`, changed: 1 });
    t.equal(paymentStatus(await read(id)), 'overdue');
    await t.rejects(overdueBilling({ asOf: `${y}-02-30` }, deps()), PermanentJobError);
    await t.rejects(overdueBilling({ asOf: 'yesterday' }, deps()), PermanentJobError);
  });

  t.test('stops between batches when aborted; the next run carries on', async (t) => {
    const y = await freshYear();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await insertNative(y, { due: `03-${String(10 + i).padStart(2, '0')}` }));
    let checks = 0;
    const signal = { get aborted() { return ++checks > 1; } } as unknown as AbortSignal;
    const stopped = await overdueBilling({ asOf: `${y}-06-01` }, deps({ signal }));
    t.match(stopped, { changed: BATCH, batches: 1, aborted: true });
    const audited = (await h.db('security_logs').where({ action: 'overdue-sweep' }).orderBy('seq', 'desc').first()) as J;
    t.match(json(audited.additional_data), { changed: BATCH, aborted: true }, 'the stopped run is audited too');
    t.equal(Number((await h.db('billing').whereIn('id', ids).where({ payment_status: 'overdue' }).count({ n: '*' }))[0]!.n), BATCH);
    const rest = await overdueBilling({ asOf: `${y}-06-01` }, deps());
    t.match(rest, { changed: 8 - BATCH, aborted: false });
    t.same([...(await historyCounts(ids)).values()], ids.map(() => 2), 'each changed once (its native version 1 kept, then version 2)');
  });

  t.test('two runs at once change each invoice exactly once', async (t) => {
    const y = await freshYear();
    const ids: string[] = [];
    const rows = Array.from({ length: 150 }, (_, i) => ({
      id: randomUUID(), patient_id: patient, invoice_number: `CON-${unique()}-${i}`, service_date: `${y}-01-10`, service_description: 'Native',
      amount_charged: 50 + i, amount_paid: i % 3 === 0 ? 10 : 0, payment_status: i % 3 === 0 ? 'partial' : 'pending',
      billing_date: `${y}-01-10`, due_date: `${y}-0${2 + (i % 7)}-1${i % 10}`, created_by: h.userId, version_id: 1,
      created_at: NATIVE_AT, updated_at: NATIVE_AT,
    }));
    await h.db.batchInsert('billing', rows, 50);
    ids.push(...rows.map((r) => r.id));
    for (let i = 0; i < 6; i++) ids.push(await createInvoice(y, { due: `02-0${i + 1}`, ...(i % 2 ? { paid: 5, paymentStatus: 'partial' } : {}) }));
    const versions = new Map(((await h.db('billing').whereIn('id', ids).select('id', 'version_id')) as J[]).map((r) => [String(r.id), Number(r.version_id)]));
    const historyBefore = await historyCounts(ids);
    // MySQL: a second pool, as a second worker process has. SQLite: the same pool (the embedded
    // mode's one connection), whose batches then take turns: two connections in one process
    // would stall on the write lock (better-sqlite3 waits synchronously, blocking the holder)
    const other = dialectOf(h.db) === 'mysql' ? createDb(h.config) : h.db;
    if (other !== h.db) t.teardown(() => other.destroy());
    const [a, b] = await Promise.all([overdueBilling({ asOf: `${y}-12-01` }, deps()), overdueBilling({ asOf: `${y}-12-01` }, deps({}, other))]);
    t.equal((a.changed as number) + (b.changed as number), ids.length, `every invoice changed once in all (${String(a.changed)} + ${String(b.changed)})`);
    const after = (await h.db('billing').whereIn('id', ids).select('id', 'version_id', 'payment_status')) as J[];
    t.ok(after.every((r) => r.payment_status === 'overdue'), 'all overdue');
    t.ok(after.every((r) => Number(r.version_id) === versions.get(String(r.id))! + 1), 'each one version up');
    const historyAfter = await historyCounts(ids);
    // a native row gains its first state and the new version; an API-written one the new version
    t.same(ids.filter((id) => historyAfter.get(id) !== (historyBefore.get(id) ?? 0) + (historyBefore.has(id) ? 1 : 2)), [], 'one new version each in resource_history');
    const third = await overdueBilling({ asOf: `${y}-12-01` }, deps({}, other));
    t.match(third, { changed: 0 });
  });

  t.test('the batched write path rewrites only the index rows that change (Patient)', async (t) => {
    const id = await makePatient(h, `Before${unique()}`, { identifier: [{ system: 'urn:hms:test', value: `MRN-${unique()}` }] });
    const tokensBefore = (await h.db('search_token').where({ resource_type: 'Patient', resource_id: id }).orderBy('id').select('id', 'param', 'code')) as J[];
    const stringsBefore = (await h.db('search_string').where({ resource_type: 'Patient', resource_id: id }).orderBy('id').select('id', 'param', 'norm')) as J[];
    t.ok(tokensBefore.length > 0 && stringsBefore.length > 0);
    const family = `Revised${unique()}`;
    const def = PatientDefinition as unknown as import('../../src/fhir/registry.js').ResourceDefinition;
    const res = await inTransaction(h.db, async (trx) => {
      const stored = await readMany(trx, def, [id]);
      return reviseNatively(trx, stored, {
        spec: def, columns: { last_name: family }, at: nowSeconds().sql,
        render: (row, kept, version, at) => withMeta(def.fromRow(row, kept as Resource | undefined), version, sqlToInstant(at)!) as unknown as J,
        index: { entries: (r) => indexEntries(def, r as unknown as Resource), strings: true, tokens: true },
      });
    });
    t.equal(res.revised, 1);
    t.ok(res.indexRowsDeleted > 0 && res.indexRowsInserted > 0);
    const tokensAfter = (await h.db('search_token').where({ resource_type: 'Patient', resource_id: id }).orderBy('id').select('id', 'param', 'code')) as J[];
    t.same(tokensAfter, tokensBefore, 'token rows (identifier) untouched, same row ids');
    const stringsAfter = (await h.db('search_string').where({ resource_type: 'Patient', resource_id: id }).orderBy('id').select('id', 'param', 'norm')) as J[];
    const given = (rows: J[]) => rows.filter((r) => r.param === 'given');
    t.same(given(stringsAfter), given(stringsBefore), 'given-name rows untouched');
    t.equal(stringsAfter.length, stringsBefore.length);
    const r = await h.fhir({ method: 'GET', url: `/fhir/Patient?family=${family}` });
    t.same(r.json().entry?.map((e: J) => e.resource.id), [id], 'found by the new family name');
    t.equal(r.json().entry[0].resource.meta.versionId, '2');
    t.equal((await h.fhir({ method: 'GET', url: `/fhir/Patient?family=Before&_id=${id}` })).json().entry, undefined, 'not by the old one');
  });
});

