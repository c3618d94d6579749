import type { JobRecord } from './job.ts';

/** A queued job handed to one manager node; acknowledged once its result is stored. */
export interface Delivery {
  jobId: string;
  /** The transport's handle on this delivery (a stream entry id), for ack(). */
  receipt: string;
  /** The job as it was submitted, when the bus carries it (in-process): saves a read of the store. */
  job?: JobRecord;
}

/** What a finished job's waiter receives: the finished record, when the notifier had it at hand. */
export interface Finished {
  job?: JobRecord;
}

/**
 * "Every node that ran jobs before this process started", as a dead consumer: in one process that owns
 * its database, every job still marked running belongs to it.
 */
export const EARLIER_PROCESSES = null;
/** A consumer whose jobs must be handed back: a dead manager node's id, or EARLIER_PROCESSES. */
export type DeadConsumer = string | typeof EARLIER_PROCESSES;

/**
 * The transport of the job lifecycle (src/jobs/lifecycle.ts): a durable queue of job ids read by
 * manager nodes, "finished" and "cancel" notices, and locks for cluster-wide chores. Two
 * implementations: in-process (src/bus/in-process-bus.ts: the embedded and single-node modes) and
 * Redis Streams (src/bus/redis-bus.ts: a cluster). The database stays the source of truth: whatever the
 * bus loses, maintenance finds again from the store.
 */
export interface JobBus {
  /** Prepares the transport (a Redis consumer group); called once before use. */
  start(): Promise<void>;

  // --- the queue ---
  /** Queues a stored job. `job` travels along where the transport can carry it. */
  enqueue(jobId: string, job?: JobRecord): Promise<void>;
  /** Up to `max` queued jobs for `consumer`, waiting up to `waitMs` for the first. */
  take(consumer: string, max: number, waitMs: number): Promise<Delivery[]>;
  /** The delivery's result is stored: it leaves the queue for good. */
  ack(delivery: Delivery): Promise<void>;
  /** Which of these jobs have an entry in the queue, delivered or not (the others were lost). */
  holds(jobIds: readonly string[]): Promise<Set<string>>;

  // --- consumers that died ---
  /** Consumers whose node is gone and whose jobs have not been handed back yet (never `self`). */
  deadConsumers(self: string): Promise<DeadConsumer[]>;
  /** Forgets a dead consumer; returns the job ids it had taken and not acknowledged. */
  dropConsumer(consumer: DeadConsumer): Promise<string[]>;

  // --- notices ---
  /** Tells waiters that `jobId` finished; `job` is handed to waiters in this process. */
  notifyDone(jobId: string, job?: JobRecord): Promise<void>;
  /** Resolves when `jobId` finishes, or null after `timeoutMs`. Register before submitting. */
  waitDone(jobId: string, timeoutMs: number): Promise<Finished | null>;
  /** Asks the manager running `jobId` to stop it. */
  publishCancel(jobId: string): Promise<void>;
  /** Called for every cancel notice (a manager node listens). */
  onCancel(listener: (jobId: string) => void): void;

  // --- chores ---
  /** True when `owner` may do the chore `name` now: no other node has done it within `ttlMs`. */
  lock(name: string, ttlMs: number, owner: string): Promise<boolean>;
  /** Answers when the transport is reachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
