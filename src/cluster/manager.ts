import { ask, dispatch, spawn, type Ref } from '../actors/system.ts';
import type { ExecutionReply, ExecutionStarted } from '../actors/worker.ts';
import type { PoolMessage, PoolStats } from '../actors/worker-pool.ts';
import type { Completions } from '../jobs/completions.ts';
import { recordResult } from '../jobs/record.ts';
import type { JobStore } from '../jobs/store.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ExecutionResult } from '../sandbox/execution.ts';
import { planExecution, type PlanOptions } from '../sandbox/plan.ts';
import type { Budget } from './admission.ts';
import { CONTROL_CHANNEL, ControlPlane, parseControlMessage, type ControlMessage } from './control.ts';
import { HEARTBEAT_MS, Membership } from './membership.ts';
import { JobQueue, type QueueEntry } from './queue.ts';
import type { RedisConnections } from './redis.ts';

export interface ManagerOptions {
  id: string;
  redis: RedisConnections;
  store: JobStore;
  completions: Completions;
  pool: Ref<PoolMessage>;
  system: Ref<never>;
  languages: LanguageRegistry;
  plan: PlanOptions;
  budget: Budget;
  /** Removes a dead node's containers from this Docker host. */
  reapDeadNode(nodeId: string): Promise<number>;
  defaultWorkers: number;
  maxAttempts: number;
  syncWaitMarginMs: number;
  metrics: Metrics;
  log: Logger;
}

const RECLAIM_MS = 2000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A worker manager node (Lambex's model): registers `manager:{id}`, keeps its workers' heartbeats,
 * reconciles its WorkerPool to the wanted count in Redis, reads jobs from the stream as capacity frees,
 * writes each result to the database before acknowledging it, and hands back the jobs of managers whose
 * membership expired.
 */
export class Manager {
  private running = false;
  /** Set once the manager has deregistered: nothing may re-register it. */
  private left = false;
  private readonly inFlight = new Map<string, QueueEntry>();
  private readonly queue: JobQueue;
  private readonly membership: Membership;
  private readonly control: ControlPlane;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private reporter!: Ref<ExecutionStarted>;
  private freed: (() => void) | undefined;
  private feeding: Promise<void> = Promise.resolve();
  private poolSize = 0;

  constructor(private readonly options: ManagerOptions) {
    this.queue = new JobQueue(options.redis.commands, options.redis.blocking);
    this.membership = new Membership(options.redis.commands);
    this.control = new ControlPlane(options.redis.commands);
    this.log = options.log.child({ manager: options.id });
  }

  async start(): Promise<void> {
    const { store, id } = this.options;
    await this.queue.ensureGroup();
    // Marks a job running when a worker actually starts it, with the worker's id.
    this.reporter = spawn(
      this.options.system,
      async (_state: undefined, message: ExecutionStarted) => {
        await store.markRunning(message.executionId, id, message.worker).catch((error: unknown) => this.log.warn({ err: error, job: message.executionId }, 'could not mark the job running'));
        // Membership shows the worker BUSY now, not at the next beat.
        await this.heartbeat().catch(() => undefined);
        return undefined;
      },
      'started-reporter',
      { onCrash: (_m, _e, ctx) => ctx.resume },
    ) as Ref<ExecutionStarted>;
    this.running = true;
    await this.reconcile();
    await this.heartbeat();
    this.options.redis.subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== CONTROL_CHANNEL) return;
      const message = parseControlMessage(raw);
      if (!message) return this.log.warn({ raw: raw.slice(0, 200) }, 'malformed control message ignored');
      this.onControl(message).catch((error: unknown) => this.log.warn({ err: error }, 'control message failed'));
    });
    await this.options.redis.subscriber.subscribe(CONTROL_CHANNEL);
    this.every(HEARTBEAT_MS, () => this.heartbeat(), true);
    this.every(HEARTBEAT_MS, () => this.reconcile());
    this.every(RECLAIM_MS, () => this.reclaim());
    this.feeding = this.feed();
    this.log.info({ workers: this.poolSize }, 'manager started');
  }

  private every(ms: number, task: () => Promise<unknown>, whileDraining = false): void {
    const timer = setInterval(() => {
      if (this.running || (whileDraining && !this.left)) task().catch((error: unknown) => this.log.warn({ err: error }, 'periodic manager task failed'));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private stats(): Promise<PoolStats> {
    return ask<PoolMessage, PoolStats>(this.options.pool, (replyTo) => ({ type: 'stats', replyTo }), 2000, 'WorkerPool');
  }

  /** The wanted count lives in Redis; a manager that was away catches up here. */
  async reconcile(): Promise<void> {
    const wanted = await this.control.initDesired(this.options.id, this.options.defaultWorkers);
    if (wanted !== this.poolSize) {
      this.log.info({ from: this.poolSize, to: wanted }, 'scaling workers');
      this.poolSize = wanted;
      dispatch(this.options.pool, { type: 'resize', count: wanted });
      this.freed?.();
    }
  }

  private async onControl(message: ControlMessage): Promise<void> {
    switch (message.type) {
      case 'SPAWN':
        if (message.managerId === this.options.id) await this.reconcile();
        return;
      case 'KILL':
        if (message.managerId !== this.options.id) return;
        // The API already lowered the wanted count; this worker goes after its current execution.
        this.poolSize = Math.max(0, this.poolSize - 1);
        dispatch(this.options.pool, { type: 'retire', worker: message.workerId });
        await this.membership.remove('worker', [message.workerId]);
        return;
      case 'CANCEL':
        if (this.inFlight.has(message.jobId)) dispatch(this.options.pool, { type: 'cancel', executionId: message.jobId });
        return;
    }
  }

  async heartbeat(): Promise<void> {
    if (this.left) return;
    const stats = await this.stats();
    await this.membership.heartbeat('manager', this.options.id, {
      startedAt: this.startedAt,
      workers: stats.workers,
      busy: stats.busy,
      pid: process.pid,
    });
    await this.membership.putWorkers(
      stats.list.map((w) => ({ id: w.id, managerId: this.options.id, status: w.busy ? 'BUSY' : 'IDLE', currentJobId: w.executionId, startedAt: w.startedAt })),
    );
  }

  /** Reads as many jobs as there are free workers, and no more: a job waits in the stream, not here. */
  private async feed(): Promise<void> {
    while (this.running) {
      const capacity = this.poolSize - this.inFlight.size;
      if (capacity <= 0) {
        await new Promise<void>((resolve) => {
          this.freed = resolve;
          setTimeout(resolve, 1000);
        });
        continue;
      }
      let entries: QueueEntry[];
      try {
        entries = await this.queue.read(this.options.id, capacity, 2000);
      } catch (error) {
        if (this.running) this.log.warn({ err: error }, 'reading the job stream failed; retrying');
        await sleep(500);
        continue;
      }
      for (const entry of entries) {
        this.inFlight.set(entry.jobId, entry);
        this.execute(entry)
          .catch((error: unknown) => this.log.error({ err: error, job: entry.jobId }, 'job handling failed; it stays pending and will be reclaimed'))
          .finally(() => {
            this.inFlight.delete(entry.jobId);
            this.freed?.();
            void this.heartbeat().catch(() => undefined);
          });
      }
    }
  }

  private async execute(entry: QueueEntry): Promise<void> {
    const { store, languages, budget, metrics, log } = { ...this.options, log: this.log };
    const job = await store.get(entry.jobId);
    if (!job || job.status !== 'queued') {
      // Cancelled, finished, or swept meanwhile: nothing to run.
      await this.queue.ack(entry);
      return;
    }
    const language = languages.find(job.language);
    if (!language) {
      log.error({ job: job.id, language: job.language }, 'job for a language this manager does not know; left for another');
      return;
    }
    const plan = planExecution(job.id, language, { files: job.files, stdin: job.stdin, args: job.args }, this.options.plan);
    const memoryMb = Math.max(language.limits.memoryMb, language.compile?.memoryMb ?? 0);
    await budget.acquire(memoryMb, language.limits.cpus);
    let result: ExecutionResult;
    try {
      const waitMs = (language.compile?.timeoutMs ?? 0) + language.limits.timeoutMs + this.options.syncWaitMarginMs + 60_000;
      const reply = await ask<PoolMessage, ExecutionReply>(
        this.options.pool,
        (replyTo) => ({ type: 'submit', plan, owner: job.owner, replyTo, onStart: this.reporter }),
        waitMs,
        'WorkerPool',
      );
      result = reply.result;
    } finally {
      budget.release(memoryMb, language.limits.cpus);
    }
    // The result is in the database before the entry is acknowledged: a crash between the two re-runs
    // the job's delivery, and complete() applies a result once.
    for (let attempt = 0; ; attempt++) {
      try {
        await recordResult({ store, metrics, log }, job.id, language, result);
        break;
      } catch (error) {
        if (!this.running && attempt > 10) throw error;
        log.warn({ err: error, job: job.id }, 'could not save a result; retrying');
        await sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
    await this.options.completions.notify(job.id).catch(() => undefined);
    await this.queue.ack(entry);
  }

  /**
   * Hands back jobs held by managers whose membership expired (not by idle time: a 10 s Java job is
   * never stolen from a live manager). One manager does it per dead consumer, under a lock.
   */
  async reclaim(): Promise<void> {
    const redis = this.options.redis.commands;
    for (const consumer of await this.queue.consumers()) {
      if (consumer === this.options.id || (await this.membership.isAlive('manager', consumer))) continue;
      const locked = await redis.set(`braindrill:reclaim:${consumer}`, this.options.id, 'PX', 30_000, 'NX');
      if (locked !== 'OK') continue;
      const entries = await this.queue.pendingOf(consumer);
      const { requeued, failed } = await this.options.store.requeueRunning(consumer, this.options.maxAttempts);
      const handBack: QueueEntry[] = [];
      for (const entry of entries) {
        const job = entry.jobId ? await this.options.store.get(entry.jobId) : undefined;
        if (job?.status === 'queued') {
          await this.queue.enqueue(job.id);
          handBack.push(entry);
        } else await this.queue.ack(entry);
      }
      await this.queue.dropConsumer(consumer, handBack);
      for (const jobId of failed) await this.options.completions.notify(jobId);
      this.options.metrics.jobsRecovered.labels('requeued').inc(requeued.length);
      this.options.metrics.jobsRecovered.labels('failed').inc(failed.length);
      await this.membership.remove('manager', [consumer]);
      const reaped = await this.options.reapDeadNode(consumer).catch(() => 0);
      this.log.warn({ consumer, entries: entries.length, requeued: requeued.length, failed: failed.length, reaped }, 'reclaimed the jobs of a dead manager');
    }
  }

  /** Drain: stop reading, let running jobs finish and be saved, then leave the cluster. */
  async stop(): Promise<void> {
    this.running = false;
    this.freed?.();
    // Heartbeats go on while running jobs finish, so nobody reclaims them meanwhile.
    for (let waited = 0; this.inFlight.size > 0 && waited < 60_000; waited += 100) await sleep(100);
    await this.feeding.catch(() => undefined);
    for (const timer of this.timers) clearInterval(timer);
    this.left = true;
    const stats = await this.stats().catch(() => null);
    await this.membership.remove('worker', stats?.list.map((w) => w.id) ?? []).catch(() => undefined);
    await this.membership.remove('manager', [this.options.id]).catch(() => undefined);
  }
}
