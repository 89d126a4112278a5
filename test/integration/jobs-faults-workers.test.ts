/**
 * The faults of background workers (issue 9, docs/jobs.md), against real Redis, real MariaDB and
 * real `hms worker` processes (node bin/hms.mjs worker) with short timings: two workers at once,
 * a worker SIGKILLed mid-batch. The poison messages are in jobs-faults-poison.test.ts, the outages
 * (Redis, the database) and the concurrent sweeps in jobs-faults-outages.test.ts: each file stays
 * well inside tap's timeout (together they ran 105 s on the loaded CI machine).
 *
 * The API runs in this process (fastify.inject) on the test's queue prefix; messages are FHIR
 * Bundles and HL7 v2 ORU^R01 posted as a lab client. Every wait is a bounded poll of the database.
 * Needs REDIS_URL and DATABASE_URL (MariaDB); skipped otherwise. Diagnostics: the workers' output
 * is printed when a test fails; HMS_TEST_WORKER_LOG_LEVEL=info logs every job, and
 * HMS_TEST_LOG_DIR=<dir> keeps each pool's output in a file there.
 */
import t from 'tap';
import { until, WorkerPool } from '../helpers/processes.js';
import { unique } from '../helpers/world.js';
import {
  DATABASE_URL, REDIS_URL, elapsed, exactlyOnce, faultSetup, finished, lab, messages, postMany, settle,
} from '../helpers/lab-faults.js';

if (!REDIS_URL || !DATABASE_URL) {
  t.plan(0, 'the fault tests need real Redis and MariaDB: set REDIS_URL and DATABASE_URL');
} else {
  const { h, workerEnv } = await faultSetup(t);

  t.test('two workers at once: 40 messages, each done exactly once', async (t) => {
    const l = await lab(h);
    const pool = new WorkerPool(t, workerEnv());
    await Promise.all([pool.start(), pool.start()]);
    const t0 = Date.now();
    const ids = await postMany(t, l, 40, 2, unique(), true);
    const rows = await settle(h, ids, 40_000);
    t.ok(finished(rows, ids.length), `settled in ${elapsed(t0)}`);
    await exactlyOnce(t, l, ids, 2, pool);
    t.same(pool.exits, [], 'no worker exited');
    t.comment(`two workers: 40 messages (20 FHIR, 20 HL7 v2; 80 Observations, 20 DiagnosticReports) posted and done in ${elapsed(t0)}`);
  });

  t.test('a worker SIGKILLed mid-batch: every message done exactly once, none left processing', async (t) => {
    const l = await lab(h);
    const pool = new WorkerPool(t, workerEnv());
    pool.restart = false;
    // the batch is waiting when the worker starts: it is killed with most of it to do
    const ids = await postMany(t, l, 40, 4, unique(), true);
    await pool.start();
    const doneCount = async () => (await messages(h, ids)).filter((r) => r.status === 'done').length;
    const before = await until(doneCount, (n) => n >= 3, 30_000, 20);
    await pool.killAll();
    const killedAt = Date.now();
    const atKill = await messages(h, ids);
    const doneAtKill = atKill.filter((r) => r.status === 'done').length;
    t.ok(before >= 3 && doneAtKill < ids.length, `killed mid-batch: ${doneAtKill} of ${ids.length} done, ${atKill.filter((r) => r.status === 'processing').length} processing`);
    await pool.start();
    const rows = await settle(h, ids, 40_000);
    t.ok(finished(rows, ids.length), `the new worker finished the rest in ${elapsed(killedAt)} after the kill`);
    await exactlyOnce(t, l, ids, 4, pool);
    t.ok(rows.some((r) => r.attempts > 1) || doneAtKill === ids.length, `messages cut off were run again (${rows.filter((r) => r.attempts > 1).length} with attempts > 1)`);
    t.comment(`SIGKILL: ${doneAtKill}/40 done at the kill; the rest done ${elapsed(killedAt)} after it`);
  });
}
