import type { AccessControl } from '../access/access-control.ts';
import type { KeyStore } from '../access/key-store.ts';
import type { WorkerControl } from '../cluster/worker-control.ts';
import type { JobRecord, JobSummary } from '../jobs/job.ts';
import type { Language } from '../languages/language.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Submission } from '../sandbox/execution.ts';
import type { SubmissionBody } from '../validation/submission.ts';

export interface ReadyReport {
  ready: boolean;
  checks: Record<string, { ok: boolean }>;
  members: { api: number; managers: number; workers: number };
  capacity: { idle: number; busy: number; queued: number };
}

/** Jobs as routes see them: changes go through the JobManager, reads straight to the store. */
export interface JobsApi {
  submit(language: Language, submission: Submission, owner: string | null): Promise<JobRecord>;
  /** Submits and waits up to `waitMs` (queue time included) for the job to finish. */
  run(language: Language, submission: Submission, owner: string | null, waitMs: number): Promise<{ job: JobRecord; finished: boolean }>;
  get(id: string, owner: string | null): Promise<JobRecord | undefined>;
  list(owner: string | null, limit: number, offset: number): Promise<{ jobs: JobSummary[]; total: number }>;
  cancel(id: string, owner: string | null): Promise<{ found: boolean; cancelled: boolean }>;
}

/** What the HTTP layer needs from the rest of an API node; routes only translate HTTP to these calls. */
export interface Services {
  languages: LanguageRegistry;
  metrics: Metrics;
  jobs: JobsApi;
  access: AccessControl;
  keys: KeyStore;
  /** Validates a submission body (counting refusals) and returns it normalised. */
  validate(body: SubmissionBody): Submission;
  /** How long a synchronous request waits for its job: queue time and the language's steps included. */
  syncWaitMs(language: Language): number;
  workers: WorkerControl;
}

/** The caller behind a request, once authenticated. */
export interface Principal {
  keyId: string;
  admin: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}
