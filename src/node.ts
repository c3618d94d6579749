import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ask, dispatch, start, stop, type Ref } from './actors/system.ts';
import { spawnWorkerPool, type PoolMessage, type PoolStats } from './actors/worker-pool.ts';
import { spawnJobManager, type JobManagerMessage } from './actors/job-manager.ts';
import { openDatabase } from './db/database.ts';
import { LocalCompletions } from './jobs/completions.ts';
import { JobService } from './jobs/service.ts';
import { JobStore } from './jobs/store.ts';
import { BraindrillError } from './errors.ts';
import { DEFAULT_SUBMISSION_LIMITS, checkBlockedPatterns, validateSubmission } from './validation/submission.ts';
import { AccessControl } from './access/access.ts';
import { LocalBucketStore } from './access/bucket-store.ts';
import { KeyStore } from './access/key-store.ts';
import { spawnRateLimiter, type RateLimiterMessage, type RateReply } from './actors/rate-limiter.ts';
import { buildApp } from './http/app.ts';
import type { ReadyReport, Services } from './http/services.ts';
import { loadLanguages } from './languages/language.ts';
import { LanguageRegistry } from './languages/registry.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { runtimeImageTag } from './sandbox/image.ts';
import { Sandbox } from './sandbox/sandbox.ts';
import { ROOT_DIR, type Settings } from './settings.ts';


export interface NodeHandle {
  app: FastifyInstance;
  url: string;
  log: Logger;
  metrics: Metrics;
  sandbox: Sandbox;
  close(): Promise<void>;
}

export interface NodeOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: NodeJS.WritableStream;
  /** Skip binding a port (tests that use `app.inject`). */
  listen?: boolean;
}

const REAP_INTERVAL_MS = 60_000;
const RECOVER_INTERVAL_MS = 10_000;
const SWEEP_INTERVAL_MS = 60_000;
/** A job that has started this many times (its node died each time) is failed instead of re-run. */
const MAX_ATTEMPTS = 3;

/** Builds and starts one braindrill node from validated settings. */
export async function startNode(settings: Settings, options: NodeOptions = {}): Promise<NodeHandle> {
  const log = createLogger(settings.logLevel, settings.nodeId, options.logDestination);
  const metrics = new Metrics();
  const languages = new LanguageRegistry(loadLanguages(settings.languagesFile));
  const image = settings.runtimeImage ?? runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime'));
  const sandbox = new Sandbox({ socketPath: settings.dockerSocket, image, nodeId: settings.nodeId, metrics, log });
  await sandbox.check();
  await sandbox.reap();

  const database = await openDatabase({ databaseUrl: settings.databaseUrl, dataDir: settings.dataDir, log });
  const keyStore = new KeyStore(database.db);
  let access: AccessControl;
  try {
    access = new AccessControl(keyStore, { production: settings.env === 'production', apiKeys: settings.apiKeys }, log);
    await access.start();
  } catch (error) {
    await database.close();
    throw error;
  }

  const system = start();
  const pool: Ref<PoolMessage> = spawnWorkerPool(system, {
    size: settings.concurrency,
    maxRunningPerOwner: settings.keyMaxRunningJobs,
    run: (plan, signal) => sandbox.run(plan, signal),
    metrics,
    log,
  });
  const store = new JobStore(database.db);
  const completions = new LocalCompletions();
  const manager: Ref<JobManagerMessage> = spawnJobManager(system, {
    store,
    pool,
    completions,
    languages,
    plan: settings,
    nodeId: settings.nodeId,
    ttlSeconds: settings.jobsTtlSeconds,
    maxAttempts: MAX_ATTEMPTS,
    quotas: { keyMaxQueued: settings.keyMaxQueuedJobs, maxBacklog: settings.maxBacklog },
    metrics,
    log,
  });
  const jobs = new JobService(manager, store, completions);
  metrics.observeQueuedJobs(() => store.queuedByLanguage());
  const rateLimiter = spawnRateLimiter(system, new LocalBucketStore(), log);
  dispatch(manager, { type: 'recover', startup: true });

  const timers = [
    setInterval(() => sandbox.reap().catch((error: unknown) => log.warn({ err: error }, 'periodic reap failed')), REAP_INTERVAL_MS),
    setInterval(() => dispatch(manager, { type: 'recover', startup: false }), RECOVER_INTERVAL_MS),
    setInterval(() => dispatch(manager, { type: 'sweep' }), Math.min(SWEEP_INTERVAL_MS, settings.jobsTtlSeconds * 1000)),
  ];
  for (const timer of timers) timer.unref();

  const poolStats = () => ask<PoolMessage, PoolStats>(pool, (replyTo) => ({ type: 'stats', replyTo }), 2000, 'WorkerPool');
  const check = (probe: Promise<unknown>) =>
    probe.then(
      () => ({ ok: true }),
      (error: unknown) => ({ ok: false, message: error instanceof Error ? error.message : String(error) }),
    );

  const services: Services = {
    languages,
    metrics,
    jobs,
    access,
    keys: keyStore,
    validate(body) {
      try {
        const submission = validateSubmission(body, DEFAULT_SUBMISSION_LIMITS);
        checkBlockedPatterns(submission, settings.blockedPatterns);
        return submission;
      } catch (error) {
        if (error instanceof BraindrillError) metrics.validationErrors.labels(error.code).inc();
        throw error;
      }
    },
    syncWaitMs(languageId) {
      const language = languages.resolve(languageId);
      return (language.compile?.timeoutMs ?? 0) + language.limits.timeoutMs + settings.syncWaitMarginMs;
    },
    async ready(): Promise<ReadyReport> {
      const [docker, db, stats] = await Promise.all([check(sandbox.docker.ping()), check(database.ping()), poolStats()]);
      return {
        ready: docker.ok && db.ok,
        checks: { docker, database: db },
        members: { api: 1, managers: 1, workers: stats.workers },
        capacity: { idle: stats.idle, busy: stats.busy, queued: stats.queued },
      };
    },
  };

  const app = await buildApp({
    services,
    log,
    bodyLimitBytes: settings.bodyLimitBytes,
    ipRateLimitMax: settings.ipRateLimitMax,
    metricsToken: settings.metricsToken,
    access: {
      keys: access.ring,
      metrics,
      submitPolicy: { capacity: settings.rateLimitMaxRequests, windowMs: settings.rateLimitWindowSeconds * 1000 },
      readPolicy: { capacity: settings.rateLimitReadMaxRequests, windowMs: 60_000 },
      async take(bucket, policy) {
        const reply = await ask<RateLimiterMessage, RateReply>(rateLimiter, (replyTo) => ({ type: 'take', bucket, policy, replyTo }), 5000, 'RateLimiter');
        if (!reply.ok) throw reply.error;
        return reply.decision;
      },
    },
  });
  let url = '';
  if (options.listen !== false) url = await app.listen({ host: settings.host, port: settings.port });
  else await app.ready();
  log.info({ url, image, role: settings.role, concurrency: settings.concurrency, database: database.kind }, 'braindrill node started');

  return {
    app,
    url,
    log,
    metrics,
    sandbox,
    async close() {
      for (const timer of timers) clearInterval(timer);
      access.stop();
      await app.close();
      dispatch(pool, { type: 'resize', count: 0 });
      // Running executions finish (their containers are removed by their runners) before the system stops.
      for (let waited = 0; sandbox.running > 0 && waited < 30_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
      // Results of the last executions reach the JobManager before the database closes.
      await new Promise((r) => setTimeout(r, 200));
      stop(system);
      await completions.close();
      await database.close();
      await sandbox.reap().catch(() => 0);
    },
  };
}
