/** Domain types of a job: what is submitted, what an execution writes, what is stored and listed. */
import type { JobStatus } from '../db/schema.ts';
import type { SourceFile } from '../sandbox/execution.ts';

/** The statuses are a storage fact (db/schema.ts); re-exported where readers look for them. */
export { JOB_STATUSES, type JobStatus } from '../db/schema.ts';
export const FINISHED: readonly JobStatus[] = ['completed', 'failed', 'timedout'];

export interface NewJob {
  id: string;
  owner: string | null;
  language: string;
  version: string;
  files: SourceFile[];
  stdin: string;
  args: string[];
}

/** What a finished execution writes. */
export interface JobOutcome {
  status: 'completed' | 'failed' | 'timedout';
  /** compile_error, runtime_error, memory_limit, time_limit, output_limit, pids_limit, cancelled, internal */
  reason: string | null;
  /** Any bytes (NUL, invalid UTF-8): stored losslessly as bytea. */
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  truncated: boolean;
  executionDurationMs: number | null;
  /** Compile/run step stats, stored as jsonb. */
  details: Record<string, unknown> | null;
}

export interface JobRecord extends NewJob, Omit<JobOutcome, 'status' | 'stdout' | 'stderr'> {
  status: JobStatus;
  /** null until finished */
  stdout: Buffer | null;
  stderr: Buffer | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date;
  nodeId: string | null;
  workerId: string | null;
  attempts: number;
}

export interface JobSummary {
  id: string;
  language: string;
  status: JobStatus;
  reason: string | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  executionDurationMs: number | null;
}

/** An active job as the database lists it. */
export interface ActiveJob {
  id: string;
  owner: string | null;
  status: 'queued' | 'running';
}

/** What admission needs: jobs waiting in all, and jobs waiting or running per owner. */
export interface ActiveCounts {
  queued: number;
  byOwner: Map<string, number>;
}
