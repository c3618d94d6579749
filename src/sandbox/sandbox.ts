import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ContainerRuntime } from './container-runtime.ts';
import type { ExecutionPlan, ExecutionResult } from './execution.ts';
import { reapContainers } from './reaper.ts';
import { runExecution } from './run-execution.ts';
import { WarmPool, type WarmPoolOptions } from './warm-pool.ts';

export interface SandboxOptions {
  runtime: ContainerRuntime;
  /** Keep containers started ahead of demand; null runs every execution cold. */
  warmPool: WarmPoolOptions | null;
  nodeId: string;
  metrics: Metrics;
  log: Logger;
}

/** This node's sandboxes: checks it can run (engine up, image present), runs executions, reaps leftovers. */
export class Sandbox {
  readonly runtime: ContainerRuntime;
  /** Execution labels with a container: running, or being removed after the answer went out. */
  private readonly live = new Set<string>();
  private readonly removals = new Set<Promise<void>>();
  private readonly pendingLabels = new Set<string>();
  private readonly pool: WarmPool | null;

  constructor(private readonly options: SandboxOptions) {
    this.runtime = options.runtime;
    this.pool = options.warmPool ? new WarmPool(options, options.warmPool) : null;
  }

  /** Start-up: the engine answers and the runtime image is here; leftovers of an earlier process go; the pool fills. */
  async start(): Promise<void> {
    await this.runtime.check();
    await this.reap();
    this.pool?.start();
  }

  get warm(): number {
    return this.pool?.size ?? 0;
  }

  async run(plan: ExecutionPlan, signal: AbortSignal): Promise<ExecutionResult> {
    const warm = await this.pool?.acquire(plan.language);
    const label = warm?.label ?? plan.id;
    warm?.container.assign(plan.id);
    this.live.add(label);
    try {
      const deps = { ...this.options, trackRemoval: (removal: Promise<void>) => this.track(label, removal) };
      return await runExecution(deps, plan, signal, warm);
    } finally {
      if (!this.pendingLabels.has(label)) this.live.delete(label);
      this.pool?.forget(label);
      this.pool?.done();
    }
  }

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
    const count = await reapContainers(this.runtime, this.options.nodeId, this.options.log, (id) => this.live.has(id) || (this.pool?.owns(id) ?? false));
    this.options.metrics.containersReaped.inc(count);
    return count;
  }

  /**
   * Removes the containers of another node on this host, once that node is known dead (its membership
   * expired): a node killed between create and start leaves containers nobody else would end.
   */
  async reapDeadNode(nodeId: string): Promise<number> {
    if (nodeId === this.options.nodeId) return 0;
    const count = await reapContainers(this.runtime, nodeId, this.options.log);
    this.options.metrics.containersReaped.inc(count);
    return count;
  }

  /** Executions running, or whose containers are still being removed. */
  get running(): number {
    return this.live.size + this.removals.size;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    await Promise.allSettled([...this.removals]);
    await this.runtime.close();
  }
}
