/**
 * Per-queue figures of this process (processed, failed, retried, duration), for the worker's
 * minute log line and, once attached to a prom-client registry, for /metrics
 * (hms_job_runs_total, hms_job_duration_seconds). Queue names and outcomes only: no job data.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { QueueName } from './queues.js';

export interface QueueFigures {
  processed: number;
  failed: number;
  retried: number;
  /** Sum and count of run durations (ms), and the slowest. */
  durationMsTotal: number;
  durationMsMax: number;
}

type Outcome = 'completed' | 'failed' | 'retry';

export class JobMetrics {
  private readonly figures = new Map<QueueName, QueueFigures>();
  private prom?: { runs: Counter<'queue' | 'outcome'>; duration: Histogram<'queue' | 'outcome'> };

  /** Counts the runs from now on in a prom-client registry too. */
  attach(registry: Registry): void {
    this.prom = {
      runs: new Counter({ name: 'hms_job_runs_total', help: 'Job runs of this process by queue and outcome (completed, failed for good, retry)', labelNames: ['queue', 'outcome'], registers: [registry] }),
      duration: new Histogram({
        name: 'hms_job_duration_seconds', help: 'Job run durations of this process by queue and outcome', labelNames: ['queue', 'outcome'],
        buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300], registers: [registry],
      }),
    };
  }

  private of(queue: QueueName): QueueFigures {
    let f = this.figures.get(queue);
    if (!f) this.figures.set(queue, (f = { processed: 0, failed: 0, retried: 0, durationMsTotal: 0, durationMsMax: 0 }));
    return f;
  }

  /** One run ended: completed, failed for good, or failed and to be retried. */
  record(queue: QueueName, outcome: Outcome, durationMs: number): void {
    this.prom?.runs.inc({ queue, outcome });
    this.prom?.duration.observe({ queue, outcome }, durationMs / 1000);
    const f = this.of(queue);
    if (outcome === 'completed') f.processed++;
    else if (outcome === 'failed') f.failed++;
    else f.retried++;
    f.durationMsTotal += durationMs;
    f.durationMsMax = Math.max(f.durationMsMax, durationMs);
  }

  snapshot(): Record<string, QueueFigures> {
    return Object.fromEntries([...this.figures].map(([q, f]) => [q, { ...f }]));
  }
}
