import type { Language } from '../languages/language.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ExecutionResult } from '../sandbox/execution.ts';
import type { JobRecord } from './job.ts';
import { jobOutcome } from './outcome.ts';
import type { JobStore } from './store.ts';

export interface RecordDeps {
  store: JobStore;
  metrics: Metrics;
  log: Logger;
}

/**
 * Saves a job's result and returns the finished job, or null when another delivery saved it first: only
 * the call that applies it counts and logs it, so a result delivered twice is counted once.
 */
export async function recordResult({ store, metrics, log }: RecordDeps, jobId: string, language: Language | null, result: ExecutionResult): Promise<JobRecord | null> {
  const applied = await store.complete(jobId, jobOutcome(result, language));
  if (applied) {
    metrics.requests.labels(applied.language, result.status).inc();
    log.info({ job: jobId, language: applied.language, status: result.status, reason: result.reason, durationMs: result.executionTimeMs }, 'job finished');
  }
  return applied;
}
