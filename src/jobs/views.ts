import type { StepStats } from '../sandbox/execution.ts';
import type { JobRecord, JobStatus, JobSummary } from './job.ts';
import { jobSteps } from './outcome.ts';

/**
 * The two public shapes of a job: braindrill's snake_case (`/jobs`) and Lambex's camelCase
 * (`/api/runs`). Seed fields come first and keep their exact names; the rest are additive.
 */

const text = (bytes: Buffer | null): string | null => (bytes === null ? null : bytes.toString('utf8'));
const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

type Step = StepStats & { stdout?: string; stderr?: string };

/** One step's exit, CPU time and peak memory in snake_case (`/lang` JSON and `/jobs`). */
export function snakeStep(step: Step | null) {
  if (!step) return null;
  const output = step.stdout === undefined ? {} : { stdout: step.stdout, stderr: step.stderr ?? '' };
  return { exit_code: step.exitCode, signal: step.signal, wall_ms: step.wallMs, cpu_ms: step.cpuMs, max_rss_kb: step.maxRssKb, warm: step.warm === true, ...output };
}

/** The same in camelCase (`/api/runs`). */
export function camelStep(step: Step | null) {
  if (!step) return null;
  const output = step.stdout === undefined ? {} : { stdout: step.stdout, stderr: step.stderr ?? '' };
  return { exitCode: step.exitCode, signal: step.signal, wallMs: step.wallMs, cpuMs: step.cpuMs, maxRssKb: step.maxRssKb, warm: step.warm === true, ...output };
}

export function braindrillJob(job: JobRecord) {
  const steps = jobSteps(job);
  return {
    job_id: job.id,
    language: job.language,
    status: job.status,
    output: text(job.stdout),
    error: job.error,
    created_at: iso(job.createdAt),
    started_at: iso(job.startedAt),
    completed_at: iso(job.completedAt),
    execution_duration_ms: job.executionDurationMs,
    stdout: text(job.stdout),
    stderr: text(job.stderr),
    exit_code: job.exitCode,
    signal: job.signal,
    reason: job.reason,
    truncated: job.truncated,
    version: job.version,
    attempts: job.attempts,
    node_id: job.nodeId,
    worker_id: job.workerId,
    compile: snakeStep(steps.compile),
    run: snakeStep(steps.run),
  };
}

export function braindrillJobSummary(job: JobSummary) {
  return {
    job_id: job.id,
    language: job.language,
    status: job.status,
    created_at: iso(job.createdAt),
    completed_at: iso(job.completedAt),
    execution_duration_ms: job.executionDurationMs,
    started_at: iso(job.startedAt),
    reason: job.reason,
  };
}

export type LambexStatus = 'QUEUED' | 'PROCESSING' | 'COMPLETED' | 'FAILED' | 'TIMEOUT';

export function lambexStatus(status: JobStatus): LambexStatus {
  switch (status) {
    case 'queued': return 'QUEUED';
    case 'running': return 'PROCESSING';
    case 'completed': return 'COMPLETED';
    case 'failed': return 'FAILED';
    case 'timedout': return 'TIMEOUT';
  }
  return 'FAILED';
}

export function lambexRun(job: JobRecord) {
  const steps = jobSteps(job);
  return {
    id: job.id,
    language: job.language,
    status: lambexStatus(job.status),
    output: text(job.stdout),
    error: job.error,
    executionTime: job.executionDurationMs,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    stdout: text(job.stdout),
    stderr: text(job.stderr),
    exitCode: job.exitCode,
    signal: job.signal,
    reason: job.reason,
    truncated: job.truncated,
    startedAt: iso(job.startedAt),
    completedAt: iso(job.completedAt),
    compile: camelStep(steps.compile),
    run: camelStep(steps.run),
  };
}
