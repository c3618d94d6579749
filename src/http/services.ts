import type { AccessControl } from '../access/access.ts';
import type { KeyStore } from '../access/key-store.ts';
import type { BucketPolicy } from '../access/token-bucket.ts';
import type { RateDecision } from '../actors/rate-limiter.ts';
import type { WorkerControl } from '../cluster/workers.ts';
import type { JobService } from '../jobs/service.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Submission } from '../sandbox/execution.ts';
import type { SubmissionBody } from '../validation/submission.ts';

export interface ReadyReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; message?: string }>;
  members: { api: number; managers: number; workers: number };
  capacity: { idle: number; busy: number; queued: number };
}

/** What the HTTP layer needs from the rest of the node; routes only translate HTTP to these calls. */
export interface Services {
  languages: LanguageRegistry;
  metrics: Metrics;
  jobs: JobService;
  access: AccessControl;
  keys: KeyStore;
  /** Validates a submission body (counting refusals) and returns it normalised. */
  validate(body: SubmissionBody): Submission;
  /** How long a synchronous request waits for its job: queue time and the language's steps included. */
  syncWaitMs(languageId: string): number;
  ready(): Promise<ReadyReport>;
  workers: WorkerControl;
  rateLimit(bucket: string, policy: BucketPolicy): Promise<RateDecision>;
}

/** The caller behind a request, once authenticated (keys arrive with the access layer). */
export interface Principal {
  keyId: string;
  admin: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}
