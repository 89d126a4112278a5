/** Collectors every HMS process serves (`hms serve` / `hms start` and `hms worker`). */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Knex } from 'knex';
import { outboxCounts } from '../workers/outbox.js';

/** The standard collectors of an HMS process: Node's figures (event loop, heap, GC, handles). */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hms_' });
  return registry;
}

/** Unfinished work in job_outbox by queue and state, read at each scrape; and whether that worked (hms_database_up). */
export function outboxGauge(registry: Registry, db: Knex): void {
  new Gauge({
    name: 'hms_job_outbox', help: 'Jobs recorded in job_outbox and not done, by queue and status (queued, active, failed)',
    labelNames: ['queue', 'status'], registers: [registry],
    async collect() {
      this.reset();
      try {
        for (const r of await outboxCounts(db, ['queued', 'active', 'failed'])) this.set({ queue: r.queue, status: r.status }, r.n);
        up.set(1);
      } catch {
        // the database away: the scrape still answers, with hms_database_up 0 and no outbox figures
        up.set(0);
      }
    },
  });
  const up = new Gauge({ name: 'hms_database_up', help: '1 when the last scrape could query the database, else 0', registers: [registry] });
}
