import type { ExecutionPlan, ExecutionResult } from '../sandbox/execution.ts';
import { dispatch, spawn, type Ref } from './system.ts';

/** Runs one plan in the sandbox. Injected so the actors can be tested without Docker. */
export type RunFunction = (plan: ExecutionPlan, signal: AbortSignal) => Promise<ExecutionResult>;

export type RunnerMessage = { type: 'execute'; plan: ExecutionPlan; signal: AbortSignal };

/** What a Runner tells its parent: the execution's result, or that it crashed. */
export type RunnerReport =
  | { type: 'runner-finished'; executionId: string; result: ExecutionResult }
  | { type: 'runner-crashed'; executionId: string; error: Error };

/**
 * One Runner actor per execution, child of a Worker. It reports to its parent and stops; if it throws,
 * its crash policy reports the failure to the parent (which answers `internal`) and stops it, so the
 * pool keeps serving.
 */
export function spawnRunner(parent: Ref<RunnerReport>, run: RunFunction, executionId: string): Ref<RunnerMessage> {
  return spawn(
    parent,
    async (_state: undefined, message: RunnerMessage) => {
      const result = await run(message.plan, message.signal);
      dispatch(parent, { type: 'runner-finished', executionId: message.plan.id, result });
      return undefined;
    },
    `runner-${executionId}`,
    {
      onCrash: (message, error, ctx) => {
        dispatch(parent, { type: 'runner-crashed', executionId: message?.plan.id ?? executionId, error: error ?? new Error('runner crashed') });
        return ctx.stop;
      },
    },
  );
}
