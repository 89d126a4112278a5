/**
 * The outages background work must survive (issue 9, docs/jobs.md), against real Redis, real
 * MariaDB and real `hms worker` processes with short timings: Redis stopped and restarted empty,
 * the database cut off from a worker, two overdue sweeps at once, and `hms jobs status`. The
 * worker faults (two workers, SIGKILL, poison messages) are in jobs-faults-workers.test.ts.
 *
 * The API runs in this process (fastify.inject) on the test's queue prefix; messages are FHIR
 * Bundles posted as a lab client. Every wait is a bounded poll of the database. Needs REDIS_URL
 * and DATABASE_URL (MariaDB); skipped otherwise. Diagnostics: the workers' output is printed when
 * a test fails; HMS_TEST_WORKER_LOG_LEVEL=info logs every job.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { makePatient, unique } from '../helpers/world.js';
import { silentLog, testPrefix } from '../helpers/jobs.js';
import { CuttableProxy, freePort, hms, RedisServer, sleep, stop, until, within, WorkerPool } from '../helpers/processes.js';
import {
  DATABASE_URL, REDIS_URL, bundle, elapsed, exactlyOnce, faultSetup, finished, lab, messages, obliterate, post, postMany, settle, type J,
} from '../helpers/lab-faults.js';
import { BullQueues } from '../../src/workers/bullmq.js';
import { QUEUE_NAMES } from '../../src/workers/queues.js';
import { overdueBilling } from '../../src/workers/processors/overdue-billing.js';

if (!REDIS_URL || !DATABASE_URL) {
  t.plan(0, 'the fault tests need real Redis and MariaDB: set REDIS_URL and DATABASE_URL');
} else {
  const { h, workerEnv } = await faultSetup(t);

  t.test('Redis stopped while messages arrive, then restarted empty: 202 or 503, never 500; every accepted message done', async (t) => {
    const redis = new RedisServer(t, await freePort());
    await redis.start();
    t.teardown(() => redis.kill());
    const rprefix = testPrefix();
    const h2 = await testApp(t, { HMS_QUEUE_PREFIX: rprefix, REDIS_URL: redis.url, HMS_JOB_ATTEMPTS: 3 });
    const l = await lab(h2);
    const pool = new WorkerPool(t, workerEnv({ REDIS_URL: redis.url, HMS_QUEUE_PREFIX: rprefix }));
    const [first] = await Promise.all([pool.start(), pool.start()]);
    const warm = await postMany(t, l, 3, 1, `warm-${unique()}`);
    t.ok(finished(await settle(h2, warm, 20_000), warm.length), 'processed while Redis is up');

    await redis.kill();
    // a worker stopped during the outage (a deploy) shuts down all the same; its replacement,
    // started by the supervisor, waits for Redis
    const stopAt = Date.now();
    const stopped = stop(first!).then((exit) => ({ ...exit, ms: Date.now() - stopAt }));
    const answers: Record<number, number> = {};
    const accepted: string[] = [];
    const latencies: number[] = [];
    const tag = unique();
    for (let i = 0; i < 20; i++) {
      const t1 = Date.now();
      const r = await within(post(l, bundle(l, `down-${tag}-${i}`)), 15_000, `POST ${i} while Redis is down`);
      latencies.push(Date.now() - t1);
      answers[r.status] = (answers[r.status] ?? 0) + 1;
      if (r.status === 202) accepted.push(r.id!);
      else if (r.status !== 503) t.fail(`answered ${r.status} while Redis is down: ${r.body}`);
    }
    // an API process started while Redis is down (a restarted or added `hms serve`) answers too
    const fresh = await testApp(t, { HMS_QUEUE_PREFIX: rprefix, REDIS_URL: redis.url, HMS_JOB_ATTEMPTS: 3 });
    for (let i = 0; i < 5; i++) {
      const t1 = Date.now();
      const r = await within(post(l, bundle(l, `down-fresh-${tag}-${i}`), fresh), 15_000, `POST ${i} to an API started while Redis is down`);
      latencies.push(Date.now() - t1);
      answers[r.status] = (answers[r.status] ?? 0) + 1;
      if (r.status === 202) accepted.push(r.id!);
      else if (r.status !== 503) t.fail(`answered ${r.status} while Redis is down: ${r.body}`);
    }
    t.same(Object.keys(answers).filter((s) => s !== '202' && s !== '503'), [], `answers while Redis was down: ${JSON.stringify(answers)}`);
    t.ok(Math.max(...latencies) < 5000, `each answered at once (slowest ${Math.max(...latencies)} ms)`);
    const stoppedExit = await stopped;
    t.same({ code: stoppedExit.code, signal: stoppedExit.signal }, { code: 0, signal: null }, `a worker stopped during the outage exits by itself (in ${stoppedExit.ms} ms)`);
    // by now (the stop took seconds) the workers and their sweepers have met a Redis that is not there
    const stillQueued = (await messages(h2, accepted)).filter((r) => r.status === 'queued').length;
    t.equal(stillQueued, accepted.length, 'nothing processed while Redis is down (the messages wait in the database)');

    const restarted = Date.now();
    await redis.start();
    const rows = await settle(h2, accepted, 40_000);
    const recovery = elapsed(restarted);
    t.ok(finished(rows, accepted.length), `after Redis came back (empty), all ${accepted.length} accepted messages settled in ${recovery}`);
    await exactlyOnce(t, l, [...warm, ...accepted], 1, pool);
    const later = await post(l, bundle(l, `after-${tag}`));
    t.equal(later.status, 202, 'the API enqueues again');
    t.ok(finished(await settle(h2, [later.id!], 20_000), 1), 'and a new message is processed');
    t.equal(pool.live().length, 2, 'the replacement worker came up once Redis was back');
    t.comment(`Redis down: ${JSON.stringify(answers)} (slowest answer ${Math.max(...latencies)} ms); a worker stopped in ${stoppedExit.ms} ms; all accepted done ${recovery} after Redis restarted empty`);
    if (!t.passing()) t.comment(pool.logs().slice(-20_000));
    await pool.close();
    await obliterate(h2.config);
  });

  t.test('the database cut off from a worker during ingestion: messages retry and complete, each once', async (t) => {
    // This simulates the database server going away as the worker sees it (every connection
    // dropped, connections refused, then accepted again) with a TCP proxy between the worker and
    // MariaDB: a real restart of the shared MariaDB is not possible in CI.
    const url = new URL(DATABASE_URL!);
    const proxy = new CuttableProxy(url.hostname, Number(url.port || 3306));
    const port = await proxy.listen();
    t.teardown(() => proxy.close());
    url.host = `127.0.0.1:${port}`;
    const l = await lab(h);
    const pool = new WorkerPool(t, workerEnv({ DATABASE_URL: url.toString() }));
    pool.restart = false;
    await pool.start();
    const ids = await postMany(t, l, 40, 4);
    const doneCount = async () => (await messages(h, ids)).filter((r) => r.status === 'done').length;
    await until(doneCount, (n) => n >= 3, 30_000, 20);
    await proxy.cut();
    const cutAt = Date.now();
    const doneAtCut = await doneCount();
    await sleep(3000);
    await proxy.listen(port);
    const back = Date.now();
    const rows = await settle(h, ids, 60_000);
    t.ok(finished(rows, ids.length), `settled ${elapsed(back)} after the database came back`);
    t.ok(doneAtCut < ids.length, `cut mid-batch: ${doneAtCut} of ${ids.length} done at the cut`);
    await exactlyOnce(t, l, ids, 4, pool);
    t.same(pool.exits, [], 'the worker did not exit');
    t.comment(`database cut for ${((back - cutAt) / 1000).toFixed(1)} s with ${doneAtCut}/40 done; all done ${elapsed(back)} after; attempts > 1: ${rows.filter((r) => r.attempts > 1).length}`);
  });

  t.test('two overdue sweeps at once (hms jobs run overdue-billing, twice): each invoice changed once', async (t) => {
    const patient = await makePatient(h);
    // the sweep acts on every invoice of the database: this test's live in a year of their own,
    // after every year before 1900 that other runs used, with everything earlier swept first
    const latest = (await h.db('billing').where('due_date', '<', '1900-01-01').max({ d: 'due_date' }))[0] as J;
    const y = latest?.d ? Number(String(latest.d).slice(0, 4)) + 1 : 1500;
    await overdueBilling({ asOf: `${y}-01-01` }, { db: h.db, config: h.config, log: silentLog, auditLog: h.app.auditLog, now: () => new Date() });
    const N = 500;
    const rows = Array.from({ length: N }, (_, i) => ({
      id: randomUUID(), patient_id: patient, invoice_number: `FLT-${unique()}-${i}`, service_date: `${y}-01-10`, service_description: 'Fault test',
      amount_charged: 50 + i, amount_paid: i % 3 === 0 ? 10 : 0, payment_status: i % 3 === 0 ? 'partial' : 'pending',
      billing_date: `${y}-01-10`, due_date: `${y}-0${2 + (i % 7)}-1${i % 10}`, created_by: h.userId, version_id: 1,
      created_at: '2020-01-10 08:00:00', updated_at: '2020-01-10 08:00:00',
    }));
    await h.db.batchInsert('billing', rows, 100);
    const ids = rows.map((r) => r.id);
    const env = workerEnv({ HMS_OVERDUE_BATCH: '25' });
    // a barrier, so that the two sweeps run at the same time whatever their start-up takes: a
    // run notes its start in job_last_runs before it sweeps; this test holds that row's lock
    // until both runs wait for it
    await h.db('job_last_runs').insert({ queue: 'overdue-billing', job_id: 'barrier', status: 'completed', started_at: '2020-01-01 00:00:00', runs: 0, failures: 0 }).onConflict('queue').ignore();
    const barrier = await h.db.transaction();
    await barrier('job_last_runs').where({ queue: 'overdue-billing' }).forUpdate().select('queue');
    const t0 = Date.now();
    const runs = [hms(t, ['jobs', 'run', 'overdue-billing', '--as-of', `${y}-12-01`], env), hms(t, ['jobs', 'run', 'overdue-billing', '--as-of', `${y}-12-01`], env)];
    const waitingRuns = async () => Number(((await h.db.raw("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'insert ignore into `job_last_runs`%'")) as J[][])[0]![0]!.n);
    const blocked = await until(waitingRuns, (n) => n >= 2 || runs.some((r) => !r.running()), 20_000, 50);
    await barrier.commit();
    t.equal(blocked, 2, 'both runs started and wait at the barrier');
    const released = Date.now();
    const exits = await within(Promise.all(runs.map((r) => r.exited)), 90_000, 'both sweeps');
    t.same(exits.map((e) => e.code), [0, 0], `both runs exit 0${runs.some((r) => r.stderr()) ? ` (stderr: ${runs.map((r) => r.stderr().slice(-500)).join(' | ')})` : ''}`);
    const results = runs.map((r) => JSON.parse(r.stdout().trim().split('\n').pop()!).result as J);
    const changed = results.map((r) => Number(r.changed));
    t.equal(changed[0]! + changed[1]!, N, `every invoice changed once in all (${changed.join(' + ')})`);
    t.ok(results.every((r) => Number(r.examined) > 0), `both runs took part (examined ${results.map((r) => r.examined).join(' and ')})`);
    const after = (await h.db('billing').whereIn('id', ids).select('id', 'version_id', 'payment_status')) as J[];
    t.equal(after.filter((r) => r.payment_status === 'overdue').length, N, 'all overdue');
    t.equal(after.filter((r) => Number(r.version_id) === 2).length, N, 'each one version up');
    const history = (await h.db('resource_history').where({ resource_type: 'Invoice' }).whereIn('resource_id', ids).groupBy('resource_id').select('resource_id').count({ n: '*' })) as J[];
    // a row written natively gains its first state (version 1) and the new version (2)
    t.same(history.filter((r) => Number(r.n) !== 2).map((r) => `${r.resource_id}: ${r.n}`), [], 'one new version each in resource_history');
    t.equal(history.length, N, 'every invoice has its history');
    t.comment(`two concurrent sweeps over ${N} invoices: ${changed.join(' + ')} changes, ${elapsed(released)} from the barrier (${elapsed(t0)} with the start-up)`);

    t.test('hms jobs status prints every queue with its counts and last run', async (t) => {
      const run = hms(t, ['jobs', 'status'], env);
      const exit = await within(run.exited, 30_000, 'jobs status');
      t.equal(exit.code, 0, `exits 0 ${run.stderr()}`);
      const out = run.stdout();
      t.match(out, /^Jobs: BullMQ/, 'on BullMQ');
      for (const q of QUEUE_NAMES) t.match(out, new RegExp(`^${q}\\n  waiting \\d+, active \\d+, delayed \\d+, failed \\d+, completed \\d+`, 'm'), `${q} with its counts`);
      t.match(out, /overdue-billing\n(?: {2}.*\n)*? {2}last run: completed .*"changed":\d+/, 'the last overdue run with its result');
      t.match(out, /lab-ingest\n(?: {2}.*\n)*? {2}recorded work not done: /, 'the recorded work of lab-ingest');
      // the figures are BullMQ's (nothing runs now: the workers above have stopped)
      const bull = new BullQueues(h.config, silentLog);
      try {
        const c = await bull.queue('lab-ingest').getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        t.match(out, `lab-ingest\n  waiting ${c.waiting ?? 0}, active ${c.active ?? 0}, delayed ${c.delayed ?? 0}, failed ${c.failed ?? 0}, completed ${c.completed ?? 0}\n`, `lab-ingest's counts are BullMQ's (${c.completed ?? 0} completed, ${c.failed ?? 0} failed)`);
      } finally {
        await bull.close();
      }
    });
  });
}
