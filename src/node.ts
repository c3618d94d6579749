import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { AccessControl } from './access/access.ts';
import { LocalBucketStore, type BucketStore } from './access/bucket-store.ts';
import { KeyStore } from './access/key-store.ts';
import { RedisBucketStore } from './access/redis-bucket-store.ts';
import { spawnJobManager, type JobManagerMessage, type Transport } from './actors/job-manager.ts';
import { spawnRateLimiter, type RateLimiterMessage, type RateReply } from './actors/rate-limiter.ts';
import { ask, dispatch, start, stop, type Ref } from './actors/system.ts';
import { spawnWorkerPool, type PoolMessage } from './actors/worker-pool.ts';
import { Budget } from './cluster/admission.ts';
import { RedisCompletions } from './cluster/completions.ts';
import { ControlPlane } from './cluster/control.ts';
import { Manager } from './cluster/manager.ts';
import { HEARTBEAT_MS, Membership } from './cluster/membership.ts';
import { JobQueue } from './cluster/queue.ts';
import { connectRedis, type RedisConnections } from './cluster/redis.ts';
import { ClusterWorkerControl, LocalWorkerControl, unavailableWorkers, type WorkerControl } from './cluster/workers.ts';
import { openDatabase } from './db/database.ts';
import { BraindrillError, ConfigError, UnavailableError } from './errors.ts';
import { buildApp } from './http/app.ts';
import type { ReadyReport, Services } from './http/services.ts';
import { LocalCompletions, type Completions } from './jobs/completions.ts';
import { JobService } from './jobs/service.ts';
import { JobStore } from './jobs/store.ts';
import { loadLanguages } from './languages/language.ts';
import { LanguageRegistry } from './languages/registry.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { runtimeImageTag } from './sandbox/image.ts';
import { Sandbox } from './sandbox/sandbox.ts';
import { ROOT_DIR, type Settings } from './settings.ts';
import { DEFAULT_SUBMISSION_LIMITS, checkBlockedPatterns, validateSubmission } from './validation/submission.ts';

export interface NodeHandle {
  app: FastifyInstance;
  url: string;
  log: Logger;
  metrics: Metrics;
  sandbox: Sandbox | null;
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
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForRedis(redis: RedisConnections, url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await redis.commands.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new UnavailableError('redis_unavailable', `Redis at ${url.replace(/\/\/[^@]*@/, '//***@')} does not answer (${String(error)}). Start it or fix REDIS_URL.`);
      await sleep(250);
    }
  }
}

/** A dependency that does not answer within this long is reported down (a probe must answer fast). */
const PROBE_TIMEOUT_MS = 2000;
function within<T>(probe: Promise<T>, ms = PROBE_TIMEOUT_MS): Promise<T> {
  return Promise.race([probe, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

const check = (probe: Promise<unknown>) =>
  within(probe).then(
    () => ({ ok: true }),
    (error: unknown) => ({ ok: false, message: error instanceof Error ? error.message : String(error) }),
  );

/**
 * Builds and starts one braindrill node. ROLE=all without REDIS_URL is the embedded one-process mode;
 * with REDIS_URL (and DATABASE_URL) nodes form a cluster: `api` nodes take requests and queue jobs,
 * `worker` nodes (managers) run them, `all` does both.
 */
export async function startNode(settings: Settings, options: NodeOptions = {}): Promise<NodeHandle> {
  if (settings.role !== 'all' && !settings.redisUrl) {
    throw new ConfigError(`ROLE=${settings.role} is a cluster role: set REDIS_URL and DATABASE_URL, or use ROLE=all for one process.`);
  }
  const servesApi = settings.role !== 'worker';
  const runsSandboxes = settings.role !== 'api';
  const log = createLogger(settings.logLevel, settings.nodeId, options.logDestination);
  const metrics = new Metrics();
  const languages = new LanguageRegistry(loadLanguages(settings.languagesFile));
  metrics.knowLanguages(languages.languages.map((language) => language.id));
  const cleanup: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const task of cleanup.reverse()) await task().catch((error: unknown) => log.warn({ err: error }, 'shutdown step failed'));
  };

  try {
    let sandbox: Sandbox | null = null;
    const image = settings.runtimeImage ?? runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime'));
    if (runsSandboxes) {
      sandbox = new Sandbox({
        socketPath: settings.dockerSocket,
        image,
        nodeId: settings.nodeId,
        metrics,
        log,
        warmPool: settings.warmPool
          ? {
              languages,
              initial: settings.warmPoolLanguages.filter((id) => languages.find(id)).map((id) => languages.resolve(id).id),
              maxPerLanguage: settings.warmPoolMaxPerLanguage,
              memoryBudgetMb: settings.warmPoolMemoryMb,
              startSlots: settings.warmPoolStarts,
            }
          : null,
      });
      await sandbox.check();
      await sandbox.reap();
      sandbox.startWarmPool();
      const started = sandbox;
      cleanup.push(() => started.close());
    }

    const database = await openDatabase({ databaseUrl: settings.databaseUrl, dataDir: settings.dataDir, log });
    cleanup.push(() => database.close());
    const store = new JobStore(database.db);

    let redis: RedisConnections | null = null;
    if (settings.redisUrl) {
      redis = connectRedis(settings.redisUrl, log);
      cleanup.push(() => redis!.close());
      await waitForRedis(redis, settings.redisUrl);
    }

    const keyStore = new KeyStore(database.db);
    const access = new AccessControl(keyStore, { production: settings.env === 'production', apiKeys: settings.apiKeys }, log);
    if (servesApi) {
      await access.start();
      cleanup.push(async () => access.stop());
    }

    const system = start();
    cleanup.push(async () => stop(system));

    let completions: Completions;
    if (redis) {
      const shared = new RedisCompletions(redis.commands, redis.subscriber);
      await shared.start();
      completions = shared;
    } else completions = new LocalCompletions();
    cleanup.push(() => completions.close());

    const timers: NodeJS.Timeout[] = [];
    const every = (ms: number, task: () => unknown) => {
      const timer = setInterval(task, ms);
      timer.unref();
      timers.push(timer);
    };
    cleanup.push(async () => timers.forEach((t) => clearInterval(t)));

    // Sandboxes: the WorkerPool, and in a cluster the Manager that feeds it from the stream.
    let pool: Ref<PoolMessage> | null = null;
    let manager: Manager | null = null;
    if (sandbox) {
      const box = sandbox;
      pool = spawnWorkerPool(system, {
        size: redis ? 0 : settings.concurrency,
        maxRunningPerOwner: settings.keyMaxRunningJobs,
        run: (plan, signal) => box.run(plan, signal),
        metrics,
        log,
      });
      const drainPool = pool;
      cleanup.push(async () => {
        // Running executions finish and their containers are removed before the system stops.
        dispatch(drainPool, { type: 'resize', count: 0 });
        for (let waited = 0; box.running > 0 && waited < 60_000; waited += 100) await sleep(100);
        await sleep(200);
        await box.reap().catch(() => 0);
      });
      every(REAP_INTERVAL_MS, () => box.reap().catch((error: unknown) => log.warn({ err: error }, 'periodic reap failed')));
      if (redis) {
        manager = new Manager({
          id: settings.nodeId,
          redis,
          store,
          completions,
          pool,
          system,
          languages,
          plan: settings,
          budget: new Budget(settings.managerMemoryBudgetMb, settings.managerCpuBudget),
          reapDeadNode: (nodeId) => box.reapDeadNode(nodeId),
          defaultWorkers: settings.concurrency,
          maxAttempts: MAX_ATTEMPTS,
          syncWaitMarginMs: settings.syncWaitMarginMs,
          metrics,
          log,
        });
        await manager.start();
        const running = manager;
        cleanup.push(() => running.stop());
      }
    }

    const membership = redis ? new Membership(redis.commands) : null;
    const control = redis ? new ControlPlane(redis.commands) : null;
    const workers: WorkerControl | null =
      membership && control
        ? new ClusterWorkerControl(membership, control, settings.maxWorkers)
        : pool
          ? new LocalWorkerControl(pool, settings.nodeId, settings.concurrency, settings.maxWorkers)
          : null;

    // The API side: JobManager, RateLimiter, membership as an API node.
    let services: Services | null = null;
    if (servesApi) {
      const transport: Transport =
        redis && control
          ? {
              kind: 'redis',
              queue: new JobQueue(redis.commands),
              control,
              lock: async (name, ttlMs) => (await redis!.commands.set(`braindrill:lock:${name}`, settings.nodeId, 'PX', ttlMs, 'NX')) === 'OK',
            }
          : { kind: 'local', pool: pool! };
      if (transport.kind === 'redis') await transport.queue.ensureGroup();
      const jobManager: Ref<JobManagerMessage> = spawnJobManager(system, {
        store,
        transport,
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
      dispatch(jobManager, { type: 'recover' });
      every(RECOVER_INTERVAL_MS, () => dispatch(jobManager, { type: 'recover' }));
      every(Math.min(SWEEP_INTERVAL_MS, settings.jobsTtlSeconds * 1000), () => dispatch(jobManager, { type: 'sweep' }));
      metrics.observeQueuedJobs(() => store.queuedByLanguage());
      if (redis && workers && !sandbox) metrics.observeCluster(async () => (await workers.members()).workers, () => store.queuedByLanguage());

      if (membership) {
        const beat = () => membership.heartbeat('api', settings.nodeId, { startedAt: Date.now(), pid: process.pid }).catch(() => undefined);
        await beat();
        every(HEARTBEAT_MS, beat);
        cleanup.push(() => membership.remove('api', [settings.nodeId]));
      }

      const buckets: BucketStore = redis ? new RedisBucketStore(redis.commands) : new LocalBucketStore();
      cleanup.push(() => buckets.close());
      const rateLimiter = spawnRateLimiter(system, buckets, log);
      const jobs = new JobService(jobManager, store, completions);
      services = {
        languages,
        metrics,
        jobs,
        access,
        keys: keyStore,
        workers: workers ?? unavailableWorkers,
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
        ready: () => ready(),
        rateLimit: async (bucket, policy) => {
          const reply = await ask<RateLimiterMessage, RateReply>(rateLimiter, (replyTo) => ({ type: 'take', bucket, policy, replyTo }), 5000, 'RateLimiter');
          if (!reply.ok) {
            if (reply.error instanceof BraindrillError) throw reply.error;
            throw new UnavailableError('rate_limiter_unavailable', `The shared rate limiter (Redis) does not answer (${reply.error.message}); retry shortly.`);
          }
          return reply.decision;
        },
      };
    }

    /** 503 only when this node's own dependencies are down; members and capacity for the operator. */
    async function ready(): Promise<ReadyReport> {
      const checks: ReadyReport['checks'] = { database: await check(database.ping()) };
      if (sandbox) checks.docker = await check(sandbox.docker.ping());
      if (redis) checks.redis = await check(redis.commands.ping());
      const members = await within(workers?.members() ?? Promise.resolve(null)).catch(() => null);
      const queued = await within(store.countByStatus()).then((c) => c.queued, () => 0);
      return {
        ready: Object.values(checks).every((c) => c.ok),
        checks,
        members: { api: members?.api ?? (servesApi ? 1 : 0), managers: members?.managers ?? 0, workers: members?.workers ?? 0 },
        capacity: { idle: members?.idle ?? 0, busy: members?.busy ?? 0, queued },
      };
    }

    const app = await buildApp({
      services,
      ready,
      metrics,
      log,
      bodyLimitBytes: settings.bodyLimitBytes,
      ipRateLimitMax: settings.ipRateLimitMax,
      trustProxy: settings.trustProxy,
      metricsToken: settings.metricsToken,
      access: {
        keys: access.ring,
        metrics,
        submitPolicy: { capacity: settings.rateLimitMaxRequests, windowMs: settings.rateLimitWindowSeconds * 1000 },
        readPolicy: { capacity: settings.rateLimitReadMaxRequests, windowMs: 60_000 },
        take: (bucket, policy) => services!.rateLimit(bucket, policy),
      },
    });
    // The HTTP server stops first on shutdown: no new work while the rest drains.
    cleanup.push(() => app.close());
    let url = '';
    if (options.listen !== false) url = await app.listen({ host: settings.host, port: settings.port });
    else await app.ready();
    log.info({ url, image, role: settings.role, concurrency: settings.concurrency, database: database.kind, cluster: redis !== null }, 'braindrill node started');

    let closing: Promise<void> | null = null;
    return {
      app,
      url,
      log,
      metrics,
      sandbox,
      close: () => (closing ??= closeAll()),
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
