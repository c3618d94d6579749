/**
 * "Job X finished" notifications, so a synchronous request waits on an event instead of polling the
 * database. The embedded mode keeps them in memory; the cluster publishes them over Redis.
 */
export interface Completions {
  /** Resolves true when `jobId` finishes, false when `timeoutMs` passes first. Register before submitting. */
  wait(jobId: string, timeoutMs: number): Promise<boolean>;
  notify(jobId: string): Promise<void>;
  close(): Promise<void>;
}

export class LocalCompletions implements Completions {
  private readonly waiters = new Map<string, Set<(done: boolean) => void>>();

  wait(jobId: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const set = this.waiters.get(jobId) ?? new Set();
      this.waiters.set(jobId, set);
      const finish = (done: boolean) => {
        clearTimeout(timer);
        set.delete(finish);
        if (set.size === 0) this.waiters.delete(jobId);
        resolve(done);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      set.add(finish);
    });
  }

  async notify(jobId: string): Promise<void> {
    for (const finish of [...(this.waiters.get(jobId) ?? [])]) finish(true);
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const finish of [...set]) finish(false);
  }
}
