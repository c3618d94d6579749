import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { DockerUnavailableError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ExecutionPlan, ExecutionResult } from './execution.ts';
import { requireImage } from './image.ts';
import { reapContainers } from './reaper.ts';
import { AutoRemovals } from './removals.ts';
import { runExecution } from './runner.ts';
import { WarmPool, type WarmPoolOptions } from './warm-pool.ts';

export interface SandboxOptions {
  socketPath: string;
  /** Keep containers started ahead of demand; null runs every execution cold. */
  warmPool?: WarmPoolOptions | null;
  image: string;
  nodeId: string;
  metrics: Metrics;
  log: Logger;
}

/** This node's Docker: checks it can run (image present, daemon up), runs executions, reaps leftovers. */
export class Sandbox {
  readonly docker: Docker;
  private readonly live = new Set<string>();
  private readonly removals = new Set<Promise<void>>();
  private readonly pool: WarmPool | null;
  private readonly autoRemovals: AutoRemovals;

  constructor(private readonly options: SandboxOptions) {
    this.docker = new Docker({ socketPath: options.socketPath });
    this.autoRemovals = new AutoRemovals(this.docker, options.nodeId, options.log);
    this.pool = options.warmPool ? new WarmPool({ ...options, docker: this.docker }, options.warmPool) : null;
  }

  /** Starts filling the warm pool (after check(): the image must be there). */
  startWarmPool(): void {
    this.pool?.start();
  }

  get warm(): number {
    return this.pool?.size ?? 0;
  }

  get image(): string {
    return this.options.image;
  }

  /** Start-up check: Docker answers and the runtime image is here (never pulled). */
  async check(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw new DockerUnavailableError(this.options.socketPath, error);
    }
    await requireImage(this.docker, this.options.image, this.options.socketPath);
    await this.autoRemovals.start();
  }

  async run(plan: ExecutionPlan, signal: AbortSignal): Promise<ExecutionResult> {
    const warm = await this.pool?.acquire(plan.language);
    const label = warm?.label ?? plan.id;
    // Operators (and `docker ps`) see which job a warm container now runs; not awaited: it is only a name.
    warm?.container.rename({ name: `bd-job-${plan.id}-${randomBytes(2).toString('hex')}` }).catch(() => undefined);
    this.live.add(label);
    try {
      const deps = { ...this.options, docker: this.docker, autoRemovals: this.autoRemovals, trackRemoval: (removal: Promise<void>) => this.track(label, removal) };
      return await runExecution(deps, plan, signal, warm);
    } finally {
      if (!this.pendingLabels.has(label)) this.live.delete(label);
      this.pool?.forget(label);
      this.pool?.done();
    }
  }

  private readonly pendingLabels = new Set<string>();

  /** The answer goes out while its container is removed; the label stays live until it is gone. */
  private track(label: string, removal: Promise<void>): void {
    this.pendingLabels.add(label);
    const settled = removal.finally(() => {
      this.removals.delete(settled);
      this.pendingLabels.delete(label);
      this.live.delete(label);
    });
    this.removals.add(settled);
  }

  /** Removes this node's containers that no running execution owns. */
  async reap(): Promise<number> {
    const count = await reapContainers(this.docker, this.options.nodeId, this.options.log, (id) => this.live.has(id) || (this.pool?.owns(id) ?? false));
    this.options.metrics.containersReaped.inc(count);
    return count;
  }

  /**
   * Removes the containers of another node on this Docker host, once that node is known dead (its
   * membership expired): a node killed between create and start leaves containers nobody else would end.
   */
  async reapDeadNode(nodeId: string): Promise<number> {
    if (nodeId === this.options.nodeId) return 0;
    const count = await reapContainers(this.docker, nodeId, this.options.log);
    this.options.metrics.containersReaped.inc(count);
    return count;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    await Promise.allSettled([...this.removals]);
    await this.autoRemovals.close();
  }

  get running(): number {
    return this.live.size + this.removals.size;
  }
}
