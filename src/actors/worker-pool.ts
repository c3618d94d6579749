import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { Budget } from '../sandbox/budget.ts';
import { resultWithoutRun, type ExecutionPlan } from '../sandbox/execution.ts';
import { initialMemoryMb } from '../sandbox/plan.ts';
import type { RunFunction } from './runner.ts';
import { dispatch, spawn, stop, type Ref } from './system.ts';
import { spawnWorker, type ExecutionReply, type WorkerIdle, type WorkerMessage } from './worker.ts';

export interface PoolStats {
  workers: number;
  idle: number;
  busy: number;
  queued: number;
  /** Executions this pool could start now or as soon as a busy worker is free (waiting ones that may run next count against it). */
  capacity: number;
  list: { id: string; busy: boolean; executionId: string | null; startedAt: number }[];
}

export type PoolMessage =
  | { type: 'submit'; plan: ExecutionPlan; owner?: string | null; replyTo: Ref<ExecutionReply>; onStart?: (worker: string) => void }
  | { type: 'cancel'; executionId: string }
  | WorkerIdle
  | { type: 'resize'; count: number }
  | { type: 'retire'; worker: string }
  | { type: 'stats'; replyTo: Ref<PoolStats> };

export interface PoolOptions {
  size: number;
  /** At most this many executions of one owner run at once; the rest wait without blocking others. */
  maxRunningPerOwner?: number;
  /** The sum of the memory and CPU limits of running executions stays within this. */
  budget?: { memoryMb: number; cpus: number };
  run: RunFunction;
  metrics: Metrics;
  log: Logger;
}

interface Pending {
  plan: ExecutionPlan;
  owner: string | null;
  replyTo: Ref<ExecutionReply>;
  onStart: ((worker: string) => void) | undefined;
  controller: AbortController;
  /** What the execution takes from the budget while it runs. */
  memoryMb: number;
  cpus: number;
}

/**
 * The pool's state and its scheduling rules: FIFO, at most `maxRunningPerOwner` of one owner running,
 * within the budget, never a second execution on a worker, never a running execution interrupted.
 */
class Pool {
  readonly workers = new Map<string, Ref<WorkerMessage>>();
  idle: string[] = [];
  readonly busy = new Map<string, Pending>();
  readonly queue: Pending[] = [];
  /** Workers asked to stop; a busy one stops when its execution ends, never mid-run. */
  readonly retiring = new Set<string>();
  /** When each worker was spawned (ms since the epoch). */
  readonly born = new Map<string, number>();
  /** Executions running per owner (API key), for KEY_MAX_RUNNING_JOBS. */
  readonly runningByOwner = new Map<string, number>();
  private readonly budget: Budget | null;
  private readonly maxPerOwner: number;

  constructor(private readonly options: PoolOptions) {
    this.budget = options.budget ? new Budget(options.budget.memoryMb, options.budget.cpus) : null;
    this.maxPerOwner = options.maxRunningPerOwner ?? Number.POSITIVE_INFINITY;
  }

  private eligible(pending: Pending): boolean {
    return pending.owner === null || (this.runningByOwner.get(pending.owner) ?? 0) < this.maxPerOwner;
  }

  submit(message: Extract<PoolMessage, { type: 'submit' }>): void {
    const { plan } = message;
    this.queue.push({
      plan,
      owner: message.owner ?? null,
      replyTo: message.replyTo,
      onStart: message.onStart,
      controller: new AbortController(),
      memoryMb: this.budget ? initialMemoryMb(plan.language) : 0,
      cpus: this.budget ? plan.language.limits.cpus : 0,
    });
    this.options.metrics.queueDepth.labels(plan.language.id).inc();
    this.startWaiting();
  }

  /**
   * Takes the oldest waiting execution whose owner is under its running limit, if it fits the budget.
   * One that does not fit waits first in line: smaller ones never overtake it.
   */
  private takeNext(): Pending | undefined {
    const index = this.queue.findIndex((p) => this.eligible(p));
    const next = this.queue[index];
    if (!next || (this.budget && !this.budget.take(next.memoryMb, next.cpus))) return undefined;
    this.queue.splice(index, 1);
    this.options.metrics.queueDepth.labels(next.plan.language.id).dec();
    return next;
  }

  /** Hands waiting executions to idle workers while any can start. */
  private startWaiting(): void {
    for (let worker = this.idle[0]; worker !== undefined; worker = this.idle[0]) {
      const next = this.takeNext();
      const ref = this.workers.get(worker);
      if (!next || !ref) return;
      this.idle.shift();
      this.busy.set(worker, next);
      if (next.owner !== null) this.runningByOwner.set(next.owner, (this.runningByOwner.get(next.owner) ?? 0) + 1);
      dispatch(ref, { type: 'run', plan: next.plan, signal: next.controller.signal, replyTo: next.replyTo, onStart: next.onStart });
    }
  }

  workerIdle(worker: string): void {
    const finished = this.busy.get(worker);
    this.busy.delete(worker);
    if (finished) {
      this.budget?.release(finished.memoryMb, finished.cpus);
      if (finished.owner !== null) {
        const running = (this.runningByOwner.get(finished.owner) ?? 1) - 1;
        if (running > 0) this.runningByOwner.set(finished.owner, running);
        else this.runningByOwner.delete(finished.owner);
      }
    }
    if (this.retiring.has(worker)) this.retire(worker);
    else if (this.workers.has(worker) && !this.idle.includes(worker)) this.idle.push(worker);
    this.startWaiting();
  }

  /** A waiting execution answers `cancelled` at once; a running one has its signal aborted. */
  cancel(executionId: string): void {
    const index = this.queue.findIndex((p) => p.plan.id === executionId);
    const [waiting] = index >= 0 ? this.queue.splice(index, 1) : [];
    if (waiting) {
      this.options.metrics.queueDepth.labels(waiting.plan.language.id).dec();
      dispatch(waiting.replyTo, { type: 'result', executionId, result: resultWithoutRun('cancelled') });
      // It may have been first in line for the budget.
      this.startWaiting();
    }
    for (const pending of this.busy.values()) if (pending.plan.id === executionId) pending.controller.abort();
  }

  resize(count: number, self: Ref<PoolMessage>): void {
    const active = [...this.workers.keys()].filter((name) => !this.retiring.has(name));
    for (let i = active.length; i < count; i++) {
      const name = randomUUID();
      this.born.set(name, Date.now());
      this.workers.set(name, spawnWorker(self, name, this.options.run, this.options.log));
      dispatch(self, { type: 'worker-idle', worker: name });
    }
    // Retire idle workers first, busy ones after their execution.
    const surplus = active.length - count;
    const byPreference = [...active.filter((n) => this.idle.includes(n)), ...active.filter((n) => !this.idle.includes(n))];
    for (const name of byPreference.slice(0, Math.max(0, surplus))) this.markRetiring(name);
  }

  markRetiring(name: string): void {
    if (!this.workers.has(name)) return;
    this.retiring.add(name);
    if (this.idle.includes(name)) this.retire(name);
  }

  private retire(name: string): void {
    const ref = this.workers.get(name);
    if (ref) stop(ref);
    this.workers.delete(name);
    this.born.delete(name);
    this.retiring.delete(name);
    this.idle = this.idle.filter((n) => n !== name);
  }

  /**
   * Workers that will be free for new work: active (not retiring) ones not running anything, less the
   * waiting executions that may take them. One waiting behind its owner's limit takes no worker.
   */
  stats(): PoolStats {
    const active = [...this.workers.keys()].filter((name) => !this.retiring.has(name));
    const free = active.filter((name) => !this.busy.has(name)).length;
    return {
      workers: this.workers.size,
      idle: this.idle.length,
      busy: this.busy.size,
      queued: this.queue.length,
      capacity: Math.max(0, free - this.queue.filter((p) => this.eligible(p)).length),
      list: [...this.workers.keys()].map((id) => {
        const pending = this.busy.get(id);
        return { id, busy: pending !== undefined, executionId: pending?.plan.id ?? null, startedAt: this.born.get(id) ?? Date.now() };
      }),
    };
  }

  get size(): number {
    return this.workers.size - this.retiring.size;
  }
}

/**
 * The node's WorkerPool: `size` Worker children, a FIFO of executions waiting for one, cancellation of
 * waiting or running executions, and resizing that never interrupts a running execution.
 */
export function spawnWorkerPool(parent: Ref<never>, options: PoolOptions): Ref<PoolMessage> {
  const { metrics, log } = options;
  const self: Ref<PoolMessage> = spawn(
    parent,
    (pool: Pool, message: PoolMessage, ctx): Pool => {
      switch (message.type) {
        case 'submit': pool.submit(message); break;
        case 'worker-idle': pool.workerIdle(message.worker); break;
        case 'cancel': pool.cancel(message.executionId); break;
        case 'resize': pool.resize(message.count, ctx.self); break;
        case 'retire': pool.markRetiring(message.worker); break;
        case 'stats': dispatch(message.replyTo, pool.stats()); break;
      }
      metrics.workerPoolSize.set(pool.size);
      return pool;
    },
    'worker-pool',
    {
      initialStateFunc: () => new Pool(options),
      onCrash: (message, error, ctx) => {
        log.error({ err: error, message: message?.type }, 'worker pool failed on a message; resuming');
        return ctx.resume;
      },
    },
  );
  dispatch(self, { type: 'resize', count: options.size });
  return self;
}
