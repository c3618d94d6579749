import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { DeadConsumer, JobBus } from './bus.ts';
import type { JobStore } from './store.ts';

export interface MaintenanceOptions {
  store: JobStore;
  bus: JobBus;
  /** This node: the owner of its locks, never one of the dead. */
  nodeId: string;
  /** Runs a job may start before it is failed instead of re-run (a job that kills its node). */
  maxAttempts: number;
  ttlSeconds: number;
  metrics: Metrics;
  log: Logger;
}

/** A queued job younger than this may still be on its way into the bus: recovery leaves it alone. */
const LOST_AFTER_MS = 5000;
const RECOVERY_LOCK_MS = 8000;
const SWEEP_LOCK_MS = 30_000;
const RECLAIM_LOCK_MS = 30_000;

/**
 * The chores that keep the database and the bus in agreement, whatever died: the jobs of dead manager
 * nodes go back to the queue (reclaim), queued jobs the bus lost are queued again (recovery), and
 * finished jobs past the TTL are deleted (sweep). Each takes the bus's lock, so in a cluster one node
 * does it at a time; in one process every chore is its own.
 */
export class JobMaintenance {
  constructor(private readonly options: MaintenanceOptions) {}

  /**
   * Hands back the jobs of consumers that died: their running jobs go back to queued (or fail after
   * `maxAttempts` starts), the entries they held are queued again, and `onDead` cleans up after the node
   * (its containers on this host, its membership).
   */
  async reclaim(onDead: (nodeId: string) => Promise<void> = async () => undefined): Promise<void> {
    const { store, bus, nodeId, metrics, log } = this.options;
    for (const consumer of await bus.deadConsumers(nodeId)) {
      if (!(await bus.lock(`reclaim:${consumer ?? 'earlier-processes'}`, RECLAIM_LOCK_MS, nodeId))) continue;
      const { requeued, failed } = await store.requeueRunning(consumer, this.options.maxAttempts);
      const taken = await bus.dropConsumer(consumer);
      const again = await this.stillQueued(new Set([...requeued, ...taken]));
      for (const jobId of again) await bus.enqueue(jobId);
      for (const jobId of failed) await bus.notifyDone(jobId);
      metrics.jobsRecovered.labels('requeued').inc(requeued.length);
      metrics.jobsRecovered.labels('failed').inc(failed.length);
      if (consumer !== null) await onDead(consumer);
      if (consumer !== null || requeued.length + failed.length > 0) log.warn(describe(consumer, { taken: taken.length, requeued: requeued.length, failed: failed.length }), 'reclaimed the jobs of a dead node');
    }
  }

  private async stillQueued(jobIds: Set<string>): Promise<string[]> {
    const queued: string[] = [];
    for (const jobId of jobIds) if ((await this.options.store.get(jobId))?.status === 'queued') queued.push(jobId);
    return queued;
  }

  /** Queued jobs the bus does not hold (Redis restarted empty, a crash between store and queue) go back in. */
  async recover(): Promise<void> {
    const { store, bus, nodeId, metrics, log } = this.options;
    if (!(await bus.lock('recover', RECOVERY_LOCK_MS, nodeId))) return;
    const queued = await store.queuedIds({ olderThanMs: LOST_AFTER_MS, limit: 1000 });
    const held = await bus.holds(queued);
    const lost = queued.filter((jobId) => !held.has(jobId));
    for (const jobId of lost) await bus.enqueue(jobId);
    if (lost.length > 0) {
      metrics.jobsRecovered.labels('requeued').inc(lost.length);
      log.warn({ count: lost.length }, 're-enqueued queued jobs the bus did not hold');
    }
  }

  /** Deletes finished jobs past the TTL. */
  async sweep(): Promise<void> {
    const { store, bus, nodeId, log } = this.options;
    if (!(await bus.lock('sweep', SWEEP_LOCK_MS, nodeId))) return;
    const deleted = await store.sweepExpired(this.options.ttlSeconds);
    if (deleted > 0) log.info({ deleted }, 'expired jobs deleted');
  }
}

function describe(consumer: DeadConsumer, counts: Record<string, number>): Record<string, unknown> {
  return { consumer: consumer ?? 'earlier processes', ...counts };
}
