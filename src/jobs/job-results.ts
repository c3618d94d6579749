import type { Language } from '../languages/language.ts';
import type { ExecutionResult } from '../sandbox/execution.ts';
import type { JobOutcome, JobRecord } from './job.ts';

/**
 * The job's `error` string: null when the program completed, otherwise what went wrong, in words.
 * `language` is null for a job whose language is no longer configured (its result is `internal`).
 */
function describeFailure(result: ExecutionResult, language: Language | null): string | null {
  const limits = language?.limits;
  const stderr = result.stderr.trim();
  switch (result.reason) {
    case null: return null;
    case 'compile_error': return stderr || 'compilation failed';
    case 'runtime_error': return stderr || (result.signal ? `killed by ${result.signal}` : `exited with code ${result.exitCode}`);
    case 'time_limit': return limits ? `time limit exceeded (${limits.timeoutMs} ms)` : 'time limit exceeded';
    case 'memory_limit': return limits ? `memory limit exceeded (${limits.memoryMb} MB)` : 'memory limit exceeded';
    case 'output_limit': return 'output limit exceeded: the program was stopped';
    case 'pids_limit': return limits ? `process limit reached (${limits.pids})` : 'process limit reached';
    case 'cancelled': return 'cancelled by request';
    case 'internal': return `internal error: ${result.cause ?? 'the sandbox failed'}`;
  }
}

export function jobOutcome(result: ExecutionResult, language: Language | null): JobOutcome {
  return {
    status: result.status,
    reason: result.reason,
    stdout: result.stdoutBytes,
    stderr: result.stderrBytes,
    exitCode: result.exitCode,
    signal: result.signal,
    error: describeFailure(result, language),
    truncated: result.truncated,
    executionDurationMs: result.run?.wallMs ?? (result.reason === 'cancelled' ? null : result.executionTimeMs),
    details: result.compile || result.run ? { compile: result.compile, run: result.run } : null,
  };
}

/** The per-step statistics a finished job keeps in `details` (null for steps that did not happen). */
export function jobSteps(job: JobRecord): Pick<ExecutionResult, 'compile' | 'run'> {
  const details = (job.details ?? {}) as Partial<Pick<ExecutionResult, 'compile' | 'run'>>;
  return { compile: details.compile ?? null, run: details.run ?? null };
}

/** A finished job read back as an execution result (the sync path answers from the database). */
export function resultFromJob(job: JobRecord): ExecutionResult {
  const steps = jobSteps(job);
  const stdoutBytes = job.stdout ?? Buffer.alloc(0);
  const stderrBytes = job.stderr ?? Buffer.alloc(0);
  return {
    status: job.status as ExecutionResult['status'],
    reason: job.reason as ExecutionResult['reason'],
    stdout: stdoutBytes.toString('utf8'),
    stderr: stderrBytes.toString('utf8'),
    exitCode: job.exitCode,
    signal: job.signal,
    executionTimeMs: job.executionDurationMs ?? 0,
    truncated: job.truncated,
    compile: steps.compile,
    run: steps.run,
    stdoutBytes,
    stderrBytes,
    cause: job.reason === 'internal' ? job.error : null,
  };
}
