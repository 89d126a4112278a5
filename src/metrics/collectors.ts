/** Collectors every HMS process serves (`hms serve` / `hms start` and `hms worker`). */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Knex } from 'knex';

/** The standard collectors of an HMS process: Node's figures (event loop, heap, GC, handles). */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hms_' });
  return registry;
}

/** Unfinished work in job_outbox by queue and state, read at each scrape. */
export function outboxGauge(registry: Registry, db: Knex): void {
  new Gauge({
    name: 'hms_job_outbox', help: 'Jobs recorded in job_outbox and not done, by queue and status (queued, active, failed)',
    labelNames: ['queue', 'status'], registers: [registry],
    async collect() {
      this.reset();
      const rows = await db('job_outbox').select('queue', 'status').count({ n: '*' }).whereIn('status', ['queued', 'active', 'failed']).groupBy('queue', 'status');
      for (const r of rows as { queue: string; status: string; n: number | string }[]) this.set({ queue: r.queue, status: r.status }, Number(r.n));
    },
  });
}
