import type { ExecutionPlan, ExecutionResult } from '../sandbox/execution.ts';
import type { Logger } from '../observability/logger.ts';
import { spawnRunner, type RunFunction } from './runner.ts';
import { dispatch, spawn, stop, type Ref } from './system.ts';
import type { PoolMessage } from './worker-pool.ts';

export type ExecutionReply = { type: 'result'; executionId: string; result: ExecutionResult };
export type ExecutionStarted = { type: 'started'; executionId: string; worker: string };

export type WorkerMessage =
  | { type: 'run'; plan: ExecutionPlan; signal: AbortSignal; replyTo: Ref<ExecutionReply>; onStart?: Ref<ExecutionStarted> }
  | { type: 'runner-finished'; executionId: string; result: ExecutionResult }
  | { type: 'runner-crashed'; executionId: string; error: Error };

interface WorkerState {
  current: { plan: ExecutionPlan; replyTo: Ref<ExecutionReply>; runner: Ref<unknown> } | null;
}

/** The answer for an execution whose Runner crashed: the engine failed, not the program. */
export function internalFailure(error: Error): ExecutionResult {
  return {
    status: 'failed',
    reason: 'internal',
    stdout: '',
    stderr: `internal error: ${error.message}`,
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

/** A Worker runs one execution at a time, each in a fresh Runner child, and tells the pool when it is free. */
export function spawnWorker(pool: Ref<PoolMessage>, name: string, run: RunFunction, log: Logger): Ref<WorkerMessage> {
  const self: Ref<WorkerMessage> = spawn(
    pool,
    (state: WorkerState, message: WorkerMessage): WorkerState => {
      switch (message.type) {
        case 'run': {
          const runner = spawnRunner(self, run, message.plan.id);
          dispatch(runner, { type: 'execute', plan: message.plan, signal: message.signal });
          // After the runner's message: the "running" note is written while the sandbox already works.
          if (message.onStart) dispatch(message.onStart, { type: 'started', executionId: message.plan.id, worker: name });
          return { current: { plan: message.plan, replyTo: message.replyTo, runner } };
        }
        case 'runner-finished':
        case 'runner-crashed': {
          const current = state.current;
          if (!current || current.plan.id !== message.executionId) return state;
          let result: ExecutionResult;
          if (message.type === 'runner-crashed') {
            log.error({ err: message.error, job: message.executionId }, 'runner crashed; answering internal');
            result = internalFailure(message.error);
          } else {
            result = message.result;
          }
          stop(current.runner);
          dispatch(current.replyTo, { type: 'result', executionId: current.plan.id, result });
          dispatch(pool, { type: 'worker-idle', worker: name });
          return { current: null };
        }
      }
    },
    name,
    { initialState: { current: null } },
  );
  return self;
}
