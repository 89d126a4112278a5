/**
 * Bulk Data $export (FHIR Bulk Data Access 2.0) over HTTP on a database of its own, the spec's
 * flow step by step (no Bulk Data client is published on npm): kick-off with Prefer:
 * respond-async -> 202 + Content-Location; the status URL 202 with X-Progress while queued or
 * running; the job run as the worker runs it; 200 with the manifest; each file downloaded with the
 * bearer token, each NDJSON line equal to the resource read one by one. Then: access rules and
 * scopes narrow the export, files only for the caller who started it, _type, _since, _typeFilter,
 * _outputFormat, Group and Patient level, POST kick-off, refusals, cancel, expiry, the audit rows.
 */
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { privateDatabase, testApp, type TestApp } from '../helpers/app.js';
import { buildWorld, type Principal, type World } from '../helpers/access-world.js';
import { dropQueuesAtTeardown, jobDeps, runNow, testPrefix } from '../helpers/jobs.js';
import { exportExpiry } from '../../src/workers/processors/export-expiry.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ASYNC = { prefer: 'respond-async', accept: 'application/fhir+json' };

t.test('Bulk Data $export', async (t) => {
  const url = await privateDatabase(t, 'hms_bulk');
  const h: TestApp = await testApp(t, { HMS_QUEUE_PREFIX: testPrefix(), ...(url ? { DATABASE_URL: url } : {}) });
  dropQueuesAtTeardown(t, h);
  const w: World = await buildWorld(h);
  const who = (name: string): Principal => w.principals.find((p) => p.name === name)!;

  const kickOff = async (path: string, as = h.token, headers: Record<string, string> = ASYNC) => h.fhir({ method: 'GET', url: path, headers, token: as });
  const idOf = (res: { headers: Record<string, unknown> }): string => String(res.headers['content-location']).split('/').pop()!;
  const status = (id: string, as = h.token) => h.fhir({ method: 'GET', url: `/fhir/$export-status/${id}`, token: as });
  const run = (id: string) => runNow(h, 'bulk-export', id, { exportId: id });
  /** Kick-off, run, manifest. */
  const exportOf = async (path: string, as = h.token): Promise<{ id: string; manifest: J }> => {
    const res = await kickOff(path, as);
    if (res.statusCode !== 202) throw new Error(`kick-off ${path}: ${res.statusCode} ${res.body}`);
    const id = idOf(res);
    await run(id);
    const st = await status(id, as);
    if (st.statusCode !== 200) throw new Error(`status ${path}: ${st.statusCode} ${st.body}`);
    return { id, manifest: st.json() };
  };
  const download = async (fileUrl: string, as = h.token): Promise<J[]> => {
    const res = await h.fhir({ method: 'GET', url: new URL(fileUrl).pathname, token: as });
    if (res.statusCode !== 200) throw new Error(`download ${fileUrl}: ${res.statusCode} ${res.body}`);
    t.match(res.headers['content-type'], /^application\/fhir\+ndjson/);
    return res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  };
  const files = async (manifest: J, as = h.token): Promise<Record<string, J[]>> => {
    const out: Record<string, J[]> = {};
    for (const o of manifest.output) out[o.type] = await download(o.url, as);
    return out;
  };

  t.test('the spec flow: kick-off, progress, manifest, files equal to reads', async (t) => {
    const res = await kickOff('/fhir/$export?_type=Patient,Observation,Encounter,Practitioner');
    t.equal(res.statusCode, 202, res.body);
    t.match(res.headers['content-location'], /\/fhir\/\$export-status\/[0-9a-f-]{36}$/);
    const id = idOf(res);
    const queued = await status(id);
    t.equal(queued.statusCode, 202, 'not run yet: 202');
    t.equal(queued.headers['x-progress'], 'queued');
    t.ok(queued.headers['retry-after']);
    await run(id);
    const done = await status(id);
    t.equal(done.statusCode, 200, done.body);
    t.match(done.headers['content-type'], /^application\/json/);
    const m = done.json();
    t.ok(Date.parse(m.transactionTime), 'transactionTime is an instant');
    t.match(m.request, /\/fhir\/\$export\?_type=Patient,Observation,Encounter,Practitioner$/);
    t.equal(m.requiresAccessToken, true);
    t.same(m.error, []);
    t.same(m.output.map((o: J) => o.type).sort(), ['Encounter', 'Observation', 'Patient', 'Practitioner']);
    let lines = 0;
    for (const o of m.output) {
      const resources = await download(o.url);
      t.equal(resources.length, o.count, `${o.type}: count = lines`);
      const counted = (await h.fhir({ method: 'GET', url: `/fhir/${o.type}?_summary=count` })).json().total;
      t.equal(o.count, counted, `${o.type}: every resource the search finds`);
      for (const r of resources) {
        t.equal(r.resourceType, o.type);
        const read = await h.fhir({ method: 'GET', url: `/fhir/${o.type}/${r.id}` });
        t.same(r, read.json(), `${o.type}/${r.id} as read`);
      }
      lines += resources.length;
    }
    t.ok(lines >= 8, `${lines} resources exported`);
    // one audit row per patient whose data was exported
    const rows = await h.db('security_logs').where({ action: 'export' }).whereRaw('additional_data LIKE ?', [`%${id}%`]).select('patient_id');
    const patients = rows.map((r) => r.patient_id).filter(Boolean);
    t.same([...new Set(patients)].length, patients.length, 'one row per patient');
    t.ok(patients.includes(w.A) && patients.includes(w.B));
  });

  t.test('the files and the status are the starter\'s only', async (t) => {
    const { id, manifest } = await exportOf('/fhir/$export?_type=Patient');
    const other = who('assigned doctor').token;
    t.equal((await status(id, other)).statusCode, 404, 'status: 404 for another user');
    const file = new URL(manifest.output[0].url).pathname;
    t.equal((await h.fhir({ method: 'GET', url: file, token: other })).statusCode, 404, 'file: 404 for another user');
    t.equal((await h.fhir({ method: 'GET', url: file, token: who('insurer client').token })).statusCode, 404, 'file: 404 for a client');
    t.equal((await h.fhir({ method: 'GET', url: file, token: null })).statusCode, 401, 'file: 401 without a token');
    t.equal((await h.fhir({ method: 'GET', url: `${file.replace(/Patient\.ndjson$/, '..%2F..%2Fhms.db')}` })).statusCode, 404, 'no path out of the export');
    t.equal((await h.fhir({ method: 'GET', url: file.replace('Patient', 'Observation') })).statusCode, 404, 'a file the manifest does not list');
  });

  t.test('narrowed by access: a doctor exports the patients assigned to them', async (t) => {
    const doctor = who('assigned doctor');
    const { manifest } = await exportOf('/fhir/Patient/$export', doctor.token);
    const out = await files(manifest, doctor.token);
    t.same(out.Patient?.map((p) => p.id), [w.A], 'only patient A');
    for (const [type, resources] of Object.entries(out)) {
      for (const r of resources) {
        if (type === 'Patient') continue;
        const text = JSON.stringify(r);
        t.notOk(text.includes(`Patient/${w.B}`), `${type}/${r.id} is not patient B's`);
      }
    }
    t.ok(out.Observation?.length, 'A\'s observations');
    t.notOk(out.Practitioner, 'Patient level: the compartment only');
  });

  t.test('system scopes: an insurer client exports its scopes\' types only', async (t) => {
    const insurer = who('insurer client');
    const { manifest } = await exportOf('/fhir/$export', insurer.token);
    const types = manifest.output.map((o: J) => o.type).sort();
    t.ok(types.length > 0);
    for (const type of types) t.ok(['Coverage', 'Invoice', 'Patient'].includes(type), `${type} is within system/Patient.rs system/Coverage.rs system/Invoice.rs`);
    const refused = await kickOff('/fhir/$export?_type=Observation', insurer.token);
    t.equal(refused.statusCode, 403, refused.body);
    t.match(refused.json().issue[0].diagnostics, /system\/Observation/);
  });

  t.test('Group level: the members\' compartments', async (t) => {
    const group = await w.post('Group', { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${w.B}` } }] });
    const { manifest } = await exportOf(`/fhir/Group/${group.id}/$export?_type=Patient,Encounter`);
    const out = await files(manifest);
    t.same(out.Patient?.map((p) => p.id), [w.B]);
    t.ok(out.Encounter?.length);
    for (const e of out.Encounter ?? []) t.equal(e.subject.reference, `Patient/${w.B}`);
    t.equal((await kickOff('/fhir/Group/no-such-group/$export')).statusCode, 404, 'an unknown Group: 404');
    // a doctor who may not read B's record does not export it through a Group
    const doctor = who('assigned doctor');
    const res = await kickOff(`/fhir/Group/${group.id}/$export?_type=Patient`, doctor.token);
    if (res.statusCode === 202) {
      await run(idOf(res));
      const m = (await status(idOf(res), doctor.token)).json();
      t.same(m.output ?? [], [], 'nothing of a patient out of reach');
    } else t.ok([403, 404].includes(res.statusCode), `or the Group itself is out of reach: ${res.body.slice(0, 300)}`);
  });

  t.test('_since, _typeFilter, _outputFormat, POST kick-off', async (t) => {
    const future = await exportOf('/fhir/$export?_type=Patient&_since=2999-01-01T00:00:00Z');
    t.same(future.manifest.output, [], 'nothing changed since a future instant: no files');
    const filtered = await exportOf(`/fhir/$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?code=http://loinc.org|15074-8')}&_outputFormat=${encodeURIComponent('application/ndjson')}`);
    const obs = (await files(filtered.manifest)).Observation ?? [];
    t.ok(obs.length >= 2);
    for (const o of obs) t.equal(o.code.coding[0].code, '15074-8');
    const two = await exportOf(`/fhir/$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?code=http://loinc.org|15074-8,Observation?code=http://loinc.org|8867-4')}`);
    t.ok(((await files(two.manifest)).Observation ?? []).length >= obs.length + 2, 'two filters: either matches');
    const post = await h.fhir({
      method: 'POST', url: '/fhir/$export', headers: ASYNC,
      payload: { resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Patient' }, { name: '_outputFormat', valueString: 'ndjson' }] },
    });
    t.equal(post.statusCode, 202, post.body);
    await run(idOf(post));
    const m = (await status(idOf(post))).json();
    t.same(m.output.map((o: J) => o.type), ['Patient']);
  });

  t.test('refusals: 400 with an OperationOutcome, nothing recorded', async (t) => {
    const before = Number((await h.db('bulk_exports').count({ n: '*' }))[0]!.n);
    const cases: [string, Record<string, string>, number, RegExp][] = [
      ['/fhir/$export', { accept: 'application/fhir+json' }, 400, /respond-async/],
      ['/fhir/$export?_outputFormat=text/csv', ASYNC, 400, /_outputFormat/],
      ['/fhir/$export?_type=NoSuchType', ASYNC, 400, /NoSuchType/],
      ['/fhir/Patient/$export?_type=Practitioner', ASYNC, 400, /compartment/],
      ['/fhir/$export?_since=yesterday', ASYNC, 400, /_since/],
      ['/fhir/$export?_since=2024-01-01', ASYNC, 400, /_since/],
      ['/fhir/$export?_color=blue', ASYNC, 400, /_color/],
      ['/fhir/$export?includeAssociatedData=LatestProvenanceResources', ASYNC, 400, /not supported/],
      [`/fhir/$export?_type=Patient&_typeFilter=${encodeURIComponent('Observation?code=x')}`, ASYNC, 400, /does not include/],
      [`/fhir/$export?_type=Patient&_typeFilter=${encodeURIComponent('Patient?nonsense=1')}`, ASYNC, 400, /nonsense/],
      [`/fhir/$export?_type=Patient&_typeFilter=${encodeURIComponent('Patient?_count=1')}`, ASYNC, 400, /not a filter/],
    ];
    for (const [path, headers, code, message] of cases) {
      const res = await kickOff(path, h.token, headers);
      t.equal(res.statusCode, code, `${path}: ${res.body.slice(0, 200)}`);
      t.equal(res.json().resourceType, 'OperationOutcome');
      t.match(res.json().issue[0].diagnostics, message, path);
    }
    // system/Observation.r: read, not search
    const forbidden = await kickOff('/fhir/$export?_type=Observation', who('narrow client').token);
    t.equal(forbidden.statusCode, 403, `a type the caller may not search: 403 ${forbidden.body.slice(0, 300)}`);
    t.equal(Number((await h.db('bulk_exports').count({ n: '*' }))[0]!.n), before, 'no export recorded');
    t.equal((await status('0190b7d2-0000-7000-8000-000000000000')).statusCode, 404);
    t.equal((await status('not-an-id')).statusCode, 404);
  });

  t.test('cancel: DELETE -> 202, then 404; a queued job does not run; files removed', async (t) => {
    const queued = idOf(await kickOff('/fhir/$export?_type=Patient'));
    const del = await h.fhir({ method: 'DELETE', url: `/fhir/$export-status/${queued}` });
    t.equal(del.statusCode, 202, del.body);
    t.equal((await status(queued)).statusCode, 404, 'status after DELETE: 404');
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/$export-status/${queued}` })).statusCode, 404, 'a second DELETE: 404');
    await run(queued);
    t.notOk(existsSync(join(h.config.HMS_EXPORT_DIR, queued)), 'the cancelled job wrote nothing');
    const { id, manifest } = await exportOf('/fhir/$export?_type=Patient');
    t.ok(existsSync(join(h.config.HMS_EXPORT_DIR, id)));
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/$export-status/${id}` })).statusCode, 202);
    t.notOk(existsSync(join(h.config.HMS_EXPORT_DIR, id)), 'a finished export\'s files are removed');
    t.equal((await h.fhir({ method: 'GET', url: new URL(manifest.output[0].url).pathname })).statusCode, 404);
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/$export-status/${id}`, token: who('finance').token })).statusCode, 404, 'another user cannot cancel');
  });

  t.test('a run is stopped by DELETE at its next page', async (t) => {
    const id = idOf(await kickOff('/fhir/$export?_type=Patient,Observation'));
    // cancel from inside the run, after its first page
    const { cancelExport } = await import('../../src/fhir/bulk/export-jobs.js');
    const { writeExport } = await import('../../src/fhir/bulk/export-writer.js');
    const { workerContext } = await import('../../src/workers/context.js');
    const { markRunning, findExport } = await import('../../src/fhir/bulk/export-jobs.js');
    await markRunning(h.db, id);
    const job = (await findExport(h.db, id))!;
    let pages = 0;
    const dir = join(h.config.HMS_EXPORT_DIR, id);
    const result = await writeExport(workerContext(jobDeps(h), { job: { queue: 'bulk-export', id } }), job.level, job.params, {
      dir, pageSize: 1,
      onPage: async () => { pages++; if (pages === 1) await cancelExport(h.db, id); return (await findExport(h.db, id))!.status === 'running'; },
    });
    t.equal(result.stopped, true);
    t.equal(pages, 1);
    t.same(readdirSync(dir), [], 'the partial file is removed');
  });

  t.test('expiry: 404 from the moment of expiry, files removed by the export-expiry job', async (t) => {
    const { id, manifest } = await exportOf('/fhir/$export?_type=Patient');
    await h.db('bulk_exports').where({ id }).update({ expires_at: '2000-01-01 00:00:00' });
    t.equal((await status(id)).statusCode, 404);
    t.equal((await h.fhir({ method: 'GET', url: new URL(manifest.output[0].url).pathname })).statusCode, 404);
    t.ok(existsSync(join(h.config.HMS_EXPORT_DIR, id)));
    const r = await exportExpiry({}, jobDeps(h));
    t.ok(Number(r.removed) >= 1);
    t.notOk(existsSync(join(h.config.HMS_EXPORT_DIR, id)));
    t.equal((await h.db('bulk_exports').where({ id }).first('status')).status, 'expired');
  });

  t.test('a job whose starter was deactivated fails, and says so', async (t) => {
    const finance = who('finance');
    const res = await kickOff('/fhir/$export?_type=Invoice', finance.token);
    t.equal(res.statusCode, 202, res.body);
    const id = idOf(res);
    await h.db('users').where({ id: finance.userId }).update({ status: 'suspended' });
    await run(id).catch(() => undefined);
    const row = await h.db('bulk_exports').where({ id }).first('status', 'failure');
    t.equal(row.status, 'failed');
    t.match(row.failure, /no longer active/);
    await h.db('users').where({ id: finance.userId }).update({ status: 'active' });
    const st = await status(id, finance.token);
    t.equal(st.statusCode, 422, st.body);
    t.equal(st.json().resourceType, 'OperationOutcome');
  });
});
