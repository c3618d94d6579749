import type { Language, Limits } from '../languages/language.ts';

/** The statuses of braindrill's API; `reason` says why (null when the program completed). */
export type ExecutionStatus = 'completed' | 'failed' | 'timedout';
export type ExecutionReason =
  | 'compile_error'
  | 'runtime_error'
  | 'memory_limit'
  | 'time_limit'
  | 'output_limit'
  | 'pids_limit'
  | 'cancelled'
  | 'internal';

export interface SourceFile {
  /** Omitted for the entry file: the language's rule names it (Java: the public class). */
  name?: string;
  content: string;
}

/** What a client asks to run. The first file is the entry point. */
export interface Submission {
  files: SourceFile[];
  stdin: string;
  args: string[];
}

export interface StepStats {
  exitCode: number | null;
  signal: string | null;
  wallMs: number;
  cpuMs: number;
  maxRssKb: number;
  /** The run step ran in the interpreter started with the container (its start-up was paid ahead). */
  warm: boolean;
}

export interface ExecutionResult {
  status: ExecutionStatus;
  reason: ExecutionReason | null;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: string | null;
  /** Wall time of the run step (compile excluded), as measured inside the container. */
  executionTimeMs: number;
  truncated: boolean;
  compile: (StepStats & { stdout: string; stderr: string }) | null;
  run: StepStats | null;
  /** The raw stdout/stderr bytes, for lossless storage. */
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
  /** Reason `internal`: what failed (the supervisor's error, a hardening step, the engine), in words; otherwise null. */
  cause: string | null;
}

/** Everything a Runner needs for one execution: derived from a Language and a Submission. */
export interface ExecutionPlan {
  id: string;
  language: Language;
  files: { name: string; content: Buffer }[];
  compile: { argv: string[]; timeoutMs: number; memoryMb: number; pids: number } | null;
  /** `warm`: run in the container's waiting interpreter (the language has `run.warm`). */
  run: { argv: string[]; timeoutMs: number; warm: boolean };
  stdin: Buffer;
  env: string[];
  limits: Limits;
  outputKeepBytes: number;
  outputMaxBytes: number;
}

/**
 * A result with no output and no step: what an execution that never ran reports (cancelled while it
 * waited, or the engine failed before the program ran, `cause` saying how). Every other result is built
 * by the runner.
 */
export function resultWithoutRun(reason: 'cancelled' | 'internal', cause: string | null = null): ExecutionResult {
  return {
    status: 'failed',
    reason,
    stdout: '',
    stderr: '',
    cause,
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
