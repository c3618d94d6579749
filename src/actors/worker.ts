import type { Logger } from '../observability/logger.ts';
import { resultWithoutRun, type ExecutionPlan, type ExecutionResult } from '../sandbox/execution.ts';
import { spawnRunner, type RunFunction, type RunnerReport } from './runner.ts';
import { dispatch, spawn, stop, type Ref } from './system.ts';

export type ExecutionReply = { type: 'result'; executionId: string; result: ExecutionResult };
/** A Worker tells its pool it is free again. */
export type WorkerIdle = { type: 'worker-idle'; worker: string };

export type WorkerMessage =
  | { type: 'run'; plan: ExecutionPlan; signal: AbortSignal; replyTo: Ref<ExecutionReply>; onStart?: (worker: string) => void }
  | RunnerReport;

interface WorkerState {
  current: { plan: ExecutionPlan; replyTo: Ref<ExecutionReply>; runner: Ref<unknown> } | null;
}

/** A Worker runs one execution at a time, each in a fresh Runner child, and tells the pool when it is free. */
export function spawnWorker(pool: Ref<WorkerIdle>, name: string, run: RunFunction, log: Logger): Ref<WorkerMessage> {
  const self: Ref<WorkerMessage> = spawn(
    pool,
    (state: WorkerState, message: WorkerMessage): WorkerState => {
      switch (message.type) {
        case 'run': {
          const runner = spawnRunner(self, run, message.plan.id);
          dispatch(runner, { type: 'execute', plan: message.plan, signal: message.signal });
          // After the runner's message: the "running" note is written while the sandbox already works.
          message.onStart?.(name);
          return { current: { plan: message.plan, replyTo: message.replyTo, runner } };
        }
        case 'runner-finished':
        case 'runner-crashed': {
          const current = state.current;
          if (!current || current.plan.id !== message.executionId) return state;
          let result: ExecutionResult;
          if (message.type === 'runner-crashed') {
            // The engine failed, not the program.
            log.error({ err: message.error, job: message.executionId }, 'runner crashed; answering internal');
            result = resultWithoutRun('internal', `the runner crashed: ${message.error.message}`);
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
