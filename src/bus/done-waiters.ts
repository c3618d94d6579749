import type { Finished } from '../jobs/bus.ts';
import type { JobRecord } from '../jobs/job.ts';

/** Requests in this process waiting for jobs to finish, woken by a notice (local, or from Redis). */
export class DoneWaiters {
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

  wake(jobId: string, job?: JobRecord): void {
    for (const finish of [...(this.waiters.get(jobId) ?? [])]) finish(job ? { job } : {});
  }

  /** Every waiter gets null (shutdown). */
  clear(): void {
    for (const set of this.waiters.values()) for (const finish of [...set]) finish(null);
  }
}
