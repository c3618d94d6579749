import type { JobRecord, JobStatus, JobSummary } from '../jobs/job.ts';
import { jobSteps } from '../jobs/job-results.ts';
import type { Language } from '../languages/language.ts';
import type { ExecutionResult, StepStats } from '../sandbox/execution.ts';

/**
 * The public shapes of a job and of a result, each defined once as a table of fields: every field's
 * JSON schema beside how it is read. The route's response schema and the value it sends are both
 * derived from the table (Fastify drops any field a schema does not list), so a new field is one entry.
 * braindrill's APIs (`/jobs`, `/lang`) are snake_case, Lambex's (`/api/runs`) camelCase; the fields existing clients
 * read come first and keep their exact names, the rest are additive.
 */

type Schema = Record<string, unknown>;
interface Field<S> {
  schema: Schema;
  read(source: S): unknown;
}
type Fields<S> = Record<string, Field<S>>;

/** A JSON-schema type that may also be null. */
const nullable = (type: string): Schema => ({ type: [type, 'null'] });
const string: Schema = { type: 'string' };
const integer: Schema = { type: 'integer' };
const boolean: Schema = { type: 'boolean' };

function objectSchema<S>(fields: Fields<S>, extra: Schema = {}): Schema {
  return { type: 'object', ...extra, properties: Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, field.schema])) };
}

function render<S>(fields: Fields<S>, source: S): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, field.read(source)]));
}

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/** The same fields under snake_case names. */
function snakeFields<S>(fields: Fields<S>): Fields<S> {
  return Object.fromEntries(Object.entries(fields).map(([name, field]) => [snakeCase(name), field]));
}

const text = (bytes: Buffer | null): string | null => (bytes === null ? null : bytes.toString('utf8'));
const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

// --- one step (compile or run) ---------------------------------------------------------------

type Step = StepStats & { stdout?: string; stderr?: string };

/** One step's exit, CPU time and peak memory; the compile step also carries the compiler's output. */
const STEP: Fields<Step> = {
  exitCode: { schema: nullable('integer'), read: (s) => s.exitCode },
  signal: { schema: nullable('string'), read: (s) => s.signal },
  wallMs: { schema: integer, read: (s) => s.wallMs },
  cpuMs: { schema: integer, read: (s) => s.cpuMs },
  maxRssKb: { schema: integer, read: (s) => s.maxRssKb },
  warm: { schema: boolean, read: (s) => s.warm === true },
  // Only the compile step has output of its own; absent (not null) on the run step.
  stdout: { schema: string, read: (s) => (s.stdout === undefined ? undefined : s.stdout) },
  stderr: { schema: string, read: (s) => (s.stdout === undefined ? undefined : (s.stderr ?? '')) },
};

function stepField<S>(fields: Fields<Step>, read: (source: S) => Step | null): Field<S> {
  return { schema: objectSchema(fields, { type: ['object', 'null'] }), read: (source) => withoutUndefined(read(source), fields) };
}

function withoutUndefined(step: Step | null, fields: Fields<Step>): Record<string, unknown> | null {
  if (!step) return null;
  const rendered = render(fields, step);
  for (const key of Object.keys(rendered)) if (rendered[key] === undefined) delete rendered[key];
  return rendered;
}

/** One step in snake_case (`/lang` JSON and `/jobs`). */
const SNAKE_STEP = snakeFields(STEP);

// --- POST /lang/:language with Accept: application/json ---------------------------------------

type LangSource = { language: Language; result: ExecutionResult };

const RESULT: Fields<LangSource> = {
  language: { schema: string, read: ({ language }) => language.id },
  version: { schema: string, read: ({ language }) => language.version },
  status: { schema: { type: 'string', enum: ['completed', 'failed', 'timedout'] }, read: ({ result }) => result.status },
  reason: { schema: nullable('string'), read: ({ result }) => result.reason },
  stdout: { schema: string, read: ({ result }) => result.stdout },
  stderr: { schema: string, read: ({ result }) => result.stderr },
  exit_code: { schema: nullable('integer'), read: ({ result }) => result.exitCode },
  signal: { schema: nullable('string'), read: ({ result }) => result.signal },
  execution_time_ms: { schema: integer, read: ({ result }) => result.executionTimeMs },
  truncated: { schema: boolean, read: ({ result }) => result.truncated },
  compile: stepField(SNAKE_STEP, ({ result }) => result.compile),
  run: stepField(SNAKE_STEP, ({ result }) => result.run),
};

export const resultSchema = objectSchema(RESULT, { $id: 'ExecutionResult' });
export const resultJson = (language: Language, result: ExecutionResult) => render(RESULT, { language, result });

/** Headers that carry the outcome on the plain-text answer of POST /lang/:language. */
export function resultHeaders(result: ExecutionResult): Record<string, string> {
  return {
    'x-status': result.status,
    'x-reason': result.reason ?? 'none',
    'x-exit-code': result.exitCode === null ? 'none' : String(result.exitCode),
    'x-execution-time-ms': String(result.executionTimeMs),
    'x-truncated': String(result.truncated),
    ...(result.signal ? { 'x-signal': result.signal } : {}),
  };
}

// --- a job: braindrill's /jobs, Lambex's /api/runs -------------------------------------------

type JobSource = { job: JobRecord; steps: Pick<ExecutionResult, 'compile' | 'run'> };
const source = (job: JobRecord): JobSource => ({ job, steps: jobSteps(job) });

/** What both job views show beyond their original fields, in camelCase (the snake_case view renames them). */
const OUTCOME: Fields<JobSource> = {
  stdout: { schema: nullable('string'), read: ({ job }) => text(job.stdout) },
  stderr: { schema: nullable('string'), read: ({ job }) => text(job.stderr) },
  exitCode: { schema: nullable('integer'), read: ({ job }) => job.exitCode },
  signal: { schema: nullable('string'), read: ({ job }) => job.signal },
  reason: { schema: nullable('string'), read: ({ job }) => job.reason },
  truncated: { schema: boolean, read: ({ job }) => job.truncated },
};

const JOB: Fields<JobSource> = {
  job_id: { schema: string, read: ({ job }) => job.id },
  language: { schema: string, read: ({ job }) => job.language },
  status: { schema: string, read: ({ job }) => job.status },
  output: { schema: nullable('string'), read: ({ job }) => text(job.stdout) },
  error: { schema: nullable('string'), read: ({ job }) => job.error },
  created_at: { schema: nullable('string'), read: ({ job }) => iso(job.createdAt) },
  started_at: { schema: nullable('string'), read: ({ job }) => iso(job.startedAt) },
  completed_at: { schema: nullable('string'), read: ({ job }) => iso(job.completedAt) },
  execution_duration_ms: { schema: nullable('integer'), read: ({ job }) => job.executionDurationMs },
  ...snakeFields(OUTCOME),
  version: { schema: string, read: ({ job }) => job.version },
  attempts: { schema: integer, read: ({ job }) => job.attempts },
  node_id: { schema: nullable('string'), read: ({ job }) => job.nodeId },
  worker_id: { schema: nullable('string'), read: ({ job }) => job.workerId },
  compile: stepField(SNAKE_STEP, ({ steps }) => steps.compile),
  run: stepField(SNAKE_STEP, ({ steps }) => steps.run),
};

export const jobSchema = objectSchema(JOB, { $id: 'Job' });
export const braindrillJob = (job: JobRecord) => render(JOB, source(job));

const JOB_SUMMARY: Fields<JobSummary> = {
  job_id: { schema: string, read: (job) => job.id },
  language: { schema: string, read: (job) => job.language },
  status: { schema: string, read: (job) => job.status },
  created_at: { schema: nullable('string'), read: (job) => iso(job.createdAt) },
  completed_at: { schema: nullable('string'), read: (job) => iso(job.completedAt) },
  execution_duration_ms: { schema: nullable('integer'), read: (job) => job.executionDurationMs },
  started_at: { schema: nullable('string'), read: (job) => iso(job.startedAt) },
  reason: { schema: nullable('string'), read: (job) => job.reason },
};

export const jobSummarySchema = objectSchema(JOB_SUMMARY);
export const braindrillJobSummary = (job: JobSummary) => render(JOB_SUMMARY, job);

export type LambexStatus = 'QUEUED' | 'PROCESSING' | 'COMPLETED' | 'FAILED' | 'TIMEOUT';

const LAMBEX_STATUS: Record<JobStatus, LambexStatus> = {
  queued: 'QUEUED',
  running: 'PROCESSING',
  completed: 'COMPLETED',
  failed: 'FAILED',
  timedout: 'TIMEOUT',
};

const lambexStatus = (status: JobStatus): LambexStatus => LAMBEX_STATUS[status];

const RUN: Fields<JobSource> = {
  id: { schema: string, read: ({ job }) => job.id },
  language: { schema: string, read: ({ job }) => job.language },
  status: { schema: { type: 'string', enum: Object.values(LAMBEX_STATUS) }, read: ({ job }) => lambexStatus(job.status) },
  output: { schema: nullable('string'), read: ({ job }) => text(job.stdout) },
  error: { schema: nullable('string'), read: ({ job }) => job.error },
  executionTime: { schema: nullable('integer'), read: ({ job }) => job.executionDurationMs },
  createdAt: { schema: nullable('string'), read: ({ job }) => iso(job.createdAt) },
  updatedAt: { schema: nullable('string'), read: ({ job }) => iso(job.updatedAt) },
  ...OUTCOME,
  startedAt: { schema: nullable('string'), read: ({ job }) => iso(job.startedAt) },
  completedAt: { schema: nullable('string'), read: ({ job }) => iso(job.completedAt) },
  compile: stepField(STEP, ({ steps }) => steps.compile),
  run: stepField(STEP, ({ steps }) => steps.run),
};

export const runSchema = objectSchema(RUN);
export const lambexRun = (job: JobRecord) => render(RUN, source(job));
