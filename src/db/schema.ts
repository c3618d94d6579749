import type { ColumnType, Generated } from 'kysely';
import type { SourceFile } from '../sandbox/execution.ts';

/** A job's statuses as stored (migrations/0001_jobs.ts checks the same list). */
export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'timedout'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** jsonb: read back parsed; written as a JSON string (node-postgres would turn a JS array into a PG array). */
type Json<T> = ColumnType<T, string, string>;
/** timestamptz that may be null: read as Date; written as a Date or an SQL expression. */
type NullableTime = ColumnType<Date | null, Date | null | undefined, Date | null>;

export interface JobsTable {
  id: string;
  owner: string | null;
  language: string;
  version: string;
  files: Json<SourceFile[]>;
  stdin: string;
  args: Json<string[]>;
  status: JobStatus;
  reason: ColumnType<string | null, string | null | undefined, string | null>;
  stdout: ColumnType<Buffer | null, Buffer | null | undefined, Buffer | null>;
  stderr: ColumnType<Buffer | null, Buffer | null | undefined, Buffer | null>;
  exit_code: ColumnType<number | null, number | null | undefined, number | null>;
  signal: ColumnType<string | null, string | null | undefined, string | null>;
  error: ColumnType<string | null, string | null | undefined, string | null>;
  truncated: Generated<boolean>;
  details: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  execution_duration_ms: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: Generated<Date>;
  started_at: NullableTime;
  completed_at: NullableTime;
  updated_at: Generated<Date>;
  node_id: ColumnType<string | null, string | null | undefined, string | null>;
  worker_id: ColumnType<string | null, string | null | undefined, string | null>;
  attempts: Generated<number>;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  hash: string;
  admin: Generated<boolean>;
  source: ColumnType<'database' | 'env', 'database' | 'env' | undefined, 'database' | 'env'>;
  created_at: Generated<Date>;
  revoked_at: NullableTime;
}

export interface JobCountsTable {
  owner: string;
  total: string;
}

export interface InstallSecretsTable {
  name: string;
  value: string;
}

export interface Schema {
  jobs: JobsTable;
  api_keys: ApiKeysTable;
  job_counts: JobCountsTable;
  install_secrets: InstallSecretsTable;
}
