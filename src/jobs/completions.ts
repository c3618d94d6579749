import type { JobRecord } from './job.ts';

/** A finished job, with its record when the notifier had it at hand (same process), so waiters skip a read. */
export interface Finished {
  job?: JobRecord;
}

/**
 * "Job X finished" notifications, so a synchronous request waits on an event instead of polling the
 * database. The embedded mode keeps them in memory; the cluster publishes them over Redis.
 */
export interface Completions {
  /** Resolves when `jobId` finishes, or null when `timeoutMs` passes first. Register before submitting. */
  wait(jobId: string, timeoutMs: number): Promise<Finished | null>;
  notify(jobId: string, job?: JobRecord): Promise<void>;
  close(): Promise<void>;
}

export class LocalCompletions implements Completions {
  private readonly waiters = new Map<string, Set<(done: Finished | null) => void>>();

  wait(jobId: string, timeoutMs: number): Promise<Finished | null> {
    return new Promise((resolve) => {
      const set = this.waiters.get(jobId) ?? new Set();
      this.waiters.set(jobId, set);
      const finish = (done: Finished | null) => {
        clearTimeout(timer);
        set.delete(finish);
        if (set.size === 0) this.waiters.delete(jobId);
        resolve(done);
      };
      const timer = setTimeout(() => finish(null), timeoutMs);
      set.add(finish);
    });
  }

  async notify(jobId: string, job?: JobRecord): Promise<void> {
    for (const finish of [...(this.waiters.get(jobId) ?? [])]) finish(job ? { job } : {});
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const finish of [...set]) finish(null);
  }
}
