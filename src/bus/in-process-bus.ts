import { EARLIER_PROCESSES, type DeadConsumer, type Delivery, type Finished, type JobBus } from '../jobs/bus.ts';
import type { JobRecord } from '../jobs/job.ts';
import { DoneWaiters } from './done-waiters.ts';

/**
 * The job bus of one process (the embedded and single-node modes): a FIFO in memory. Nothing survives
 * the process, and nothing needs to: the database holds every job, and at start-up the jobs an earlier
 * process left running are its dead consumer's (EARLIER_PROCESSES), handed back by maintenance.
 */
export class InProcessBus implements JobBus {
  private readonly queue: Delivery[] = [];
  /** Jobs enqueued and not acknowledged, delivered or not. */
  private readonly held = new Set<string>();
  private readonly takers = new Set<() => void>();
  private readonly done = new DoneWaiters();
  private readonly cancelListeners: ((jobId: string) => void)[] = [];
  /** Until maintenance has handed back what earlier processes left running. */
  private earlierProcessesPending = true;
  private closed = false;

  async start(): Promise<void> {}

  async enqueue(jobId: string, job?: JobRecord): Promise<void> {
    if (this.held.has(jobId)) return;
    this.held.add(jobId);
    this.queue.push(job ? { jobId, receipt: jobId, job } : { jobId, receipt: jobId });
    for (const wake of this.takers) wake();
  }

  async take(_consumer: string, max: number, waitMs: number): Promise<Delivery[]> {
    if (this.queue.length === 0 && !this.closed && max > 0) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.takers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, waitMs);
        this.takers.add(wake);
      });
    }
    return this.queue.splice(0, Math.max(0, max));
  }

  async ack(delivery: Delivery): Promise<void> {
    this.held.delete(delivery.jobId);
  }

  async holds(jobIds: readonly string[]): Promise<Set<string>> {
    return new Set(jobIds.filter((id) => this.held.has(id)));
  }

  async deadConsumers(): Promise<DeadConsumer[]> {
    return this.earlierProcessesPending ? [EARLIER_PROCESSES] : [];
  }

  async dropConsumer(consumer: DeadConsumer): Promise<string[]> {
    if (consumer === EARLIER_PROCESSES) this.earlierProcessesPending = false;
    return [];
  }

  async notifyDone(jobId: string, job?: JobRecord): Promise<void> {
    this.done.wake(jobId, job);
  }

  waitDone(jobId: string, timeoutMs: number): Promise<Finished | null> {
    return this.done.wait(jobId, timeoutMs);
  }

  /** A cancelled job still waiting in the queue leaves it (the store says it is finished); a delivered one is told. */
  async publishCancel(jobId: string): Promise<void> {
    const index = this.queue.findIndex((delivery) => delivery.jobId === jobId);
    if (index >= 0) {
      this.queue.splice(index, 1);
      this.held.delete(jobId);
    }
    for (const listener of this.cancelListeners) listener(jobId);
  }

  onCancel(listener: (jobId: string) => void): void {
    this.cancelListeners.push(listener);
  }

  /** One process: every chore is its own. */
  async lock(): Promise<boolean> {
    return true;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.takers) wake();
    this.done.clear();
  }
}
