import { ask, dispatch, type Ref } from '../actors/system.ts';
import type { ExecutionReply } from '../actors/worker.ts';
import type { PoolMessage, PoolStats } from '../actors/worker-pool.ts';
import { ActorTimeoutError } from '../errors.ts';
import type { Delivery, JobBus } from '../jobs/bus.ts';
import type { JobLifecycle } from '../jobs/lifecycle.ts';
import { poolWaitMs } from '../languages/deadlines.ts';
import type { Logger } from '../observability/logger.ts';
import { resultWithoutRun, type ExecutionPlan, type ExecutionResult } from '../sandbox/execution.ts';

export interface ManagerLoopOptions {
  nodeId: string;
  bus: JobBus;
  lifecycle: JobLifecycle;
  pool: Ref<PoolMessage>;
  syncWaitMarginMs: number;
  log: Logger;
}

/** How long one read of the bus waits for a job before the loop looks at its capacity again. */
const TAKE_WAIT_MS = 2000;
/** With no capacity, the loop looks again after this long at the latest (a resize may have freed some). */
const CAPACITY_POLL_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The sandbox side's feed: takes as many jobs from the bus as the WorkerPool can start, and no more (a
 * job waits in the bus, not in a busy node), and runs each through the job lifecycle. Cancel notices for
 * the jobs it runs reach the pool. The same in every mode: only the bus differs.
 */
export class ManagerLoop {
  private running = false;
  /** Jobs taken from the bus and not finished. */
  private readonly executing = new Set<string>();
  /** Taken jobs not yet handed to the pool (being read): they will need a worker. */
  private handingOver = 0;
  private wake: (() => void) | undefined;
  private readonly changeListeners: (() => void)[] = [];

  constructor(private readonly options: ManagerLoopOptions) {
    options.bus.onCancel((jobId) => {
      if (this.executing.has(jobId)) dispatch(options.pool, { type: 'cancel', executionId: jobId });
    });
  }

  start(): void {
    this.running = true;
    void this.feed();
  }

  /** Capacity may have changed (the pool was resized): look now. */
  nudge(): void {
    this.wake?.();
  }

  /** Called when a worker starts one of this node's jobs and when one ends (membership shows BUSY/IDLE at once). */
  onJobsChanged(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  private stats(): Promise<PoolStats> {
    return ask<PoolMessage, PoolStats>(this.options.pool, (replyTo) => ({ type: 'stats', replyTo }), 2000, 'WorkerPool');
  }

  private async feed(): Promise<void> {
    const { bus, nodeId, log } = this.options;
    while (this.running) {
      let capacity: number;
      let deliveries: Delivery[];
      try {
        capacity = (await this.stats()).capacity - this.handingOver;
        if (capacity <= 0) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            setTimeout(resolve, CAPACITY_POLL_MS);
          });
          continue;
        }
        deliveries = await bus.take(nodeId, capacity, TAKE_WAIT_MS);
        // Stopped while waiting: what came is left to the bus (unacknowledged, it is delivered again or reclaimed).
        if (!this.running) return;
      } catch (error) {
        if (this.running) log.warn({ err: error }, 'reading the job bus failed; retrying');
        await sleep(500);
        continue;
      }
      for (const delivery of deliveries) this.handle(delivery);
    }
  }

  private handle(delivery: Delivery): void {
    this.executing.add(delivery.jobId);
    this.handingOver++;
    let handedOver = false;
    const handOver = () => {
      if (!handedOver) this.handingOver--;
      handedOver = true;
    };
    this.options.lifecycle
      .execute(delivery, this.options.nodeId, (plan, owner, onStart) => this.runInPool(plan, owner, onStart, handOver))
      .catch((error: unknown) => this.options.log.error({ err: error, job: delivery.jobId }, 'job handling failed; it stays unacknowledged and will be reclaimed'))
      .finally(() => {
        handOver();
        this.executing.delete(delivery.jobId);
        this.wake?.();
        this.changed();
      });
  }

  /** Runs a plan in the pool; a pool that does not answer in time fails the job as internal. */
  private async runInPool(plan: ExecutionPlan, owner: string | null, onStart: (workerId: string) => void, handOver: () => void): Promise<ExecutionResult> {
    const { pool } = this.options;
    const waitMs = poolWaitMs(plan.language, this.options.syncWaitMarginMs);
    handOver();
    try {
      const reply = await ask<PoolMessage, ExecutionReply>(
        pool,
        (replyTo) => ({ type: 'submit', plan, owner, replyTo, onStart: (worker) => {
          onStart(worker);
          this.changed();
        } }),
        waitMs,
        'WorkerPool',
      );
      return reply.result;
    } catch (error) {
      if (!(error instanceof ActorTimeoutError)) throw error;
      dispatch(pool, { type: 'cancel', executionId: plan.id });
      return resultWithoutRun('internal', `the worker pool did not answer within ${waitMs} ms`);
    }
  }

  /**
   * Drain: stop reading, let running jobs finish and be saved (at most `maxWaitMs`). A read still waiting
   * on the bus ends by itself (it takes nothing once stopped), so it is not waited for.
   */
  async stop(maxWaitMs = 60_000): Promise<void> {
    this.running = false;
    this.wake?.();
    for (let waited = 0; this.executing.size > 0 && waited < maxWaitMs; waited += 100) await sleep(100);
  }
}
