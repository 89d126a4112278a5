/**
 * In-process job runner for the embedded mode (no REDIS_URL). It runs the same processors and
 * schedules that the BullMQ workers run in production; the queues themselves arrive with the
 * background-work issue, so for now it only owns the lifecycle.
 */
export interface JobRunner {
  readonly mode: 'in-process' | 'bullmq';
  close(): Promise<void>;
}

export function startLocalRunner(): JobRunner {
  return { mode: 'in-process', close: async () => {} };
}
