import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { LocalBucketStore } from '../access/bucket-store.ts';
import { RedisBucketStore } from '../access/redis-bucket-store.ts';
import { start as startActorSystem, stop as stopActorSystem, type Ref } from '../actors/system.ts';
import type { PoolMessage } from '../actors/worker-pool.ts';
import { InProcessBus } from '../bus/in-process-bus.ts';
import { RedisBus } from '../bus/redis-bus.ts';
import { ControlPlane } from '../cluster/control-plane.ts';
import { HEARTBEAT_MS, Membership } from '../cluster/membership.ts';
import { ApiPresence, ManagerPresence } from '../cluster/presence.ts';
import { ClusterWorkerControl, LocalWorkerControl, type WorkerControl } from '../cluster/worker-control.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { ConfigError } from '../errors.ts';
import { buildApp } from '../http/app.ts';
import { LocalAdmissionCounts, StoredAdmissionCounts, type AdmissionCounts } from '../jobs/admission.ts';
import type { JobBus } from '../jobs/bus.ts';
import { JobLifecycle } from '../jobs/lifecycle.ts';
import { JobMaintenance } from '../jobs/maintenance.ts';
import { JobStore } from '../jobs/store.ts';
import { loadLanguages } from '../languages/language.ts';
import { LanguageRegistry } from '../languages/registry.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import { preview, type Rejected } from '../redis/bus-input.ts';
import { connectRedis, type RedisConnections } from '../redis/connections.ts';
import { RedisKeys } from '../redis/redis-keys.ts';
import type { ContainerRuntime } from '../sandbox/container-runtime.ts';
import { DockerRuntime } from '../sandbox/docker-runtime.ts';
import { loadSeccompProfile } from '../sandbox/seccomp.ts';
import { runtimeImageTag } from '../sandbox/image.ts';
import type { Sandbox } from '../sandbox/sandbox.ts';
import { ROOT_DIR, isLoopbackHost, type Settings } from '../settings.ts';
import { startApiSide, type ApiSide } from './api-side.ts';
import { readiness } from './readiness.ts';
import { startSandboxSide, type SandboxSide } from './sandbox-side.ts';
import { Timers } from './timers.ts';

export interface NodeHandle {
  app: FastifyInstance;
  url: string;
  /** The runtime image this node's sandboxes use. */
  image: string;
  /** This node's sandboxes, on a node that runs them. */
  sandbox?: Sandbox;
  log: Logger;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface NodeOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: NodeJS.WritableStream;
  /**
   * The container runtime of the sandbox side: Docker (DOCKER_SOCKET) unless a test passes another, or
   * wraps the engine's own (`docker()`).
   */
  runtime?: (docker: () => ContainerRuntime) => ContainerRuntime;
}

/** A job that has started this many times (its node died each time) is failed instead of re-run. */
const MAX_ATTEMPTS = 3;

/** What every part of a node shares: the store, the bus, the lifecycle. */
interface Core {
  settings: Settings;
  log: Logger;
  metrics: Metrics;
  languages: LanguageRegistry;
  database: Database;
  store: JobStore;
  redis: { connections: RedisConnections; keys: RedisKeys; membership: Membership; control: ControlPlane; rejected: Rejected } | null;
  bus: JobBus;
  admission: AdmissionCounts;
  lifecycle: JobLifecycle;
  maintenance: JobMaintenance;
  system: Ref<never>;
}

/**
 * Builds and starts one braindrill node. ROLE=all without REDIS_URL is the embedded one-process mode;
 * with REDIS_URL (and DATABASE_URL) nodes form a cluster: `api` nodes take requests and queue jobs,
 * `worker` nodes (managers) run them, `all` does both. The mode decides which implementations are
 * built here (the bus, admission counts, worker control, membership); no part below knows the mode.
 */
export async function startNode(settings: Settings, options: NodeOptions = {}): Promise<NodeHandle> {
  if (settings.role !== 'all' && !settings.redisUrl) {
    throw new ConfigError(`ROLE=${settings.role} is a cluster role: set REDIS_URL and DATABASE_URL, or use ROLE=all for one process.`);
  }
  const log = createLogger(settings.logLevel, settings.nodeId, options.logDestination);
  const cleanup: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const task of cleanup.reverse()) await task().catch((error: unknown) => log.warn({ err: error }, 'shutdown step failed'));
  };
  try {
    return await assemble(settings, options, log, cleanup, closeAll);
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function assemble(settings: Settings, options: NodeOptions, log: Logger, cleanup: (() => Promise<unknown>)[], closeAll: () => Promise<void>): Promise<NodeHandle> {
  const image = settings.runtimeImage ?? runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime'));
  // Built (and its seccomp profile checked) before anything connects: a bad setting stops the node at once.
  const docker = () => dockerRuntime(settings, image, log);
  const runtime = settings.role === 'api' ? null : (options.runtime?.(docker) ?? docker());
  const core = await buildCore(settings, log, cleanup);
  const timers = new Timers(log);
  cleanup.push(async () => timers.stop());

  const sandboxSide = runtime ? await startSandbox(core, runtime, cleanup) : null;
  const workers: WorkerControl = core.redis
    ? new ClusterWorkerControl(core.redis.membership, core.redis.control, settings.maxWorkers)
    : new LocalWorkerControl(requirePool(sandboxSide), settings.nodeId, settings.concurrency, settings.maxWorkers);
  const apiSide = settings.role === 'worker' ? null : await startApi(core, workers, timers, cleanup);
  if (apiSide) core.metrics.observeQueuedJobs(() => core.store.queuedByLanguage());
  if (apiSide && core.redis && !sandboxSide) core.metrics.observeCluster(async () => (await workers.members()).workers, () => core.store.queuedByLanguage());

  const ready = readiness({
    dependencies: {
      database: () => core.database.ping(),
      ...(runtime ? { docker: () => runtime.ping() } : {}),
      ...(core.redis ? { redis: () => core.bus.ping() } : {}),
    },
    members: () => workers.members(),
    queuedJobs: async () => (await core.store.countByStatus()).queued,
    servesApi: apiSide !== null,
    log,
  });
  const app = await buildApp({
    ...(apiSide ? { api: apiSide.routes } : {}),
    ready,
    metrics: core.metrics,
    log,
    bodyLimitBytes: settings.bodyLimitBytes,
    ipRateLimitMax: settings.ipRateLimitMax,
    trustProxy: settings.trustProxy,
    metricsToken: settings.metricsToken,
  });
  // The HTTP server stops first on shutdown: no new work while the rest drains.
  cleanup.push(() => app.close());
  const url = await app.listen({ host: settings.host, port: settings.port });
  log.info({ url, image, role: settings.role, concurrency: settings.concurrency, database: core.database.kind, cluster: core.redis !== null }, 'braindrill node started');
  let closing: Promise<void> | null = null;
  return { app, url, image, ...(sandboxSide ? { sandbox: sandboxSide.sandbox } : {}), log, metrics: core.metrics, close: () => (closing ??= closeAll()) };
}

function dockerRuntime(settings: Settings, image: string, log: Logger): DockerRuntime {
  const seccomp = loadSeccompProfile(settings.seccompProfile);
  return new DockerRuntime({ socketPath: settings.dockerSocket, image, nodeId: settings.nodeId, seccomp, ociRuntime: settings.sandboxRuntime, log });
}

/** The database, Redis (in a cluster), the bus and the job lifecycle: shared by both sides of a node. */
async function buildCore(settings: Settings, log: Logger, cleanup: (() => Promise<unknown>)[]): Promise<Core> {
  const metrics = new Metrics();
  const languages = new LanguageRegistry(loadLanguages(settings.languagesFile));
  metrics.knowLanguages(languages.ids);
  const database = await openDatabase({ databaseUrl: settings.databaseUrl, dataDir: settings.dataDir, log });
  cleanup.push(() => database.close());
  const store = new JobStore(database.db);
  // What a node reads from Redis is checked; what fails is ignored, logged and counted.
  const rejected: Rejected = (kind, value) => {
    metrics.busRejected.labels(kind).inc();
    log.warn({ kind, value: preview(value) }, 'ignored a value read from Redis that is not what the engine writes');
  };
  let redis: Core['redis'] = null;
  if (settings.redisUrl) {
    const connections = await connectRedis(settings.redisUrl, log);
    cleanup.push(() => connections.close());
    const keys = new RedisKeys(settings.redisPrefix);
    const control = new ControlPlane(connections.commands, keys, settings.maxWorkers, rejected);
    redis = { connections, keys, membership: new Membership(connections.commands, keys, rejected), control, rejected };
  }
  const membership = redis?.membership;
  const bus: JobBus = redis
    ? new RedisBus({ redis: redis.connections, keys: redis.keys, isAlive: (nodeId) => membership?.isAlive('manager', nodeId) ?? Promise.resolve(false), rejected })
    : new InProcessBus();
  await bus.start();
  cleanup.push(() => bus.close());
  // One process owns its database unless nodes share it through Redis: then it counts in memory.
  const admission = redis
    ? new StoredAdmissionCounts(store)
    : new LocalAdmissionCounts(store, (counted, listed) => log.warn({ counted, listed }, 'admission counts had drifted from the database; reloaded'));
  const lifecycle = new JobLifecycle({
    store,
    bus,
    languages,
    admission,
    quotas: { keyMaxQueued: settings.keyMaxQueuedJobs, maxBacklog: settings.maxBacklog },
    plan: settings,
    metrics,
    log,
  });
  const maintenance = new JobMaintenance({ store, bus, nodeId: settings.nodeId, maxAttempts: MAX_ATTEMPTS, ttlSeconds: settings.jobsTtlSeconds, metrics, log });
  const system = startActorSystem();
  cleanup.push(async () => stopActorSystem(system));
  return { settings, log, metrics, languages, database, store, redis, bus, admission, lifecycle, maintenance, system };
}

async function startSandbox(core: Core, runtime: ContainerRuntime, cleanup: (() => Promise<unknown>)[]): Promise<SandboxSide> {
  const { settings, languages, redis, log } = core;
  const side = await startSandboxSide({
    nodeId: settings.nodeId,
    runtime,
    warmPool: settings.warmPool
      ? {
          languages,
          initial: settings.warmPoolLanguages.filter((id) => languages.find(id)).map((id) => languages.resolve(id).id),
          maxPerLanguage: settings.warmPoolMaxPerLanguage,
          memoryBudgetMb: settings.warmPoolMemoryMb,
          startSlots: settings.warmPoolStarts,
        }
      : null,
    // A cluster's manager starts with no worker and reconciles to the wanted count in Redis.
    initialWorkers: redis ? 0 : settings.concurrency,
    maxRunningPerOwner: settings.keyMaxRunningJobs,
    budget: { memoryMb: settings.managerMemoryBudgetMb, cpus: settings.managerCpuBudget },
    syncWaitMarginMs: settings.syncWaitMarginMs,
    bus: core.bus,
    lifecycle: core.lifecycle,
    maintenance: core.maintenance,
    languages,
    system: core.system,
    metrics: core.metrics,
    log,
  });
  cleanup.push(() => side.close());
  if (!redis) {
    await side.start();
    cleanup.push(() => side.stopTaking());
    return side;
  }
  const presence = new ManagerPresence({
    nodeId: settings.nodeId,
    membership: redis.membership,
    control: redis.control,
    subscriber: redis.connections.subscriber,
    pool: side.pool,
    defaultWorkers: settings.concurrency,
    onResize: () => side.loop.nudge(),
    rejected: redis.rejected,
    log,
  });
  await presence.start();
  // Membership shows a worker BUSY when it starts a job, and IDLE when it ends, not at the next beat.
  side.loop.onJobsChanged(() => void presence.heartbeat().catch(() => undefined));
  const beats = new Timers(log);
  beats.every(HEARTBEAT_MS, () => presence.heartbeat(), 'manager heartbeat');
  beats.every(HEARTBEAT_MS, () => presence.reconcile(), 'reconciling the wanted workers');
  await side.start(async (deadNode) => redis.membership.remove('manager', [deadNode]));
  // Drain: stop taking jobs, let the running ones finish (heartbeats go on meanwhile), then leave.
  cleanup.push(async () => {
    await side.stopTaking();
    beats.stop();
    await presence.leave();
  });
  return side;
}

async function startApi(core: Core, workers: WorkerControl, timers: Timers, cleanup: (() => Promise<unknown>)[]): Promise<ApiSide> {
  const { settings, redis } = core;
  const side = await startApiSide({
    production: settings.env === 'production',
    loopbackOnly: isLoopbackHost(settings.host),
    apiKeys: settings.apiKeys,
    submitPolicy: { capacity: settings.rateLimitMaxRequests, windowMs: settings.rateLimitWindowSeconds * 1000 },
    readPolicy: { capacity: settings.rateLimitReadMaxRequests, windowMs: 60_000 },
    blockedPatterns: settings.blockedPatterns,
    syncWaitMarginMs: settings.syncWaitMarginMs,
    ttlSeconds: settings.jobsTtlSeconds,
    db: core.database.db,
    store: core.store,
    bus: core.bus,
    lifecycle: core.lifecycle,
    admission: core.admission,
    maintenance: core.maintenance,
    buckets: redis ? new RedisBucketStore(redis.connections.commands, { prefix: redis.keys.bucketPrefix }) : new LocalBucketStore(),
    workers,
    languages: core.languages,
    system: core.system,
    metrics: core.metrics,
    log: core.log,
  });
  cleanup.push(() => side.close());
  if (redis) {
    const presence = new ApiPresence(redis.membership, settings.nodeId);
    await presence.heartbeat().catch(() => undefined);
    timers.every(HEARTBEAT_MS, () => presence.heartbeat(), 'API node heartbeat');
    cleanup.push(() => presence.leave());
  }
  return side;
}

/** Without a cluster, /api/workers acts on this node's own pool; ROLE=all always has one. */
function requirePool(side: SandboxSide | null): Ref<PoolMessage> {
  if (!side) throw new ConfigError('ROLE=api needs REDIS_URL: without a cluster, this node must run its own sandboxes (ROLE=all).');
  return side.pool;
}
