/**
 * Running jobs in tests: the processors' dependencies on a test app's database, a direct run of
 * one job (as `hms jobs run` does), and a queue prefix of the test's own in Redis.
 */
import { pino } from 'pino';
import type { TestApp } from './app.js';
import type { JobDeps, JobLogger } from '../../src/workers/jobs.js';
import { runJob } from '../../src/workers/execute.js';
import type { QueueName } from '../../src/workers/queues.js';
import { unique } from './world.js';

export const silentLog = pino({ level: 'silent' }) as unknown as JobLogger;

/** A queue prefix of one test file's own, so that nothing it leaves in Redis meets another's. */
export const testPrefix = (): string => `hmstest-${unique()}`;

export function jobDeps(h: TestApp, extra: Partial<JobDeps> = {}): JobDeps {
  return { db: h.db, config: h.config, log: silentLog, auditLog: h.app.auditLog, now: () => new Date(), ...extra };
}

/** Runs a job once, now, in this process. */
export function runNow(h: TestApp, queue: QueueName, jobId: string, payload: Record<string, unknown>, extra: Partial<JobDeps> = {}) {
  return runJob({ queue, jobId, payload, attempt: 1, maxAttempts: h.config.HMS_JOB_ATTEMPTS }, jobDeps(h, extra));
}

/** Processes a stored lab message now; resolves with its status document. */
export async function processMessage(h: TestApp, id: string, token?: string): Promise<Record<string, unknown>> {
  await runNow(h, 'lab-ingest', id, { messageId: id }).catch(() => undefined);
  const res = await h.fhir({ method: 'GET', url: `/ingest/messages/${id}`, token });
  return res.json();
}

/** Removes a test's queues from Redis at teardown (when the app enqueues into BullMQ). */
export function dropQueuesAtTeardown(t: { teardown(fn: () => Promise<void>): void }, h: TestApp): void {
  t.teardown(async () => {
    const jobs = h.app.jobs as unknown as { all?: () => { obliterate(o: { force: boolean }): Promise<void> }[] } | undefined;
    for (const q of jobs?.all?.() ?? []) await q.obliterate({ force: true }).catch(() => undefined);
  });
}
