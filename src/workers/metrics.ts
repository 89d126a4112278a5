/**
 * Per-queue figures of this process (processed, failed, retried, duration), for logs and for
 * the metrics endpoint (prom-client, with the operations work). Counters only: no job data.
 */
import type { QueueName } from './queues.js';

export interface QueueFigures {
  processed: number;
  failed: number;
  retried: number;
  /** Sum and count of run durations (ms), and the slowest. */
  durationMsTotal: number;
  durationMsMax: number;
}

export class JobMetrics {
  private readonly figures = new Map<QueueName, QueueFigures>();

  private of(queue: QueueName): QueueFigures {
    let f = this.figures.get(queue);
    if (!f) this.figures.set(queue, (f = { processed: 0, failed: 0, retried: 0, durationMsTotal: 0, durationMsMax: 0 }));
    return f;
  }

  /** One run ended: completed, failed for good, or failed and to be retried. */
  record(queue: QueueName, outcome: 'completed' | 'failed' | 'retry', durationMs: number): void {
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
