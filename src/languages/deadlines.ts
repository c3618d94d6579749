import type { Language } from './language.ts';

/**
 * Every deadline derived from a language's time limits, defined once. The steps' own limits are
 * enforced inside the sandbox; each layer above waits a little longer than the one below it.
 */

/** Time the host allows beyond the steps' own limits before it kills the container itself. */
const HOST_GRACE_MS = 3000;
/** A manager's wait for its pool, beyond a synchronous request's wait: time queued in the pool. */
const POOL_QUEUE_ALLOWANCE_MS = 60_000;

/** Compile + run time limits of a planned execution (`ExecutionPlan` or anything shaped like it). */
interface PlannedSteps {
  compile: { timeoutMs: number } | null;
  run: { timeoutMs: number };
}

/** The steps' time limits of one execution of `language`: compile (if any) + run. */
function stepsMs(language: Language): number {
  return (language.compile?.timeoutMs ?? 0) + language.limits.timeoutMs;
}

/** When the host kills a container whose supervisor has not answered. */
export function hostDeadlineMs(plan: PlannedSteps): number {
  return (plan.compile?.timeoutMs ?? 0) + plan.run.timeoutMs + HOST_GRACE_MS;
}

/** How long a synchronous request waits for its job, queue time included (SYNC_WAIT_MARGIN_MS). */
export function syncWaitMs(language: Language, marginMs: number): number {
  return stepsMs(language) + marginMs;
}

/** How long a manager waits for its pool to answer an execution it handed over. */
export function poolWaitMs(language: Language, marginMs: number): number {
  return syncWaitMs(language, marginMs) + POOL_QUEUE_ALLOWANCE_MS;
}
