/**
 * The security log's hash chain (docs/audit-log.md): appends through the app and directly form one
 * chain that `verifyAuditChain` and `hms audit verify` find intact; an edited, a deleted, an
 * inserted row and a cut tail are found; appends of two pools (two processes) interleave into one
 * gap-free chain; a rolled-back append leaves no row and no gap; the migration chains rows that
 * existed before it.
 *
 * Tampering happens on a database of this file's own (MySQL: a throw-away hms_chain_<random>,
 * dropped at teardown; SQLite: every test app has its own file), and each tampering test repairs
 * what it broke, so the next one starts from an intact chain.
 */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { createDb, dialectOf, migrateLatest } from '../../src/db/knex.js';
import { AuditLog, securityLogRow, type SecurityLogEntry } from '../../src/db/audit-log.js';
import { verifyAuditChain, type ChainVerification } from '../../src/db/audit-chain.js';
import { AUDIT_GENESIS_HASH, canonicalSecurityLog, securityLogHash } from '../../src/db/audit-hash.js';
import { inTransaction } from '../../src/db/transactions.js';
import { privateDatabase, testApp, testConfig, type TestApp } from '../helpers/app.js';
import { makeClinician, makePatient } from '../helpers/world.js';

type Row = Record<string, unknown>;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');


/** Another pool on the same database as the app (as another API process would have). */
function secondPool(t: Test, h: TestApp): Knex {
  const db = createDb(h.config);
  t.teardown(() => db.destroy());
  return db;
}

const entry = (extra: Partial<SecurityLogEntry> = {}): SecurityLogEntry => ({
  action: 'read', resourceType: 'Patient', resourceId: randomUUID(), success: true, ipAddress: '127.0.0.1', userAgent: 'chain-test',
  requestId: `req-${randomUUID().slice(0, 8)}`, additionalData: { method: 'GET', route: '/fhir/Patient/:id' }, ...extra,
});

const rowCount = async (db: Knex): Promise<number> => Number(((await db('security_logs').count({ n: '*' })) as Row[])[0]!.n);
const head = async (db: Knex): Promise<{ seq: number; hash: string }> => {
  const r = (await db('audit_chain').where({ id: 1 }).first()) as Row;
  return { seq: Number(r.last_seq), hash: String(r.last_hash) };
};
const bySeq = async (db: Knex, seq: number): Promise<Row> => (await db('security_logs').where({ seq }).first()) as Row;

/** Puts a row back exactly as read (additional_data may come back parsed from a JSON column). */
async function reinsert(db: Knex, row: Row): Promise<void> {
  const data = row.additional_data;
  await db('security_logs').insert({ ...row, additional_data: data === null || typeof data === 'string' ? data : JSON.stringify(data) });
}

function assertIntact(t: Test, result: ChainVerification, rows: number, what: string): void {
  t.same(result, { intact: true, rows, head: result.head }, what);
  t.equal(result.head?.seq, rows, 'the head is at the last row');
}

/** `node bin/hms.mjs ...args` with the database of the app (DATABASE_URL or HMS_DATA_DIR). */
function hms(h: TestApp, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  delete env.NODE_OPTIONS;
  for (const key of Object.keys(env)) if (key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key];
  if (h.config.DATABASE_URL) env.DATABASE_URL = h.config.DATABASE_URL;
  else { delete env.DATABASE_URL; env.HMS_DATA_DIR = h.config.HMS_DATA_DIR; }
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'hms.mjs'), ...args], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

t.test('the security log hash chain', async (t) => {
  const url = await privateDatabase(t, 'hms_chain');
  const h = await testApp(t, url ? { DATABASE_URL: url } : {});
  const log = h.app.auditLog;

  // traffic through the app: creates (audited inside their transactions), reads, searches, refusals, a failed login
  const doctor = await makeClinician(h);
  const patient = await makePatient(h, undefined, { generalPractitioner: [{ reference: `Practitioner/${doctor}` }] });
  for (const req of [
    { method: 'GET', url: `/fhir/Patient/${patient}` },
    { method: 'GET', url: `/fhir/Patient?_id=${patient}` },
    { method: 'GET', url: `/fhir/Patient/${randomUUID()}` },
    { method: 'GET', url: '/fhir/Patient', token: null },
  ]) await h.fhir(req as never);
  await h.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@test.example.org', password: 'not the password' } });
  await Promise.all(Array.from({ length: 20 }, (_, i) => log.record(entry({ userId: i % 2 ? h.userId : null, role: 'admin', success: i % 3 !== 0 }))));
  await log.settle();

  t.test('appends through the app and directly form one chain that verifies', async (t) => {
    const n = await rowCount(h.db);
    t.ok(n > 20, `${n} rows`);
    assertIntact(t, await verifyAuditChain(h.db), n, 'intact');
    assertIntact(t, await verifyAuditChain(h.db, { batchSize: 3 }), n, 'intact in small batches too');
    const rows = (await h.db('security_logs').orderBy('seq').select('*')) as Row[];
    t.same(rows.map((r) => Number(r.seq)), rows.map((_, i) => i + 1), 'positions 1..n without a gap');
    t.equal(rows[0]!.prev_hash, AUDIT_GENESIS_HASH, 'the first row links to the genesis hash');
    t.ok(rows.every((r, i) => i === 0 || r.prev_hash === rows[i - 1]!.hash), 'each row links to the one before');
    t.ok(rows.every((r) => securityLogHash(r) === r.hash), 'each hash is over the row as stored');
    t.same(await head(h.db), { seq: n, hash: String(rows[n - 1]!.hash) });
    const read = rows.find((r) => r.action === 'read' && r.resource_id === patient)!;
    t.equal(read.patient_id, patient, 'a Patient row names its patient');
    t.match(read.request_id, /\S/, 'and the request');
    t.equal(Number(read.break_glass), 0);
  });

  t.test('the canonical form: every column but hash, NULLs explicit, JSON re-serialized with sorted keys', async (t) => {
    const row: Row = {
      id: 'x', seq: 7, prev_hash: 'p', timestamp: '2024-01-02 03:04:05', user_id: null, client_id: 'c', role: 'system', action: 'read',
      resource_type: 'Patient', resource_id: 'r', patient_id: 'r', ip_address: null, user_agent: 'ua', success: true, failure_reason: null,
      request_id: 'q', break_glass: false, additional_data: '{"b": 1, "a": {"d": [2, {"f": 1, "e": null}], "c": "é"}}', hash: 'ignored',
    };
    t.equal(canonicalSecurityLog(row),
      '["hms-audit-v1","x","7","p","2024-01-02 03:04:05",null,"c","system","read","Patient","r","r",null,"ua",1,null,"q",0,'
      + '"{\\"a\\":{\\"c\\":\\"é\\",\\"d\\":[2,{\\"e\\":null,\\"f\\":1}]},\\"b\\":1}"]');
    const mysqlShaped = { ...row, seq: '7', success: 1, break_glass: 0, additional_data: { a: { d: [2, { e: null, f: 1 }], c: 'é' }, b: 1 }, hash: 'other' };
    t.equal(securityLogHash(mysqlShaped), securityLogHash(row), 'the same hash from what either database gives back');
    t.not(securityLogHash({ ...row, success: 2 }), securityLogHash(row), 'a changed boolean is a change');
    t.not(securityLogHash({ ...row, user_id: '' }), securityLogHash(row), 'an empty string is not NULL');
    t.match(securityLogHash(row), /^[0-9a-f]{64}$/);
  });

  t.test('an edited row is found, by its id', async (t) => {
    const n = await rowCount(h.db);
    const victim = await bySeq(h.db, Math.ceil(n / 2));
    await h.db('security_logs').where({ id: victim.id }).update({ success: Number(victim.success) ? 0 : 1 });
    const result = await verifyAuditChain(h.db);
    t.match(result, { intact: false, rows: Number(victim.seq) - 1, break: { reason: 'content-changed', id: victim.id, seq: Number(victim.seq) } });
    t.match(result.break!.message, String(victim.id));
    await h.db('security_logs').where({ id: victim.id }).update({ success: victim.success });
    assertIntact(t, await verifyAuditChain(h.db), n, 'intact once repaired');
  });

  t.test('an edited row whose hash was recomputed breaks the link of the next row', async (t) => {
    const n = await rowCount(h.db);
    const victim = await bySeq(h.db, 3);
    const next = await bySeq(h.db, 4);
    const forged = { ...victim, action: 'logout' };
    await h.db('security_logs').where({ id: victim.id }).update({ action: 'logout', hash: securityLogHash(forged) });
    t.match(await verifyAuditChain(h.db), { intact: false, rows: 3, break: { reason: 'link-broken', id: next.id, seq: 4 } });
    await h.db('security_logs').where({ id: victim.id }).update({ action: victim.action, hash: victim.hash });
    assertIntact(t, await verifyAuditChain(h.db), n, 'intact once repaired');
  });

  t.test('a deleted row is found: the next row says rows are missing before it', async (t) => {
    const n = await rowCount(h.db);
    const victim = await bySeq(h.db, 5);
    const next = await bySeq(h.db, 6);
    await h.db('security_logs').where({ id: victim.id }).delete();
    const result = await verifyAuditChain(h.db);
    t.match(result, { intact: false, rows: 4, break: { reason: 'row-missing', id: next.id, seq: 6 } });
    await reinsert(h.db, victim);
    assertIntact(t, await verifyAuditChain(h.db), n, 'intact once the row is back');
  });

  t.test('an inserted row is found: without a place, or with a forged one past the head', async (t) => {
    const n = await rowCount(h.db);
    const loose = securityLogRow(entry({ action: 'forged' }));
    await h.db('security_logs').insert(loose);
    t.match(await verifyAuditChain(h.db), { intact: false, rows: n, break: { reason: 'outside-chain', id: loose.id } });
    await h.db('security_logs').where({ id: loose.id }).delete();

    const top = await head(h.db);
    const placed: Row = { ...securityLogRow(entry({ action: 'forged' })), seq: top.seq + 1, prev_hash: top.hash };
    placed.hash = securityLogHash(placed);
    await h.db('security_logs').insert(placed);
    t.match(await verifyAuditChain(h.db), { intact: false, rows: n, break: { reason: 'beyond-head', id: placed.id, seq: top.seq + 1 } });
    await h.db('security_logs').where({ id: placed.id }).delete();

    const below: Row = { ...securityLogRow(entry({ action: 'forged' })), seq: 0, prev_hash: AUDIT_GENESIS_HASH };
    below.hash = securityLogHash(below);
    await h.db('security_logs').insert(below);
    t.match(await verifyAuditChain(h.db), { intact: false, break: { reason: 'outside-chain', id: below.id } }, 'seq 0 has no place either');
    await h.db('security_logs').where({ id: below.id }).delete();
    assertIntact(t, await verifyAuditChain(h.db), n, 'intact once removed');
  });

  t.test('a cut tail is found: the head is past the last row', async (t) => {
    const n = await rowCount(h.db);
    const tail = [await bySeq(h.db, n - 1), await bySeq(h.db, n)];
    await h.db('security_logs').whereIn('id', tail.map((r) => r.id as string)).delete();
    const result = await verifyAuditChain(h.db);
    t.match(result, { intact: false, rows: n - 2, break: { reason: 'head-mismatch', seq: n - 2 } });
    t.match(result.break!.message, /removed at the end/);
    for (const r of tail) await reinsert(h.db, r);
    const top = await head(h.db);
    await h.db('audit_chain').where({ id: 1 }).update({ last_hash: 'f'.repeat(64) });
    t.match(await verifyAuditChain(h.db), { intact: false, rows: n, break: { reason: 'head-mismatch', seq: n } }, 'a changed head too');
    await h.db('audit_chain').where({ id: 1 }).update({ last_hash: top.hash });
    assertIntact(t, await verifyAuditChain(h.db), n, 'intact once repaired');
  });

  t.test('an exported head (anchor) catches a rewrite of the chain before it', async (t) => {
    const anchor = (await verifyAuditChain(h.db)).head!;
    await log.record(entry());
    const n = await rowCount(h.db);
    assertIntact(t, await verifyAuditChain(h.db, { anchor }), n, 'the chain still holds the anchor');
    t.match(await verifyAuditChain(h.db, { anchor: { seq: anchor.seq, hash: 'a'.repeat(64) } }), { intact: false, break: { reason: 'anchor-mismatch', seq: anchor.seq } });
    t.match(await verifyAuditChain(h.db, { anchor: { seq: n + 5, hash: anchor.hash } }), { intact: false, break: { reason: 'anchor-mismatch' } });
  });

  t.test('hms audit verify prints the rows verified and exits 0, or the broken row and exits 1', async (t) => {
    const n = await rowCount(h.db);
    const top = await head(h.db);
    // each run starts a process (~1-2 s): three runs cover intact (with an anchor), broken and a usage error
    const ok = await hms(h, ['audit', 'verify', '--anchor', `${top.seq}:${top.hash}`]);
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stdout.trim(), `Audit chain intact: ${n} rows verified (head seq ${top.seq}, hash ${top.hash})`);

    const victim = await bySeq(h.db, 2);
    await h.db('security_logs').where({ id: victim.id }).update({ ip_address: '10.6.6.6' });
    const broken = await hms(h, ['audit', 'verify']);
    await h.db('security_logs').where({ id: victim.id }).update({ ip_address: victim.ip_address });
    t.equal(broken.code, 1);
    t.match(broken.stdout, `Audit chain broken at row ${String(victim.id)} (seq 2): content-changed`);
    t.match(broken.stdout, '1 rows verified before it');

    const bad = await hms(h, ['audit', 'check']);
    t.equal(bad.code, 1);
    t.match(bad.stderr, /audit needs the subcommand verify/);
    assertIntact(t, await verifyAuditChain(h.db), n, 'intact again');
  });

  t.test('concurrent callers share one locked append per batch (group commit)', async (t) => {
    const db = secondPool(t, h);
    let locks = 0;
    db.on('query', (q: { sql: string }) => { if (/FOR UPDATE|RETURNING last_seq/i.test(q.sql)) locks++; });
    const mine = new AuditLog(db);
    await Promise.all(Array.from({ length: 50 }, () => mine.record(entry())));
    t.ok(locks >= 1 && locks <= 3, `50 concurrent entries, ${locks} appends`);
    assertIntact(t, await verifyAuditChain(h.db), await rowCount(h.db), 'intact');
  });

  t.test("a caller's bad row fails alone; its neighbours in the batch are stored", async (t) => {
    const before = await rowCount(h.db);
    const results = await Promise.allSettled([
      log.record(entry()), log.record(entry({ userId: randomUUID() })), log.record(entry()), log.record(entry()),
    ]);
    t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'], 'the unknown user (foreign key) fails');
    t.equal(await rowCount(h.db), before + 3);
    assertIntact(t, await verifyAuditChain(h.db), before + 3, 'no gap');
  });

  t.test('an append inside a transaction that rolls back leaves no row and no gap', async (t) => {
    const before = await head(h.db);
    const marker = `rollback-${randomUUID()}`;
    await t.rejects(inTransaction(h.db, async (trx) => {
      await log.record(entry({ action: marker }), trx);
      t.equal(Number(((await trx('security_logs').where({ action: marker }).count({ n: '*' })) as Row[])[0]!.n), 1, 'visible inside');
      throw new Error('the data change failed');
    }), /the data change failed/);
    t.equal(await h.db('security_logs').where({ action: marker }).first(), undefined, 'no row');
    t.same(await head(h.db), before, 'the head did not move');
    await inTransaction(h.db, (trx) => log.record([entry({ action: marker }), entry({ action: marker })], trx));
    t.same((await h.db('security_logs').where({ action: marker }).orderBy('seq').select('seq')).map((r: Row) => Number(r.seq)), [before.seq + 1, before.seq + 2], 'the next append takes the next places');
    assertIntact(t, await verifyAuditChain(h.db), await rowCount(h.db), 'intact');
  });

  t.test('a failed audit write rejects record() and fails the request with 503', async (t) => {
    const saved = (await h.db('audit_chain').where({ id: 1 }).first()) as Row;
    await h.db('audit_chain').where({ id: 1 }).delete();
    try {
      await t.rejects(log.record(entry()), /chain head/);
      const res = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}` });
      t.equal(res.statusCode, 503, 'no unaudited access');
      t.equal(res.json().resourceType, 'OperationOutcome');
      const write = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', name: [{ family: 'Unaudited' }], gender: 'male', birthDate: '1990-01-01' } });
      t.equal(write.statusCode, 503, 'no unaudited change');
      t.equal(await h.db('patients').where({ last_name: 'Unaudited' }).first('id'), undefined, 'and nothing was written');
      const refused = await h.fhir({ method: 'GET', url: `/fhir/Patient/${patient}x` });
      t.equal(refused.statusCode, 503, 'no unaudited refusal: a 503 instead of the 404');
    } finally {
      await h.db('audit_chain').insert(saved);
    }
    assertIntact(t, await verifyAuditChain(h.db), await rowCount(h.db), 'nothing was appended meanwhile');
  });

  t.test('two pools (two API processes) appending 200 rows concurrently, some in rolled-back transactions, give one gap-free chain', async (t) => {
    // SQLite: one process holds one connection (a second one in the same process would block the
    // event loop in SQLite's busy wait while the first holds the lock), so two logs share it
    const pools = dialectOf(h.db) === 'mysql' ? [h.db, secondPool(t, h)] : [h.db, h.db];
    const logs = pools.map((db) => new AuditLog(db));
    const before = await head(h.db);
    let expected = 0;
    await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const k = i % 2;
      const db = pools[k]!;
      const audit = logs[k]!;
      const e = entry({ userId: i % 3 ? h.userId : null, requestId: `conc-${i}` });
      switch (i % 4) {
        case 0: expected += 1; return audit.record(e);
        case 1: expected += 2; return inTransaction(db, (trx) => audit.record([e, entry({ requestId: `conc-${i}b` })], trx));
        case 2: return inTransaction(db, async (trx) => { await audit.record(e, trx); throw new Error('rolled back'); }).catch(() => undefined);
        default: expected += 1; return inTransaction(db, async (trx) => { await trx('users').where({ id: h.userId }).first(); await audit.record(e, trx); });
      }
    }));
    await Promise.all(logs.map((l) => l.settle()));
    const after = await head(h.db);
    t.equal(after.seq - before.seq, expected, `${expected} rows appended`);
    t.equal(await h.db('security_logs').where('request_id', 'like', 'conc-%').count({ n: '*' }).then((r) => Number((r as Row[])[0]!.n)), expected, 'none of the rolled-back ones');
    assertIntact(t, await verifyAuditChain(h.db), await rowCount(h.db), 'one chain, in order, no gap');
  });

  t.test('a data transaction holding a users row does not deadlock with an append that refers to it (one lock order)', { skip: dialectOf(h.db) !== 'mysql' && 'InnoDB row locks only' }, async (t) => {
    const other = secondPool(t, h);
    const grouped = new AuditLog(other);
    let attempts = 0;
    let release!: () => void;
    const locked = new Promise<void>((r) => { release = r; });
    const waitForLock = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        // a statement of the other append is running, i.e. waiting for this transaction's lock
        const [rows] = (await h.db.raw(
          "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND INFO IS NOT NULL AND INFO NOT LIKE '%PROCESSLIST%'",
        )) as [Row[]];
        if (Number(rows[0]!.n) > 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the other append never waited for the users row');
    };
    let appended: Promise<void> | undefined;
    // the double-booking check's shape: the doctor's users row FOR UPDATE, then (later) the change's audit rows
    const data = inTransaction(h.db, async (trx) => {
      attempts += 1;
      await trx('users').where({ id: doctor }).forUpdate().first();
      release();
      if (attempts === 1) await waitForLock(); // the other process's append of a row by the doctor now waits for that row
      await h.app.auditLog.record(entry({ userId: h.userId, action: 'update', requestId: 'deadlock-data' }), trx);
    });
    await locked;
    appended = grouped.record(entry({ userId: doctor, requestId: 'deadlock-group' }));
    await Promise.all([data, appended]);
    t.equal(attempts, 1, 'the data transaction ran once: no deadlock victim');
    const seqs = (await h.db('security_logs').whereIn('request_id', ['deadlock-data', 'deadlock-group']).orderBy('seq').select('request_id')).map((r: Row) => r.request_id);
    t.same(seqs, ['deadlock-data', 'deadlock-group'], 'the append waited for the users row before taking the head');
    assertIntact(t, await verifyAuditChain(h.db), await rowCount(h.db), 'intact');
  });

  t.test('the application never updates security_logs rows, and only the archiver deletes them', async (t) => {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    walk(join(ROOT, 'src'));
    // the archiver (src/db/audit-archive.ts) deletes rows once they are in a verified archive file
    const ARCHIVER = join(ROOT, 'src', 'db', 'audit-archive.ts');
    const offending = files.filter((f) => {
      const text = readFileSync(f, 'utf8');
      const changes = /security_logs['"`]\)\s*(?:\.[a-zA-Z]+\([^)]*\)\s*)*\.update\(/.test(text) || /UPDATE\s+[`"]?security_logs/i.test(text);
      const removes = /security_logs['"`]\)\s*(?:\.[a-zA-Z]+\([^)]*\)\s*)*\.(?:delete|del|truncate)\(/.test(text)
        || /(?:DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+[`"]?security_logs/i.test(text)
        || /\.(?:delete|del|truncate)\(/.test(text) && /['"`]security_logs['"`]/.test(text);
      return changes || (removes && f !== ARCHIVER);
    });
    t.same(offending, [], 'no statement in src changes a row; none but the archiver removes one');
    t.match(readFileSync(ARCHIVER, 'utf8'), /\.(?:delete|del)\(/, 'the archiver is the one that deletes');
  });
});

t.test('the migration chains the rows that existed before it, oldest first', async (t) => {
  const url = await privateDatabase(t, 'hms_chain');
  const config = testConfig(t, url ? { DATABASE_URL: url } : {});
  const db = createDb(config);
  t.teardown(() => db.destroy());
  // the schema as it was before the chain
  for (;;) {
    const [done] = (await db.migrate.list()) as [{ name: string }[], unknown[]];
    if (done.some((m) => m.name === '0110_condition_recorded_date')) break;
    await db.migrate.up();
  }
  t.notOk(await db.schema.hasColumn('security_logs', 'seq'), 'before 0111');
  const user = randomUUID();
  await db('users').insert({ id: user, email: `legacy-${user}@test.example.org`, password_hash: '!', name: 'Legacy', role: 'doctor' });
  const legacy = [
    { id: 'b-2', timestamp: '2024-01-01 10:00:00', resource_type: 'Patient', resource_id: 'pat-1', additional_data: '{"z": 1, "a": [true, null]}' },
    { id: 'a-3', timestamp: '2024-01-01 10:00:00', resource_type: 'Observation', resource_id: 'obs-1', additional_data: null },
    { id: 'c-1', timestamp: '2023-12-31 23:59:59', resource_type: 'Patient', resource_id: 'pat-2', additional_data: '{"ids":["x"]}' },
    { id: 'z-0', timestamp: null, resource_type: null, resource_id: null, additional_data: null },
    ...Array.from({ length: 1203 }, (_, i) => ({
      id: `m-${String(i).padStart(5, '0')}`, timestamp: `2024-02-${String(1 + (i % 28)).padStart(2, '0')} 08:00:00`, resource_type: 'Patient', resource_id: `bulk-${i}`, additional_data: null,
    })),
  ].map((r, i) => ({ user_id: i % 2 ? user : null, action: 'read', ip_address: '10.0.0.1', user_agent: 'legacy', success: true, failure_reason: null, ...r }));
  for (let i = 0; i < legacy.length; i += 300) await db('security_logs').insert(legacy.slice(i, i + 300));

  await migrateLatest(db);
  const result = await verifyAuditChain(db);
  t.same(result, { intact: true, rows: legacy.length, head: result.head }, 'the whole table is one chain');
  const order = (await db('security_logs').orderBy('seq').select('id')).map((r: Row) => r.id);
  t.same(order.slice(0, 4), ['z-0', 'c-1', 'a-3', 'b-2'], '(timestamp, id) order, a row without timestamp first');
  t.equal(order.length, legacy.length);
  const patients = await db('security_logs').whereIn('id', ['b-2', 'a-3', 'c-1']).orderBy('id').select('id', 'patient_id');
  t.same(patients, [{ id: 'a-3', patient_id: null }, { id: 'b-2', patient_id: 'pat-1' }, { id: 'c-1', patient_id: 'pat-2' }], 'patient_id of Patient rows');

  const log = new AuditLog(db);
  await log.record(entry({ userId: user }));
  const after = await verifyAuditChain(db);
  t.same(after, { intact: true, rows: legacy.length + 1, head: after.head }, 'appends continue the backfilled chain');
  t.equal(after.head!.seq, legacy.length + 1);
});
