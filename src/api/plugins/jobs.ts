/**
 * The API's way to the workers (src/workers/queues.ts): `app.jobs` enqueues recorded work. With
 * REDIS_URL it is BullMQ (producers only: `hms serve` never processes jobs); in the embedded mode
 * `hms start` hands in its in-process runner. Without either, work stays recorded in the outbox
 * until a runner sweeps it.
 */
import fp from 'fastify-plugin';
import type { JobQueues } from '../../workers/jobs.js';
import { BullQueues } from '../../workers/bullmq.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The job transport, when there is one. */
    jobs?: JobQueues;
  }
}

export default fp<{ jobs?: JobQueues }>(async (app, opts) => {
  let jobs = opts.jobs;
  if (!jobs && app.config.REDIS_URL) {
    const own = new BullQueues(app.config, app.log);
    app.addHook('onClose', async () => own.close());
    jobs = own;
  }
  app.decorate('jobs', jobs);
}, { name: 'hms-jobs', dependencies: ['hms-database'] });
