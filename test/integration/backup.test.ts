/**
 * `hms backup`, `hms backup verify` and `hms restore` (src/backup/): on the embedded default
 * (SQLite's online backup API) a backup taken while the API writes, encrypted, checksummed,
 * verified, refused when damaged or over the live database, restored and served again; retention
 * and the offsite copy. On MariaDB (with DATABASE_URL: a private mariadbd with its binlog on) the
 * drill: back up, keep writing, an accidental DELETE of many patients, more writes, then a restore
 * to just before the DELETE: every row back, nothing after it, the audit chain intact; and the
 * same from binlog files shipped by `hms backup binlogs`.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp } from '../../src/api/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createDb, migrateLatest } from '../../src/db/knex.js';
import { verifyAuditChain } from '../../src/db/audit-chain.js';
import { applyRetention, listBackups, takeBackup } from '../../src/backup/backup.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { shipBinlogs } from '../../src/backup/binlogs.js';
import { withDatabase } from '../../src/backup/mysql-tools.js';
import { testApp, testConfig, type TestApp } from '../helpers/app.js';
import { tempDir } from '../helpers/cli.js';
import { until } from '../helpers/processes.js';
import { MariadbServer, MARIADBD } from '../helpers/mariadb-server.js';

const KEY = randomBytes(32).toString('base64');

async function createPatients(h: TestApp, n: number, family: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', name: [{ family, given: [`G${i}`] }], birthDate: '1980-02-03' } });
    if (res.statusCode !== 201) throw new Error(`create ${res.statusCode} ${res.body}`);
    ids.push(String(res.json().id));
  }
  return ids;
}

t.test('SQLite: backup while serving, encrypted and verified; damage and the live database refused; restored and served; retention and offsite', { skip: process.env.DATABASE_URL ? 'the embedded default: the SQLite run' : false }, async (t) => {
  const offsite = tempDir(t);
  const h = await testApp(t, { HMS_BACKUP_KEYS: KEY, HMS_BACKUP_OFFSITE_DIR: offsite });
  const ids = await createPatients(h, 5, 'Backupfamily');
  // a backup while requests keep writing
  const [backup] = await Promise.all([takeBackup(h.config), createPatients(h, 5, 'Duringbackup')]);
  const m = backup.manifest;
  t.equal(m.engine, 'sqlite');
  t.equal(m.tool, 'sqlite-online-backup');
  t.ok(m.rows.patients! >= 5, 'the snapshot holds the patients created before it');
  t.match(m.encryption, { algorithm: 'aes-256-gcm', keyId: /^[0-9a-f]{16}$/ });
  t.match(m.file.name, /\.gz\.enc$/);
  t.notOk(readFileSync(join(backup.dir, m.file.name)).includes(Buffer.from('Backupfamily')), 'no patient data in clear in the file');
  t.ok(existsSync(join(offsite, m.id, 'manifest.json')), 'copied offsite');

  const v = await verifyBackup(h.config);
  t.ok(v.ok, 'verify: counts and audit chain hold');
  t.equal(v.mismatches.length, 0);
  t.ok(v.audit.intact && v.audit.rows > 0, 'the restored security log verifies');

  await t.rejects(restoreBackup(h.config, { dataDir: h.config.HMS_DATA_DIR }), /is the live database/, 'never over the live database without --force');
  await t.rejects(verifyBackup({ ...h.config, HMS_BACKUP_KEYS: randomBytes(32).toString('base64') }), /does not hold/, 'another key cannot read it');

  const target = tempDir(t);
  await restoreBackup(h.config, { dataDir: target });
  const config = loadConfig({}, { HMS_DATA_DIR: target, LOG_LEVEL: 'silent', HMS_MAX_EVENT_LOOP_DELAY: 0 });
  const restored = await buildApp({ config, logger: false });
  t.teardown(() => restored.close());
  const read = await restored.inject({ method: 'GET', url: `/fhir/Patient/${ids[0]}`, headers: { authorization: `Bearer ${h.token}` } });
  t.equal(read.statusCode, 200, 'the restored database serves the patient (and the admin\'s session)');
  t.match(read.json(), { name: [{ family: 'Backupfamily' }] });

  // an edited manifest (another row count, the encryption dropped) is refused
  const manifestPath = join(backup.dir, 'manifest.json');
  const original = readFileSync(manifestPath, 'utf8');
  writeFileSync(manifestPath, JSON.stringify({ ...JSON.parse(original), rows: { ...m.rows, patients: 1 } }));
  await t.rejects(verifyBackup(h.config), /signature does not match/, 'an altered manifest is refused');
  writeFileSync(manifestPath, JSON.stringify({ ...JSON.parse(original), encryption: null }));
  await t.rejects(verifyBackup(h.config), /not encrypted although HMS_BACKUP_KEYS is set/, 'a manifest that drops the encryption is refused');
  writeFileSync(manifestPath, original);

  // damage: one byte of the file
  const path = join(backup.dir, m.file.name);
  const bytes = readFileSync(path);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(path, bytes);
  await t.rejects(verifyBackup(h.config), /SHA-256 .* is not the manifest's/, 'a damaged file is refused before anything is restored');

  // retention: the damaged one is old now, a new one is taken; the newest is always kept
  const second = await takeBackup(h.config);
  const removed = await applyRetention(h.config, new Date(Date.now() + (h.config.HMS_BACKUP_RETENTION_DAYS + 1) * 86_400_000));
  t.same(removed, [m.id], 'the backup past retention is removed');
  t.same((await listBackups(h.config.HMS_BACKUP_DIR!)).map((b) => b.manifest.id), [second.manifest.id], 'the newest stays, even when old');
});

t.test('MariaDB: the drill: back up, keep writing, an accidental DELETE of many patients, restore to just before it', { skip: !process.env.DATABASE_URL ? 'needs DATABASE_URL (the MariaDB run)' : !MARIADBD ? 'mariadbd is not installed' : false }, async (t) => {
  const server = await MariadbServer.start(t);
  const url = await server.database('hms_drill');
  const dir = tempDir(t);
  const h = await testApp(t, { DATABASE_URL: url, HMS_DATA_DIR: dir });
  const shipper = await shipBinlogs(h.config, () => undefined);
  t.teardown(() => shipper.stop());

  const before = await createPatients(h, 30, 'Drillbefore');
  const backup = await takeBackup(h.config);
  t.match(backup.manifest.binlog, { file: /^binlog\.\d{6}$/, position: Number }, 'the snapshot\'s binlog position');
  t.equal(backup.manifest.rows.patients, 30);
  const verified = await verifyBackup(h.config);
  t.ok(verified.ok, `verify: ${JSON.stringify(verified.mismatches)}`);

  const afterBackup = await createPatients(h, 10, 'Drillafter');
  const chainBefore = await verifyAuditChain(h.db);
  const deleted = await h.db('patients').whereIn('id', [...before.slice(0, 25), ...afterBackup.slice(0, 5)]).del();
  t.equal(deleted, 30, 'the accidental DELETE of 30 patients');
  const late = await createPatients(h, 3, 'Drilllate');

  const restored = await restoreBackup(h.config, { database: 'hms_drill_restored', stopBefore: 'DELETE\\s+FROM\\s+`?patients' });
  t.match(restored.replay?.stop, /before the transaction at binlog\.\d{6}:\d+/);
  const rdb = createDb({ ...h.config, DATABASE_URL: withDatabase(url, 'hms_drill_restored') });
  t.teardown(() => rdb.destroy());
  const ids = new Set(((await rdb('patients').select('id')) as { id: string }[]).map((r) => r.id));
  t.ok([...before, ...afterBackup].every((id) => ids.has(id)), 'every patient written before the DELETE is back, those after the backup too');
  t.notOk(late.some((id) => ids.has(id)), 'nothing written after the DELETE');
  t.equal(ids.size, 40);
  const chain = await verifyAuditChain(rdb);
  t.ok(chain.intact, 'the restored audit chain is intact');
  t.ok(chain.rows >= chainBefore.rows, 'and holds every audit row committed before the DELETE');

  // the same from the shipped binlog files
  await until(async () => readdirSync(h.config.HMS_BINLOG_DIR!).length, (n) => n > 0, 10_000);
  const shipped = await restoreBackup(h.config, { database: 'hms_drill_shipped', stopBefore: 'DELETE\\s+FROM\\s+`?patients', binlogs: h.config.HMS_BINLOG_DIR });
  t.same(shipped.replay?.stop, restored.replay?.stop, 'the shipped binlog stops at the same transaction');
  const sdb = createDb({ ...h.config, DATABASE_URL: withDatabase(url, 'hms_drill_shipped') });
  t.teardown(() => sdb.destroy());
  t.equal(Number(((await sdb('patients').count({ n: '*' }).first()) as { n: number }).n), 40);
  await t.rejects(restoreBackup(h.config, { database: 'hms_drill' }), /is the live database/, 'never over the live database without --force');

  // the same stop given as FILE:POS: mariadb-binlog applies it to the last file, so the list ends there
  const [, file, pos] = /at (binlog\.\d{6}):(\d+)/.exec(restored.replay!.stop)!;
  await restoreBackup(h.config, { database: 'hms_drill_position', stopPosition: { file: file!, position: Number(pos) } });
  const pdb = createDb({ ...h.config, DATABASE_URL: withDatabase(url, 'hms_drill_position') });
  t.teardown(() => pdb.destroy());
  t.equal(Number(((await pdb('patients').count({ n: '*' }).first()) as { n: number }).n), 40, '--stop-position FILE:POS stops at the same transaction');
  await t.rejects(restoreBackup(h.config, { database: 'hms_drill_nofile', stopPosition: { file: 'binlog.999999', position: 4 } }), /is not among the binlog files/);
  await t.rejects(restoreBackup(h.config, { database: 'hms_drill_badto', to: 'yesterday' }), /--to needs/, 'a bad --to is refused before anything is restored');
});

t.test('MariaDB without a binlog (the shared server): a backup restores as taken, and says it cannot go to a point in time', { skip: !process.env.DATABASE_URL ? 'needs DATABASE_URL (the MariaDB run)' : false }, async (t) => {
  const config: Config = testConfig(t);
  const db = createDb(config);
  t.teardown(() => db.destroy());
  await migrateLatest(db);
  const logBin = Number(((await db.raw('SELECT @@log_bin AS b')) as [{ b: number }[]])[0][0]!.b);
  if (logBin === 1) { t.pass('this server writes a binlog: covered by the drill'); return; }
  const backup = await takeBackup(config);
  t.equal(backup.manifest.binlog, null);
  const name = `hms_nobinlog_${randomBytes(4).toString('hex')}`;
  t.teardown(() => db.raw(`DROP DATABASE IF EXISTS ${name}`));
  await t.rejects(restoreBackup(config, { database: name, to: '2030-01-01 00:00:00' }), /no binlog position/);
});
