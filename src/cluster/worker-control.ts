import { ask, dispatch, type Ref } from '../actors/system.ts';
import type { PoolMessage, PoolStats } from '../actors/worker-pool.ts';
import { ConflictError, NotFoundError, UnavailableError } from '../errors.ts';
import type { ControlPlane } from './control-plane.ts';
import type { Membership, WorkerInfo } from './membership.ts';

/** Lambex's worker view: `uptime` is the seconds this worker has been up. */
export interface WorkerView {
  id: string;
  status: 'IDLE' | 'BUSY';
  uptime: number;
  managerId: string;
  currentJobId: string | null;
}

export interface Members {
  api: number;
  managers: number;
  workers: number;
  idle: number;
  busy: number;
}

/** `/api/workers` over either the local pool (one process) or the cluster's Redis control plane. */
export interface WorkerControl {
  list(): Promise<WorkerView[]>;
  scale(count: number, targetId?: string): Promise<{ managerId: string; desired: number }>;
  kill(workerId: string): Promise<void>;
  members(): Promise<Members>;
}

const view = (w: WorkerInfo, now: number): WorkerView => ({
  id: w.id,
  status: w.status,
  uptime: Math.max(0, Math.floor((now - w.startedAt) / 1000)),
  managerId: w.managerId,
  currentJobId: w.currentJobId,
});

export class LocalWorkerControl implements WorkerControl {
  constructor(
    private readonly pool: Ref<PoolMessage>,
    private readonly nodeId: string,
    /** Workers wanted: the pool's size at start, then moved by scale() and kill(). */
    private desired: number,
    private readonly cap: number,
  ) {}

  /** The wanted count after `change` workers, never below zero. */
  private wanted(change: number): number {
    return Math.max(0, this.desired + change);
  }

  private stats(): Promise<PoolStats> {
    return ask<PoolMessage, PoolStats>(this.pool, (replyTo) => ({ type: 'stats', replyTo }), 2000, 'WorkerPool');
  }

  async list(): Promise<WorkerView[]> {
    const now = Date.now();
    return (await this.stats()).list.map((w) =>
      view({ id: w.id, managerId: this.nodeId, status: w.busy ? 'BUSY' : 'IDLE', currentJobId: w.executionId, startedAt: w.startedAt }, now),
    );
  }

  async scale(count: number, targetId?: string): Promise<{ managerId: string; desired: number }> {
    if (targetId !== undefined && targetId !== this.nodeId) throw new NotFoundError('manager_not_found', `No manager ${targetId}; this node is ${this.nodeId}.`);
    const desired = this.wanted(count);
    if (desired > this.cap) throw new ConflictError('worker_cap', `Scaling to ${desired} workers would pass the cap of ${this.cap} (MAX_WORKERS).`);
    this.desired = desired;
    dispatch(this.pool, { type: 'resize', count: desired });
    return { managerId: this.nodeId, desired };
  }

  async kill(workerId: string): Promise<void> {
    if (!(await this.stats()).list.some((w) => w.id === workerId)) throw new NotFoundError('worker_not_found', `No worker ${workerId}.`);
    this.desired = this.wanted(-1);
    dispatch(this.pool, { type: 'retire', worker: workerId });
  }

  async members(): Promise<Members> {
    const stats = await this.stats();
    return { api: 1, managers: 1, workers: stats.workers, idle: stats.idle, busy: stats.busy };
  }
}

export class ClusterWorkerControl implements WorkerControl {
  constructor(
    private readonly membership: Membership,
    private readonly control: ControlPlane,
    private readonly cap: number,
  ) {}

  async list(): Promise<WorkerView[]> {
    const now = Date.now();
    return (await this.membership.workers()).map((w) => view(w, now));
  }

  async scale(count: number, targetId?: string): Promise<{ managerId: string; desired: number }> {
    const managers = await this.membership.live('manager');
    if (targetId !== undefined && !managers.includes(targetId)) throw new NotFoundError('manager_not_found', `No live manager ${targetId}.`);
    if (managers.length === 0) throw new UnavailableError('no_managers', 'No manager node is live; start one (ROLE=worker).');
    const managerId = targetId ?? managers[Math.floor(Math.random() * managers.length)]!;
    const desired = await this.control.scale(managerId, count, this.cap);
    if (desired < 0) throw new ConflictError('worker_cap', `Adding ${count} workers would pass the cluster-wide cap of ${this.cap} (MAX_WORKERS).`);
    await this.control.publish({ type: 'SPAWN', managerId });
    return { managerId, desired };
  }

  async kill(workerId: string): Promise<void> {
    const worker = (await this.membership.workers()).find((w) => w.id === workerId);
    if (!worker) throw new NotFoundError('worker_not_found', `No worker ${workerId}.`);
    await this.control.scale(worker.managerId, -1, Number.MAX_SAFE_INTEGER);
    await this.control.publish({ type: 'KILL', managerId: worker.managerId, workerId });
  }

  async members(): Promise<Members> {
    const [api, managers, workers] = await Promise.all([this.membership.live('api'), this.membership.live('manager'), this.membership.workers()]);
    const busy = workers.filter((w) => w.status === 'BUSY').length;
    return { api: api.length, managers: managers.length, workers: workers.length, idle: workers.length - busy, busy };
  }
}
