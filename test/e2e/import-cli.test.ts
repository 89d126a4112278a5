/**
 * The real `hms import DIR` in a child process, on an embedded SQLite database in a temp dir:
 * a directory holding Synthea's hospitalInformation and practitionerInformation Bundles, a
 * patient record whose providers are conditional references, and an NDJSON file with one line
 * that is not JSON. The shared bundles go first (whatever the names sort as), every entry is
 * counted by type in the summary, the bad line is refused with its line number (exit code 2);
 * run again, the conditional creates are 'unchanged' and the NDJSON resources (written with PUT
 * on their ids) 'updated'. The audit rows of the writes name the import. It acts as an admin
 * (`--as`): Synthea's Conditions name no recorder, which the seed table needs.
 */
import t, { type Test } from 'tap';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { childEnv, hms, within, ROOT } from '../helpers/processes.js';
import { loadConfig } from '../../src/config.js';
import { createDb } from '../../src/db/knex.js';

const exchange = join(ROOT, 'test', 'fixtures', 'synthea-exchange');
const RECORD = 'Stanley_Balistreri_08ce8462-f56a-4fd6-b986-ea75c5c6edb2.json';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Row = { stored: number; updated: number; unchanged: number; refused: number };

function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The summary table's rows by type. */
function summaryOf(stdout: string): Record<string, Row> {
  const out: Record<string, Row> = {};
  for (const m of stdout.matchAll(/^ {2}(\S+) +(\d+) +(\d+) +(\d+) +(\d+)$/gm)) {
    out[m[1]!] = { stored: Number(m[2]), updated: Number(m[3]), unchanged: Number(m[4]), refused: Number(m[5]) };
  }
  return out;
}

const typesIn = (file: string): Record<string, number> => {
  const b = JSON.parse(readFileSync(join(exchange, file), 'utf8')) as { entry: { resource: Json }[] };
  const c: Record<string, number> = {};
  for (const e of b.entry) c[e.resource.resourceType] = (c[e.resource.resourceType] ?? 0) + 1;
  return c;
};

t.setTimeout(180_000);

t.test('hms import DIR: shared bundles first, a summary by type, refusals with their line, exit 2; again: unchanged', async (t) => {
  const data = tempDir(t, 'hms-import-db-');
  const input = tempDir(t, 'hms-import-in-');
  for (const f of ['hospitalInformation.json', 'practitionerInformation.json', RECORD]) copyFileSync(join(exchange, f), join(input, f));
  const patientId = randomUUID();
  const lines = [
    JSON.stringify({ resourceType: 'Patient', id: patientId, name: [{ family: 'Ndjson', given: ['Nora'] }], gender: 'female', birthDate: '1980-02-03' }),
    '',
    '{"resourceType": "Observation", "status": "final",',
    JSON.stringify({ resourceType: 'Organization', id: randomUUID(), name: 'NDJSON Clinic', identifier: [{ system: 'urn:test:ndjson', value: randomUUID() }] }),
  ];
  // a name that sorts before the shared bundles: the order must come from what the files are
  writeFileSync(join(input, 'AAA-first-by-name.ndjson'), `${lines.join('\n')}\n`);
  const env = childEnv({ HMS_DATA_DIR: data, DATABASE_URL: undefined, REDIS_URL: undefined });

  const hospital = typesIn('hospitalInformation.json');
  const practitioners = typesIn('practitionerInformation.json');
  const record = typesIn(RECORD);

  // an admin to act as: the seed tables record a writer (Condition.recorder) that Synthea does not name
  const email = `import-${randomUUID()}@cli.test.example.org`;
  const admin = hms(t, ['create-admin', '--email', email, '--password', 'a long enough e2e password'], env);
  t.equal((await within(admin.exited, 30_000, 'create-admin exiting')).code, 0, `create-admin (stderr: ${admin.stderr()})`);

  const first = hms(t, ['import', '--as', email, input], env);
  const done = await within(first.exited, 120_000, 'hms import exiting');
  t.equal(done.code, 2, `exit code 2: a line was refused (stderr: ${first.stderr().slice(-600)})`);
  const s1 = summaryOf(first.stdout());
  t.same(s1.Organization, { stored: hospital.Organization! + 1, updated: 0, unchanged: 0, refused: 0 }, 'Organizations: the hospitals and the NDJSON one stored');
  t.same(s1.Location, { stored: hospital.Location!, updated: 0, unchanged: 0, refused: 0 }, 'Locations stored');
  t.same(s1.Practitioner, { stored: practitioners.Practitioner!, updated: 0, unchanged: 0, refused: 0 }, 'Practitioners stored');
  t.same(s1.Patient, { stored: 2, updated: 0, unchanged: 0, refused: 0 }, 'the record\'s Patient and the NDJSON one stored');
  t.same(s1.Observation, { stored: record.Observation!, updated: 0, unchanged: 0, refused: 0 }, 'the record\'s Observations stored');
  t.equal(s1['(unreadable)']?.refused, 1, 'the bad line refused');
  t.match(first.stdout(), /a line that is not JSON/, 'saying why');
  t.match(first.stdout(), /AAA-first-by-name\.ndjson line 3/, 'named by its line number');
  const total = Object.values(record).reduce((a, b) => a + b, 0) + hospital.Organization! + hospital.Location! + practitioners.Practitioner! + 3;
  t.equal(s1.total?.stored, total - 1, `every other entry stored (${total - 1})`);
  const order = [...first.stderr().matchAll(/^importing (\S+)$/gm)].map((m) => m[1]);
  t.same(order, ['hospitalInformation.json', 'practitionerInformation.json', 'AAA-first-by-name.ndjson', RECORD], 'hospitals, then practitioners, then the rest by name (plain progress lines: stderr is not a terminal)');

  const second = hms(t, ['import', '--as', email, input], env);
  const again = await within(second.exited, 120_000, 'the second hms import exiting');
  t.equal(again.code, 2, 'exit code 2 again (the same bad line)');
  const s2 = summaryOf(second.stdout());
  t.same(s2.Location, { stored: 0, updated: 0, unchanged: hospital.Location!, refused: 0 }, 'the conditional creates of Locations: unchanged');
  t.same(s2.Practitioner, { stored: 0, updated: 0, unchanged: practitioners.Practitioner!, refused: 0 }, 'and of Practitioners: unchanged');
  t.same(s2.Organization, { stored: 0, updated: 1, unchanged: hospital.Organization!, refused: 0 }, 'and of Organizations; the NDJSON one (PUT on its id) updated');
  t.same(s2.Patient, { stored: 1, updated: 1, unchanged: 0, refused: 0 }, 'the record (plain creates) stored again, the NDJSON Patient updated');

  // the audit rows of the writes name the import run and the file
  const db = createDb(loadConfig({ HMS_DATA_DIR: data, LOG_LEVEL: 'silent' }));
  t.teardown(() => db.destroy());
  const rows = await db('security_logs').where({ resource_type: 'Patient', resource_id: patientId }).select('additional_data') as { additional_data: string }[];
  t.ok(rows.length >= 2, `the NDJSON Patient's writes are audited (${rows.length} rows)`);
  for (const r of rows) t.match(JSON.parse(r.additional_data), { job: { queue: 'import', id: /AAA-first-by-name\.ndjson/ } }, 'naming the import and its file');

  // hms export: what was imported comes out as NDJSON, one file per type, audited per patient
  const out = tempDir(t, 'hms-export-out-');
  const exp = hms(t, ['export', '--type', 'Patient,Location', out], env);
  const exported = await within(exp.exited, 60_000, 'hms export exiting');
  t.equal(exported.code, 0, `hms export exit code 0 (stderr: ${exp.stderr().slice(-600)})`);
  const patients = readFileSync(join(out, 'Patient.ndjson'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  t.equal(patients.length, Number((await db('patients').whereNull('deleted_at').count({ n: '*' }))[0]!.n), 'every patient exported');
  t.ok(patients.some((p) => p.id === patientId && p.name[0].family === 'Ndjson'), 'the NDJSON Patient among them');
  t.match(exp.stdout(), /^Patient\s+\d+\s+Patient\.ndjson$/m, 'a summary line per type');
  const locations = readFileSync(join(out, 'Location.ndjson'), 'utf8').split('\n').filter(Boolean);
  t.equal(locations.length, hospital.Location!, 'the Locations');
  const audited = await db('security_logs').where({ action: 'export', patient_id: patientId }).count({ n: '*' });
  t.equal(Number(audited[0]!.n), 1, 'one export row for the patient');
  const refused = hms(t, ['export', '--type', 'NoSuchType', out], env);
  t.equal((await within(refused.exited, 30_000, 'hms export refusing')).code, 1, 'an unknown type: exit 1');
  t.match(refused.stderr(), /NoSuchType/);
});
