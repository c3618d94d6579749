import Docker from 'dockerode';
import { DockerUnavailableError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ExecutionPlan, ExecutionResult } from './execution.ts';
import { requireImage } from './image.ts';
import { reapContainers } from './reaper.ts';
import { runExecution } from './runner.ts';

export interface SandboxOptions {
  socketPath: string;
  image: string;
  nodeId: string;
  metrics: Metrics;
  log: Logger;
}

/** This node's Docker: checks it can run (image present, daemon up), runs executions, reaps leftovers. */
export class Sandbox {
  readonly docker: Docker;
  private readonly live = new Set<string>();

  constructor(private readonly options: SandboxOptions) {
    this.docker = new Docker({ socketPath: options.socketPath });
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
  }

  async run(plan: ExecutionPlan, signal: AbortSignal): Promise<ExecutionResult> {
    this.live.add(plan.id);
    try {
      return await runExecution({ ...this.options, docker: this.docker }, plan, signal);
    } finally {
      this.live.delete(plan.id);
    }
  }

  /** Removes this node's containers that no running execution owns. */
  async reap(): Promise<number> {
    const count = await reapContainers(this.docker, this.options.nodeId, this.options.log, (id) => this.live.has(id));
    this.options.metrics.containersReaped.inc(count);
    return count;
  }

  get running(): number {
    return this.live.size;
  }
}
