import type { ExecutionPlan, ExecutionResult } from '../sandbox/execution.ts';
import { dispatch, spawn, type Ref } from './system.ts';
import type { WorkerMessage } from './worker.ts';

/** Runs one plan in the sandbox. Injected so the actors can be tested without Docker. */
export type RunFunction = (plan: ExecutionPlan, signal: AbortSignal) => Promise<ExecutionResult>;

export type RunnerMessage = { type: 'execute'; plan: ExecutionPlan; signal: AbortSignal };

/**
 * One Runner actor per execution, child of a Worker. It reports to its parent and stops; if it throws,
 * its crash policy reports the failure to the parent (which answers `internal`) and stops it, so the
 * pool keeps serving.
 */
export function spawnRunner(worker: Ref<WorkerMessage>, run: RunFunction, executionId: string): Ref<RunnerMessage> {
  return spawn(
    worker,
    async (_state: undefined, message: RunnerMessage) => {
      const result = await run(message.plan, message.signal);
      dispatch(worker, { type: 'runner-finished', executionId: message.plan.id, result });
      return undefined;
    },
    `runner-${executionId}`,
    {
      onCrash: (message, error, ctx) => {
        dispatch(worker, { type: 'runner-crashed', executionId: message?.plan.id ?? executionId, error: error ?? new Error('runner crashed') });
        return ctx.stop;
      },
    },
  );
}
