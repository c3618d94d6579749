import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AccessControl } from '../access/access-control.ts';
import type { BucketStore } from '../access/bucket-store.ts';
import { KeyStore } from '../access/key-store.ts';
import type { BucketPolicy } from '../access/token-bucket.ts';
import { cancelJob, spawnJobManager, submitJob, type JobManagerMessage } from '../actors/job-manager.ts';
import { spawnRateLimiter, type RateDecision, type RateLimiterMessage, type RateReply } from '../actors/rate-limiter.ts';
import { ask, dispatch, type Ref } from '../actors/system.ts';
import type { WorkerControl } from '../cluster/worker-control.ts';
import type { Schema } from '../db/schema.ts';
import { BraindrillError, UnavailableError } from '../errors.ts';
import type { ApiRoutesOptions } from '../http/app.ts';
import type { JobsApi, Services } from '../http/services.ts';
import type { AdmissionCounts } from '../jobs/admission.ts';
import type { JobBus } from '../jobs/bus.ts';
import { FINISHED } from '../jobs/job.ts';
import type { JobLifecycle } from '../jobs/lifecycle.ts';
import type { JobMaintenance } from '../jobs/maintenance.ts';
import type { JobStore } from '../jobs/store.ts';
import { syncWaitMs } from '../languages/deadlines.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { checkBlockedPatterns, DEFAULT_SUBMISSION_LIMITS, validateSubmission, type SubmissionBody } from '../validation/submission.ts';
import { Timers } from './timers.ts';

export interface ApiSideOptions {
  production: boolean;
  /** The node listens on loopback only: the development keys may work (development mode). */
  loopbackOnly: boolean;
  /** `API_KEYS`: extra keys, name:key[:admin],… */
  apiKeys: string | null;
  submitPolicy: BucketPolicy;
  readPolicy: BucketPolicy;
  blockedPatterns: string[];
  syncWaitMarginMs: number;
  ttlSeconds: number;
  db: Kysely<Schema>;
  store: JobStore;
  bus: JobBus;
  lifecycle: JobLifecycle;
  admission: AdmissionCounts;
  maintenance: JobMaintenance;
  /** In memory (one process) or Redis (shared by every API node). */
  buckets: BucketStore;
  workers: WorkerControl;
  languages: LanguageRegistry;
  system: Ref<never>;
  metrics: Metrics;
  log: Logger;
}

export interface ApiSide {
  routes: ApiRoutesOptions;
  close(): Promise<void>;
}

const RECOVER_INTERVAL_MS = 5000;
const AUDIT_INTERVAL_MS = 10_000;
const SWEEP_INTERVAL_MS = 60_000;
const RATE_LIMITER_ASK_MS = 5000;

/** The API side of a node: keys and rate limits, the JobManager, and the calls HTTP routes make. */
export async function startApiSide(options: ApiSideOptions): Promise<ApiSide> {
  const { metrics, log, system } = options;
  const keys = new KeyStore(options.db);
  const access = new AccessControl(keys, { production: options.production, loopbackOnly: options.loopbackOnly, apiKeys: options.apiKeys }, log);
  await access.start();
  const manager = spawnJobManager(system, { lifecycle: options.lifecycle, admission: options.admission, log });
  const rateLimiter = spawnRateLimiter(system, options.buckets, log);
  const timers = new Timers(log);
  timers.every(RECOVER_INTERVAL_MS, () => options.maintenance.recover(), 'job recovery');
  timers.every(Math.min(SWEEP_INTERVAL_MS, options.ttlSeconds * 1000), () => options.maintenance.sweep(), 'job TTL sweep');
  timers.every(AUDIT_INTERVAL_MS, async () => dispatch(manager, { type: 'audit' }), 'admission audit');
  void options.maintenance.recover().catch((error: unknown) => log.warn({ err: error }, 'job recovery failed; retrying on the next tick'));

  const services: Services = {
    languages: options.languages,
    metrics,
    jobs: jobsApi(manager, options.store, options.bus),
    access,
    keys,
    workers: options.workers,
    validate(body: SubmissionBody) {
      try {
        const submission = validateSubmission(body, DEFAULT_SUBMISSION_LIMITS);
        checkBlockedPatterns(submission, options.blockedPatterns);
        return submission;
      } catch (error) {
        if (error instanceof BraindrillError) metrics.validationErrors.labels(error.code).inc();
        throw error;
      }
    },
    syncWaitMs: (language) => syncWaitMs(language, options.syncWaitMarginMs),
  };
  const take = (bucket: string, policy: BucketPolicy) => takeToken(rateLimiter, bucket, policy);
  return {
    routes: { services, access: { keys: access.ring, metrics, submitPolicy: options.submitPolicy, readPolicy: options.readPolicy, take } },
    async close() {
      timers.stop();
      access.stop();
      await options.buckets.close();
    },
  };
}

async function takeToken(rateLimiter: Ref<RateLimiterMessage>, bucket: string, policy: BucketPolicy): Promise<RateDecision> {
  const reply = await ask<RateLimiterMessage, RateReply>(rateLimiter, (replyTo) => ({ type: 'take', bucket, policy, replyTo }), RATE_LIMITER_ASK_MS, 'RateLimiter');
  if (reply.ok) return reply.decision;
  if (reply.error instanceof BraindrillError) throw reply.error;
  throw new UnavailableError('rate_limiter_unavailable', `The shared rate limiter (Redis) does not answer (${reply.error.message}); retry shortly.`);
}

/** Changes go through the JobManager actor; reads go straight to the store, the source of truth. */
function jobsApi(manager: Ref<JobManagerMessage>, store: JobStore, bus: JobBus): JobsApi {
  const submit: JobsApi['submit'] = (language, submission, owner) =>
    submitJob(manager, { id: randomUUID(), owner, language: language.id, version: language.version, ...submission });
  return {
    submit,
    async run(language, submission, owner, waitMs) {
      const id = randomUUID();
      const deadline = Date.now() + waitMs;
      // Registered before the job exists, so a fast job's notice cannot come first.
      let notice = bus.waitDone(id, waitMs);
      const submitted = await submitJob(manager, { id, owner, language: language.id, version: language.version, ...submission }).catch(async (error: unknown) => {
        await bus.notifyDone(id);
        throw error;
      });
      for (;;) {
        const done = await notice;
        if (!done) return { job: submitted, finished: false };
        // A notice from another process is only a hint (anyone who can publish on the bus can send one):
        // the stored job decides. The next wait is registered first, so a real notice is never missed.
        if (done.job) return { job: done.job, finished: true };
        const left = deadline - Date.now();
        if (left > 0) notice = bus.waitDone(id, left);
        const job = await store.get(id);
        if (job && FINISHED.includes(job.status)) return { job, finished: true };
        if (left <= 0) return { job: job ?? submitted, finished: false };
      }
    },
    get: (id, owner) => store.get(id, owner ?? undefined),
    list: (owner, limit, offset) => store.list({ owner, limit, offset }),
    cancel: (id, owner) => cancelJob(manager, id, owner),
  };
}
