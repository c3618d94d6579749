import { ask, dispatch, type Ref } from '../actors/system.ts';
import type { PoolMessage, PoolStats } from '../actors/worker-pool.ts';
import type { Logger } from '../observability/logger.ts';
import type { Rejected } from '../redis/bus-input.ts';
import type { Redis } from '../redis/connections.ts';
import { parseControlMessage, type ControlMessage, type ControlPlane } from './control-plane.ts';
import type { Membership } from './membership.ts';

/** An API node in the cluster's membership (`/ready` counts them). */
export class ApiPresence {
  private readonly startedAt = Date.now();

  constructor(
    private readonly membership: Membership,
    private readonly nodeId: string,
  ) {}

  /** Every HEARTBEAT_MS, or the membership expires. */
  heartbeat(): Promise<void> {
    return this.membership.heartbeat('api', this.nodeId, { startedAt: this.startedAt, pid: process.pid });
  }

  leave(): Promise<void> {
    return this.membership.remove('api', [this.nodeId]);
  }
}

export interface ManagerPresenceOptions {
  nodeId: string;
  membership: Membership;
  control: ControlPlane;
  /** The connection control messages arrive on. */
  subscriber: Redis;
  pool: Ref<PoolMessage>;
  /** Workers this manager starts with unless operators scaled it before (CONCURRENCY). */
  defaultWorkers: number;
  /** The pool was resized: the manager loop may take more. */
  onResize(): void;
  rejected: Rejected;
  log: Logger;
}

/**
 * A manager node in the cluster (Lambex's model): registers `manager:{id}` and its workers with
 * heartbeats (every HEARTBEAT_MS, scheduled by the node), reconciles its WorkerPool to the wanted count in Redis (so a manager that missed a
 * message catches up), and obeys SPAWN/KILL nudges.
 */
export class ManagerPresence {
  private readonly startedAt = Date.now();
  private readonly log: Logger;
  private poolSize = 0;
  /** Set once the manager has deregistered: nothing may re-register it. */
  private left = false;

  constructor(private readonly options: ManagerPresenceOptions) {
    this.log = options.log.child({ manager: options.nodeId });
  }

  async start(): Promise<void> {
    const { subscriber, control } = this.options;
    await this.reconcile();
    await this.heartbeat();
    subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== control.channel) return;
      const message = parseControlMessage(raw);
      if (!message) return this.options.rejected('control-message', raw);
      this.onControl(message).catch((error: unknown) => this.log.warn({ err: error }, 'control message failed'));
    });
    await subscriber.subscribe(control.channel);
    this.log.info({ workers: this.poolSize }, 'manager started');
  }

  private stats(): Promise<PoolStats> {
    return ask<PoolMessage, PoolStats>(this.options.pool, (replyTo) => ({ type: 'stats', replyTo }), 2000, 'WorkerPool');
  }

  /** The wanted count lives in Redis; a manager that was away catches up here. */
  async reconcile(): Promise<void> {
    if (this.left) return;
    const wanted = await this.options.control.initDesired(this.options.nodeId, this.options.defaultWorkers);
    // Not a count this engine wrote (reported by the control plane): the pool keeps its size.
    if (wanted === null || wanted === this.poolSize) return;
    this.log.info({ from: this.poolSize, to: wanted }, 'scaling workers');
    this.poolSize = wanted;
    dispatch(this.options.pool, { type: 'resize', count: wanted });
    this.options.onResize();
  }

  private async onControl(message: ControlMessage): Promise<void> {
    if (message.managerId !== this.options.nodeId) return;
    switch (message.type) {
      case 'SPAWN':
        await this.reconcile();
        return;
      case 'KILL':
        // The API already lowered the wanted count; this worker goes after its current execution.
        this.poolSize = Math.max(0, this.poolSize - 1);
        dispatch(this.options.pool, { type: 'retire', worker: message.workerId });
        await this.options.membership.remove('worker', [message.workerId]);
        return;
    }
  }

  async heartbeat(): Promise<void> {
    if (this.left) return;
    const { membership, nodeId } = this.options;
    const stats = await this.stats();
    await membership.heartbeat('manager', nodeId, { startedAt: this.startedAt, workers: stats.workers, busy: stats.busy, pid: process.pid });
    await membership.putWorkers(
      stats.list.map((w) => ({ id: w.id, managerId: nodeId, status: w.busy ? 'BUSY' : 'IDLE', currentJobId: w.executionId, startedAt: w.startedAt })),
    );
  }

  /** Leaves the cluster (after draining: until then heartbeats go on, so nobody reclaims the running jobs). */
  async leave(): Promise<void> {
    this.left = true;
    const stats = await this.stats().catch(() => null);
    await this.options.membership.remove('worker', stats?.list.map((w) => w.id) ?? []).catch(() => undefined);
    await this.options.membership.remove('manager', [this.options.nodeId]).catch(() => undefined);
  }
}
