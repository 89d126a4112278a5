/**
 * Poison messages of background work (issue 9, docs/jobs.md), against real Redis, real MariaDB and
 * real `hms worker` processes (node bin/hms.mjs worker) with short timings: one that kills its
 * worker every time, one that throws, one naming no patient, an invalid one, among good ones.
 * The other worker faults are in jobs-faults-workers.test.ts and jobs-faults-outages.test.ts.
 *
 * The API runs in this process (fastify.inject) on the test's queue prefix; messages are FHIR
 * Bundles and HL7 v2 ORU^R01 posted as a lab client. Every wait is a bounded poll of the database.
 * Needs REDIS_URL and DATABASE_URL (MariaDB); skipped otherwise. Diagnostics: the workers' output
 * is printed when a test fails; HMS_TEST_WORKER_LOG_LEVEL=info logs every job, and
 * HMS_TEST_LOG_DIR=<dir> keeps each pool's output in a file there.
 */
import t from 'tap';
import { WorkerPool } from '../helpers/processes.js';
import { unique } from '../helpers/world.js';
import {
  DATABASE_URL, REDIS_URL, bundle, countOf, elapsed, faultSetup, finished, lab, post, postMany, settle, type J,
} from '../helpers/lab-faults.js';

if (!REDIS_URL || !DATABASE_URL) {
  t.plan(0, 'the fault tests need real Redis and MariaDB: set REDIS_URL and DATABASE_URL');
} else {
  const { h, workerEnv } = await faultSetup(t);

  t.test('poison messages fail alone: one that kills its worker, one that throws, one naming no patient, an invalid one', async (t) => {
    const l = await lab(h);
    const tag = unique();
    const exitValue = `POISON-EXIT-${tag}`;
    const throwValue = `POISON-THROW-${tag}`;
    const pool = new WorkerPool(t, workerEnv({ HMS_TEST_FAULTS: `exit:${exitValue},throw:${throwValue}` }));
    await Promise.all([pool.start(), pool.start()]);
    const t0 = Date.now();
    const good: string[] = [];
    const send = async (body: J): Promise<string> => {
      const r = await post(l, body);
      if (r.status !== 202) t.fail(`answered ${r.status}: ${r.body}`);
      return r.id!;
    };
    // those that cannot succeed first, settled before a worker dies (one killed with them in
    // flight would have them run again: attempts 2)
    const unmatched = await send(bundle(l, `NOBODY-${tag}`, 1, `NOBODY-${tag}`));
    // a result the write path refuses: its effective period ends before it starts
    const invalidBundle = bundle(l, `INVALID-${tag}`, 2);
    invalidBundle.entry[1].resource = { ...invalidBundle.entry[1].resource, effectiveDateTime: undefined, effectivePeriod: { start: '2026-11-30T10:00:00Z', end: '2026-11-30T09:00:00Z' } };
    const invalid = await send(invalidBundle);
    t.ok(finished(await settle(h, [unmatched, invalid], 20_000), 2), 'the unmatched and the invalid message settle');
    // the poison messages among good ones, so that good ones are in flight when a worker dies
    good.push(...await postMany(t, l, 4, 2, `${tag}-a`));
    const exit = await send(bundle(l, exitValue, 2));
    good.push(...await postMany(t, l, 4, 2, `${tag}-b`));
    const thrown = await send(bundle(l, throwValue, 2));
    good.push(...await postMany(t, l, 8, 2, `${tag}-c`, true));
    const all = [exit, thrown, unmatched, invalid, ...good];
    const rows = await settle(h, all, 80_000);
    t.ok(finished(rows, all.length), `all settled in ${elapsed(t0)}`);
    const byId = new Map(rows.map((r) => [r.id, r]));

    const e = byId.get(exit)!;
    t.equal(e.status, 'failed', 'the message that kills its worker ends failed');
    t.match(e.outcome?.issue?.[0]?.diagnostics, /abandoned/i, `its outcome says it was abandoned: ${e.outcome?.issue?.[0]?.diagnostics}`);
    const exitOutbox = await h.db('job_outbox').where({ id: exit }).first();
    t.equal(Number(exitOutbox.attempts), 3, 'started HMS_JOB_ATTEMPTS (3) times');
    t.equal(exitOutbox.status, 'failed', 'its outbox row failed');
    t.equal(e.attempts, 3, 'the message counts 3 attempts');
    const kills = pool.exits.filter((x) => x.signal === 'SIGKILL').length;
    t.equal(kills, 3, `it killed a worker each time it ran (${kills} kills)`);

    const th = byId.get(thrown)!;
    t.equal(th.status, 'failed', 'the message that throws ends failed');
    t.equal(th.attempts, 3, 'after HMS_JOB_ATTEMPTS attempts');
    t.match(th.outcome?.issue?.[0]?.diagnostics, /injected fault/, 'with the error as its outcome');

    const u = byId.get(unmatched)!;
    t.equal(u.status, 'failed', 'the message naming no patient ends failed');
    t.equal(u.attempts, 1, 'at once: no retries');
    t.match(u.outcome?.issue?.[0]?.diagnostics, /No patient matches/, 'saying so');

    const inv = byId.get(invalid)!;
    t.equal(inv.status, 'failed', 'the invalid message ends failed');
    t.equal(inv.attempts, 1, 'at once: no retries');
    t.match(JSON.stringify(inv.outcome), /effectivePeriod/, 'its outcome names the element');

    for (const id of [exit, thrown, unmatched, invalid]) {
      // its writes (and their audit rows, written in the same transaction) were rolled back
      const created = await countOf(h.db('security_logs').where({ action: 'create', client_id: l.clientId }).andWhere('additional_data', 'like', `%${id}%`).count({ n: '*' }));
      t.equal(created, 0, `failed message ${byId.get(id)!.status === 'failed' ? '' : '(not failed!) '}${id} created nothing`);
    }
    const goodCreated = await countOf(h.db('security_logs').where({ action: 'create', client_id: l.clientId }).andWhere('additional_data', 'like', `%${good[0]}%`).count({ n: '*' }));
    t.equal(goodCreated, 2, 'where a good message has the audit rows of its two Observations');
    const goodRows = good.map((id) => byId.get(id)!);
    t.same(goodRows.filter((r) => r.status !== 'done').map((r) => `${r.status} attempts ${r.attempts}: ${JSON.stringify(r.outcome)}`), [], `all ${good.length} other messages done`);
    const observations = await countOf(h.db('observations').where({ patient_id: l.patient }).count({ n: '*' }));
    t.equal(observations, good.length * 2, 'only the good messages wrote, each once');
    t.comment(`poison: settled in ${elapsed(t0)}; ${kills} worker kills; good messages with attempts > 1: ${goodRows.filter((r) => r.attempts > 1).length}`);
    if (!t.passing()) t.comment(pool.logs().slice(-30_000));
  });
}
