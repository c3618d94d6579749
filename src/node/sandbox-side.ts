import { dispatch, type Ref } from '../actors/system.ts';
import { spawnWorkerPool, type PoolMessage } from '../actors/worker-pool.ts';
import type { JobBus } from '../jobs/bus.ts';
import type { JobLifecycle } from '../jobs/lifecycle.ts';
import type { JobMaintenance } from '../jobs/maintenance.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ContainerRuntime } from '../sandbox/container-runtime.ts';
import { Sandbox } from '../sandbox/sandbox.ts';
import type { WarmPoolOptions } from '../sandbox/warm-pool.ts';
import { ManagerLoop } from './manager-loop.ts';
import { Timers } from './timers.ts';

export interface SandboxSideOptions {
  nodeId: string;
  runtime: ContainerRuntime;
  /** Null: every execution starts cold. */
  warmPool: WarmPoolOptions | null;
  /** Workers the pool starts with (a cluster's manager starts with none and reconciles to the wanted count). */
  initialWorkers: number;
  /** At most this many executions of one API key at once on this node. */
  maxRunningPerOwner: number;
  budget: { memoryMb: number; cpus: number };
  syncWaitMarginMs: number;
  bus: JobBus;
  lifecycle: JobLifecycle;
  maintenance: JobMaintenance;
  languages: LanguageRegistry;
  system: Ref<never>;
  metrics: Metrics;
  log: Logger;
}

/** What a running sandbox side offers the rest of the node. */
export interface SandboxSide {
  sandbox: Sandbox;
  pool: Ref<PoolMessage>;
  loop: ManagerLoop;
  /** Before the loop takes jobs: what an earlier process or a dead node left running is handed back. */
  start(cleanUpAfter?: (nodeId: string) => Promise<void>): Promise<void>;
  /** Takes no more jobs; running ones finish and are saved (a cluster then leaves the membership). */
  stopTaking(): Promise<void>;
  /** Drains (stopTaking), lets the pool's executions end and their containers go, then closes the sandbox. */
  close(): Promise<void>;
}

const REAP_INTERVAL_MS = 60_000;
const RECLAIM_INTERVAL_MS = 2000;
const DRAIN_MS = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The sandbox side of a node (a manager node): this host's sandboxes (warm pool, reaper), the
 * WorkerPool, and the manager loop feeding the pool from the job bus.
 */
export async function startSandboxSide(options: SandboxSideOptions): Promise<SandboxSide> {
  const { nodeId, metrics, log } = options;
  const sandbox = new Sandbox({ runtime: options.runtime, warmPool: options.warmPool, nodeId, metrics, log });
  await sandbox.start();
  const pool = spawnWorkerPool(options.system, {
    size: options.initialWorkers,
    maxRunningPerOwner: options.maxRunningPerOwner,
    budget: options.budget,
    run: (plan, signal) => sandbox.run(plan, signal),
    metrics,
    log,
  });
  const loop = new ManagerLoop({
    nodeId,
    bus: options.bus,
    lifecycle: options.lifecycle,
    pool,
    syncWaitMarginMs: options.syncWaitMarginMs,
    log,
  });
  const timers = new Timers(log);
  let stopped: Promise<void> | null = null;
  const stopTaking = () =>
    (stopped ??= (async () => {
      timers.stop();
      await loop.stop(DRAIN_MS);
      options.lifecycle.close();
    })());

  return {
    sandbox,
    pool,
    loop,
    async start(cleanUpAfter = async () => undefined) {
      const onDead = async (deadNode: string) => {
        await sandbox.reapDeadNode(deadNode).catch(() => 0);
        await cleanUpAfter(deadNode);
      };
      await options.maintenance.reclaim(onDead);
      loop.start();
      timers.every(RECLAIM_INTERVAL_MS, () => options.maintenance.reclaim(onDead), 'reclaiming the jobs of dead nodes');
      timers.every(REAP_INTERVAL_MS, () => sandbox.reap(), 'periodic reap');
    },
    stopTaking,
    async close() {
      await stopTaking();
      // Running executions finish and their containers are removed before the actors stop.
      dispatch(pool, { type: 'resize', count: 0 });
      for (let waited = 0; sandbox.running > 0 && waited < DRAIN_MS; waited += 100) await sleep(100);
      await sleep(200);
      await sandbox.reap().catch(() => 0);
      await sandbox.close();
    },
  };
}
