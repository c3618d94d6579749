/**
 * Every Redis key and channel the engine uses, built from one prefix (`REDIS_PREFIX`, default
 * `braindrill:`), so two deployments can share a Redis and a reader can list what the engine owns here.
 */
export type MemberKind = 'api' | 'manager' | 'worker';

export class RedisKeys {
  constructor(readonly prefix: string) {}

  // --- the job queue (src/bus/redis-bus.ts) ---
  /** Stream of queued job ids, read by the managers' consumer group. */
  get jobStream(): string {
    return `${this.prefix}jobs`;
  }
  /** Consumer group of the job stream (a name inside the stream, not a key). */
  readonly consumerGroup = 'managers';
  /** Set of job ids with an unacknowledged stream entry: recovery finds the jobs Redis lost. */
  get enqueuedJobs(): string {
    return `${this.prefix}jobs:enqueued`;
  }
  /** Channel: "job X finished" (a hint; waiters read the stored result). */
  get doneChannel(): string {
    return `${this.prefix}jobs:done`;
  }
  /** Channel: "cancel job X" for the manager running it. */
  get cancelChannel(): string {
    return `${this.prefix}jobs:cancel`;
  }
  /** A cluster-wide chore's lock (recovery, TTL sweep, reclaim of one dead manager). */
  lock(name: string): string {
    return `${this.prefix}lock:${name}`;
  }

  // --- membership and control (src/cluster/) ---
  /** Set of the live ids of one kind; a member whose key expired is pruned when read. */
  members(kind: MemberKind): string {
    return `${this.prefix}members:${kind}`;
  }
  /** One member's heartbeat hash, expiring unless refreshed. */
  member(kind: MemberKind, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }
  /** Hash: wanted workers per manager node. */
  get desiredWorkers(): string {
    return `${this.prefix}workers:desired`;
  }
  /** Channel of control nudges (SPAWN, KILL). */
  get controlChannel(): string {
    return `${this.prefix}control`;
  }

  // --- access (src/access/redis-bucket-store.ts) ---
  /** Prefix of the per-key token buckets. */
  get bucketPrefix(): string {
    return `${this.prefix}bucket:`;
  }
}
