import { randomUUID } from 'node:crypto';
import type { ExecutionPlan, ExecutionResult } from '../sandbox/execution.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RunFunction } from './runner.ts';
import { dispatch, spawn, stop, type Ref } from './system.ts';
import { spawnWorker, type ExecutionReply, type ExecutionStarted, type WorkerMessage } from './worker.ts';

export interface PoolStats {
  workers: number;
  idle: number;
  busy: number;
  queued: number;
  list: { id: string; busy: boolean; executionId: string | null; startedAt: number }[];
}

export type PoolMessage =
  | { type: 'submit'; plan: ExecutionPlan; owner?: string | null; replyTo: Ref<ExecutionReply>; onStart?: Ref<ExecutionStarted> }
  | { type: 'cancel'; executionId: string }
  | { type: 'worker-idle'; worker: string }
  | { type: 'resize'; count: number }
  | { type: 'retire'; worker: string }
  | { type: 'stats'; replyTo: Ref<PoolStats> };

interface Pending {
  plan: ExecutionPlan;
  owner: string | null;
  replyTo: Ref<ExecutionReply>;
  onStart?: Ref<ExecutionStarted>;
  controller: AbortController;
}

interface PoolState {
  workers: Map<string, Ref<WorkerMessage>>;
  idle: string[];
  busy: Map<string, Pending>;
  queue: Pending[];
  /** Workers asked to stop; a busy one stops when its execution ends, never mid-run. */
  retiring: Set<string>;
  /** When each worker was spawned (ms since the epoch). */
  born: Map<string, number>;
  /** Executions running per owner (API key), for KEY_MAX_RUNNING_JOBS. */
  runningByOwner: Map<string, number>;
}

export interface PoolOptions {
  size: number;
  /** At most this many executions of one owner run at once; the rest wait without blocking others. */
  maxRunningPerOwner?: number;
  run: RunFunction;
  metrics: Metrics;
  log: Logger;
}

function cancelledResult(): ExecutionResult {
  return {
    status: 'failed',
    reason: 'cancelled',
    stdout: '',
    stderr: '',
    exitCode: null,
    signal: null,
    executionTimeMs: 0,
    truncated: false,
    compile: null,
    run: null,
    stdoutBytes: Buffer.alloc(0),
    stderrBytes: Buffer.alloc(0),
  };
}

/**
 * The node's WorkerPool: `size` Worker children, a FIFO of executions waiting for one, cancellation of
 * waiting or running executions, and resizing that never interrupts a running execution.
 */
export function spawnWorkerPool(parent: Ref<never>, options: PoolOptions): Ref<PoolMessage> {
  const { metrics, log } = options;
  const updatePoolSize = (state: PoolState) => {
    metrics.workerPoolSize.set(state.workers.size - state.retiring.size);
  };

  const maxPerOwner = options.maxRunningPerOwner ?? Number.POSITIVE_INFINITY;
  const eligible = (state: PoolState, pending: Pending) =>
    pending.owner === null || (state.runningByOwner.get(pending.owner) ?? 0) < maxPerOwner;

  /** Takes the oldest waiting execution whose owner is under its running limit. */
  function takeNext(state: PoolState): Pending | undefined {
    const index = state.queue.findIndex((p) => eligible(state, p));
    if (index < 0) return undefined;
    const [next] = state.queue.splice(index, 1);
    metrics.queueDepth.labels(next!.plan.language.id).dec();
    return next;
  }

  function assign(state: PoolState, worker: string, pending: Pending): void {
    state.busy.set(worker, pending);
    if (pending.owner !== null) state.runningByOwner.set(pending.owner, (state.runningByOwner.get(pending.owner) ?? 0) + 1);
    dispatch(state.workers.get(worker)!, { type: 'run', plan: pending.plan, signal: pending.controller.signal, replyTo: pending.replyTo, onStart: pending.onStart });
  }

  function resize(state: PoolState, count: number, self: Ref<PoolMessage>): void {
    const active = [...state.workers.keys()].filter((name) => !state.retiring.has(name));
    for (let i = active.length; i < count; i++) {
      const name = randomUUID();
      state.born.set(name, Date.now());
      state.workers.set(name, spawnWorker(self, name, options.run, log));
      dispatch(self, { type: 'worker-idle', worker: name });
    }
    // Retire idle workers first, busy ones after their execution.
    const surplus = active.length - count;
    const byPreference = [...active.filter((n) => state.idle.includes(n)), ...active.filter((n) => !state.idle.includes(n))];
    for (const name of byPreference.slice(0, Math.max(0, surplus))) {
      state.retiring.add(name);
      if (state.idle.includes(name)) retire(state, name);
    }
    updatePoolSize(state);
  }

  function retire(state: PoolState, name: string): void {
    const ref = state.workers.get(name);
    if (ref) stop(ref);
    state.workers.delete(name);
    state.born.delete(name);
    state.retiring.delete(name);
    state.idle = state.idle.filter((n) => n !== name);
  }

  const self: Ref<PoolMessage> = spawn(
    parent,
    (state: PoolState, message: PoolMessage, ctx): PoolState => {
      switch (message.type) {
        case 'submit': {
          const pending: Pending = { plan: message.plan, owner: message.owner ?? null, replyTo: message.replyTo, onStart: message.onStart, controller: new AbortController() };
          const worker = eligible(state, pending) ? state.idle.shift() : undefined;
          if (worker) assign(state, worker, pending);
          else {
            state.queue.push(pending);
            metrics.queueDepth.labels(message.plan.language.id).inc();
          }
          return state;
        }
        case 'worker-idle': {
          const finished = state.busy.get(message.worker);
          state.busy.delete(message.worker);
          if (finished?.owner) {
            const running = (state.runningByOwner.get(finished.owner) ?? 1) - 1;
            if (running > 0) state.runningByOwner.set(finished.owner, running);
            else state.runningByOwner.delete(finished.owner);
          }
          if (state.retiring.has(message.worker)) retire(state, message.worker);
          else if (state.workers.has(message.worker)) {
            const next = takeNext(state);
            if (next) assign(state, message.worker, next);
            else if (!state.idle.includes(message.worker)) state.idle.push(message.worker);
          }
          updatePoolSize(state);
          return state;
        }
        case 'cancel': {
          const index = state.queue.findIndex((p) => p.plan.id === message.executionId);
          if (index >= 0) {
            const [pending] = state.queue.splice(index, 1);
            metrics.queueDepth.labels(pending!.plan.language.id).dec();
            dispatch(pending!.replyTo, { type: 'result', executionId: pending!.plan.id, result: cancelledResult() });
          }
          for (const pending of state.busy.values()) {
            if (pending.plan.id === message.executionId) pending.controller.abort();
          }
          return state;
        }
        case 'resize':
          resize(state, message.count, ctx.self);
          return state;
        case 'retire':
          if (state.workers.has(message.worker)) {
            state.retiring.add(message.worker);
            if (state.idle.includes(message.worker)) retire(state, message.worker);
            updatePoolSize(state);
          }
          return state;
        case 'stats':
          dispatch(message.replyTo, {
            workers: state.workers.size,
            idle: state.idle.length,
            busy: state.busy.size,
            queued: state.queue.length,
            list: [...state.workers.keys()].map((id) => {
              const pending = state.busy.get(id);
              return { id, busy: pending !== undefined, executionId: pending?.plan.id ?? null, startedAt: state.born.get(id) ?? Date.now() };
            }),
          });
          return state;
      }
    },
    'worker-pool',
    {
      initialStateFunc: (): PoolState => ({ workers: new Map(), idle: [], busy: new Map(), queue: [], retiring: new Set<string>(), born: new Map(), runningByOwner: new Map() }),
      onCrash: (message, error, ctx) => {
        log.error({ err: error, message: message?.type }, 'worker pool failed on a message; resuming');
        return ctx.resume;
      },
    },
  );
  dispatch(self, { type: 'resize', count: options.size });
  return self;
}
