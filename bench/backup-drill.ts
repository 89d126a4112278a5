/**
 * The backup drill (docs/backup.md), on this machine: a private MariaDB server with its binlog on,
 * N patients with their records (`hms seed`), `hms backup binlogs` shipping, then
 *
 *   1. `hms backup` (encrypted), timed against its floor: `mariadb-dump | gzip` to /dev/null;
 *   2. writes acknowledged by the API (POST Patient, audited) while an accidental DELETE of many
 *      patients runs, and more after it;
 *   3. PITR: `hms restore --stop-before 'DELETE FROM patients'`: every acknowledged write before
 *      the DELETE and every deleted patient back, nothing after it, the audit chain intact (RTO);
 *   4. the disaster: the primary SIGKILLed while writes go on, its disk taken for lost; the newest
 *      backup and the shipped binlog restored (--replay) onto a second server: the acknowledged
 *      writes missing are the RPO (count, and seconds between the last one restored and the last
 *      one acknowledged); the restore's time is the RTO. Both against the seed's 15 min and 4 h.
 *
 * Environment: DRILL_PATIENTS (10000), DRILL_DELETE (1000 patients), DRILL_WRITE_SECONDS (8).
 * Run: npx tsx bench/backup-drill.ts
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { buildApp } from '../src/api/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { createDb, migrateLatest } from '../src/db/knex.js';
import { seedDatabase } from '../src/db/seed/seed-all.js';
import { createAdmin } from '../src/auth/admin.js';
import { startSession } from '../src/auth/sessions.js';
import { verifyAuditChain } from '../src/db/audit-chain.js';
import { takeBackup } from '../src/backup/backup.js';
import { restoreBackup } from '../src/backup/restore.js';
import { shipBinlogs } from '../src/backup/binlogs.js';
import { clientProgram, mysqlTarget, runClient, withDatabase } from '../src/backup/mysql-tools.js';
import { MariadbServer } from '../test/helpers/mariadb-server.js';

const PATIENTS = Number(process.env.DRILL_PATIENTS ?? 10_000);
const DELETE = Number(process.env.DRILL_DELETE ?? 1000);
const WRITE_SECONDS = Number(process.env.DRILL_WRITE_SECONDS ?? 8);
const RPO_TARGET = 15 * 60;
const RTO_TARGET = 4 * 3600;

const cleanups: (() => Promise<void> | void)[] = [];
const teardown = { teardown: (fn: () => Promise<void> | void) => { cleanups.push(fn); } };
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const log = (line: string) => process.stdout.write(`${line}\n`);

interface Ack { id: string; at: number }

/** Creates patients through the API with a few callers at once until stop() is called; each acknowledged create with its time. */
function writer(app: FastifyInstance, token: string): { acks: Ack[]; errors: number; stop(): Promise<void> } {
  let running = true;
  const state = { acks: [] as Ack[], errors: 0 };
  const one = async () => {
    while (running) {
      const res = await app.inject({
        method: 'POST', url: '/fhir/Patient', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
        payload: { resourceType: 'Patient', name: [{ family: 'Drill', given: ['Writer'] }], birthDate: '1990-01-01' },
      }).catch(() => undefined);
      if (res?.statusCode === 201) state.acks.push({ id: String(res.json().id), at: Date.now() });
      else state.errors++;
    }
  };
  const callers = Array.from({ length: 4 }, one);
  return { get acks() { return state.acks; }, get errors() { return state.errors; }, async stop() { running = false; await Promise.all(callers); } };
}

async function ids(db: Knex, list: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < list.length; i += 1000) for (const r of (await db('patients').whereIn('id', list.slice(i, i + 1000)).select('id')) as { id: string }[]) found.add(r.id);
  return found;
}

async function floorBackup(config: Config): Promise<number> {
  const t0 = performance.now();
  const target = mysqlTarget(config.DATABASE_URL!);
  const dump = runClient(clientProgram(['mariadb-dump', 'mysqldump']), target, ['--single-transaction', '--quick', '--hex-blob', '--no-tablespaces', target.database]);
  await Promise.all([pipeline(dump.child.stdout!, createGzip({ level: 6 }), createWriteStream('/dev/null')), dump.done]);
  return seconds(t0);
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'hms-drill-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const primary = await MariadbServer.start(teardown, { bufferPool: '1G' });
  const url = await primary.database('hms_drill');
  const config = loadConfig({}, { DATABASE_URL: url, HMS_DATA_DIR: join(work, 'data'), LOG_LEVEL: 'silent', HMS_BACKUP_KEYS: randomBytes(32).toString('base64'), HMS_MAX_EVENT_LOOP_DELAY: 0, HMS_DB_POOL_MAX: 8 });
  const db = createDb(config);
  cleanups.unshift(() => db.destroy());
  await migrateLatest(db);
  let t0 = performance.now();
  const seeded = await seedDatabase(db, { patients: PATIENTS, batch: 200 });
  log(`seeded ${PATIENTS} patients: ${seeded.rows} rows + ${seeded.indexRows} index rows in ${seconds(t0).toFixed(0)} s`);
  const shipper = await shipBinlogs(config, () => undefined);
  cleanups.unshift(() => shipper.stop());

  // the floor before and after (the first reads a cold buffer pool): the faster of the two
  const floorBefore = await floorBackup(config);
  t0 = performance.now();
  const backup = await takeBackup(config);
  const backupSeconds = seconds(t0);
  const floor = Math.min(floorBefore, await floorBackup(config));
  const rows = Object.values(backup.manifest.rows).reduce((a, b) => a + b, 0);
  log(`backup: ${rows} rows, ${(backup.manifest.file.bytes / 1048576).toFixed(1)} MiB in ${backupSeconds.toFixed(1)} s; floor (mariadb-dump | gzip) ${floor.toFixed(1)} s; ratio ${(floor / backupSeconds).toFixed(2)}`);

  const app = await buildApp({ config, db, logger: false });
  cleanups.unshift(() => app.close());
  const adminId = await createAdmin(db, { email: 'drill@example.org', password: 'a drill admin password', name: 'Drill', cost: 12 });
  const token = await startSession(db, adminId, { ttlSeconds: 3600 });

  // writes, the accidental DELETE in the middle, more writes
  const victims = ((await db('patients').orderBy('id').limit(DELETE).select('id')) as { id: string }[]).map((r) => r.id);
  const w = writer(app, token);
  await new Promise((r) => setTimeout(r, (WRITE_SECONDS * 1000) / 2));
  const deleteStarted = Date.now();
  const deleted = await db.raw(`DELETE FROM patients WHERE id IN (${victims.map(() => '?').join(',')})`, victims);
  const deleteDone = Date.now();
  log(`accidental DELETE of ${(deleted as [{ affectedRows: number }])[0].affectedRows} patients (and their records, by cascade)`);
  await new Promise((r) => setTimeout(r, (WRITE_SECONDS * 1000) / 2));
  await w.stop();
  const beforeDelete = w.acks.filter((a) => a.at < deleteStarted).map((a) => a.id);
  const afterDelete = w.acks.filter((a) => a.at > deleteDone).map((a) => a.id);

  t0 = performance.now();
  const pitr = await restoreBackup(config, { database: 'hms_drill_pitr', stopBefore: 'DELETE\\s+FROM\\s+`?patients' });
  const pitrSeconds = seconds(t0);
  const rdb = createDb({ ...config, DATABASE_URL: withDatabase(url, 'hms_drill_pitr') });
  cleanups.unshift(() => rdb.destroy());
  const restoredVictims = await ids(rdb, victims);
  const restoredBefore = await ids(rdb, beforeDelete);
  const restoredAfter = await ids(rdb, afterDelete);
  const chain = await verifyAuditChain(rdb);
  log(`PITR (${pitr.replay?.stop}): ${restoredVictims.size}/${victims.length} deleted patients back, ${restoredBefore.size}/${beforeDelete.length} writes acknowledged before the DELETE, ${restoredAfter.size} of ${afterDelete.length} after it; audit chain ${chain.intact ? 'intact' : 'BROKEN'} (${chain.rows} rows); ${pitrSeconds.toFixed(1)} s`);

  // the disaster: the primary killed while writes go on
  const w2 = writer(app, token);
  await new Promise((r) => setTimeout(r, 3000));
  await primary.kill();
  const killedAt = Date.now();
  await w2.stop();
  const acked = w2.acks.filter((a) => a.at <= killedAt);
  await new Promise((r) => setTimeout(r, 500));
  await shipper.stop();
  const standby = await MariadbServer.start(teardown, { bufferPool: '1G' });
  await standby.database('hms_drill');
  const standbyConfig = { ...config, DATABASE_URL: standby.url('hms_drill') };
  t0 = performance.now();
  await restoreBackup(standbyConfig, { database: 'hms_drill', replay: true, binlogs: config.HMS_BINLOG_DIR, force: true });
  const rto = seconds(t0);
  const sdb = createDb(standbyConfig);
  cleanups.unshift(() => sdb.destroy());
  const back = await ids(sdb, acked.map((a) => a.id));
  const lost = acked.filter((a) => !back.has(a.id));
  const lastBack = Math.max(0, ...acked.filter((a) => back.has(a.id)).map((a) => a.at));
  const rpo = lost.length ? (Math.max(...lost.map((a) => a.at)) - lastBack) / 1000 : 0;
  const schain = await verifyAuditChain(sdb);
  log(`disaster: ${acked.length} writes acknowledged in the last 3 s, ${lost.length} lost (RPO ${rpo.toFixed(1)} s); restored onto a new server in ${rto.toFixed(1)} s (RTO); audit chain ${schain.intact ? 'intact' : 'BROKEN'}`);

  log('');
  log(`| ${PATIENTS} patients (${rows} rows) | figure | seed's target |`);
  log('|---|---|---|');
  log(`| backup (hms backup, encrypted) | ${backupSeconds.toFixed(1)} s, ${(floor / backupSeconds).toFixed(2)} of the floor (${floor.toFixed(1)} s) | daily |`);
  log(`| PITR to before the DELETE | ${pitrSeconds.toFixed(1)} s; ${victims.length - restoredVictims.size + beforeDelete.length - restoredBefore.size} rows missing, ${restoredAfter.size} extra | |`);
  log(`| RPO (primary lost, shipped binlog) | ${lost.length} acknowledged writes, ${rpo.toFixed(1)} s | ${RPO_TARGET / 60} min |`);
  log(`| RTO (backup + binlog onto a new server) | ${rto.toFixed(1)} s | ${RTO_TARGET / 3600} h |`);
  const ok = restoredVictims.size === victims.length && restoredBefore.size === beforeDelete.length && restoredAfter.size === 0 && chain.intact && schain.intact && rpo <= RPO_TARGET && rto <= RTO_TARGET;
  log(ok ? 'drill: PASS' : 'drill: FAIL');
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => { process.stderr.write(`drill: ${(err as Error).stack}\n`); process.exitCode = 1; }).finally(async () => {
  for (const fn of cleanups) await Promise.resolve(fn()).catch(() => undefined);
});
