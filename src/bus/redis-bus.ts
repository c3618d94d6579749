import type { DeadConsumer, Delivery, Finished, JobBus } from '../jobs/bus.ts';
import { jobIdFrom, type Rejected } from '../redis/bus-input.ts';
import type { RedisConnections } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/redis-keys.ts';
import { DoneWaiters } from './done-waiters.ts';

/**
 * A chore's lock (`lock-1`): taken when free, or kept by the node that holds it (its own chore may run
 * again before the lock expires); refused to every other node until it expires.
 */
const LOCK_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;
type LockCommand = (key: string, owner: string, ttlMs: number) => Promise<unknown>;

type StreamReply = [string, [string, string[]][]][] | null;

/** The job id of a stream entry's fields (exactly `job <uuid>`), or null for anything else. */
function jobIdOf(fields: readonly unknown[]): string | null {
  return fields.length === 2 && fields[0] === 'job' ? jobIdFrom(fields[1]) : null;
}

export interface RedisBusOptions {
  redis: RedisConnections;
  keys: RedisKeys;
  /** Whether the manager node `nodeId` is alive (its membership key has not expired). */
  isAlive(nodeId: string): Promise<boolean>;
  /** Reports a value read from Redis that is not what the engine writes (it is then ignored). */
  rejected: Rejected;
}

/**
 * The job bus of a cluster. The queue is a Redis Stream read by the managers' consumer group: each
 * manager is a consumer named by its node id, an entry is acknowledged only after its job's result is
 * stored, and the entries of a manager whose membership expired are handed back (never by idle time: a
 * 10 s Java job is never stolen from a live manager). Notices go over pub/sub: only ids cross Redis.
 */
export class RedisBus implements JobBus {
  private readonly done = new DoneWaiters();
  private readonly cancelListeners: ((jobId: string) => void)[] = [];
  private readonly keys: RedisKeys;
  private readonly lockCommand: LockCommand;

  constructor(private readonly options: RedisBusOptions) {
    this.keys = options.keys;
    const { commands } = options.redis;
    if (typeof (commands as unknown as Record<string, unknown>).braindrillLock !== 'function') {
      commands.defineCommand('braindrillLock', { numberOfKeys: 1, lua: LOCK_LUA });
    }
    this.lockCommand = ((commands as unknown as Record<string, LockCommand>).braindrillLock as LockCommand).bind(commands);
  }

  async start(): Promise<void> {
    await this.ensureGroup();
    const { subscriber } = this.options.redis;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.keys.doneChannel && channel !== this.keys.cancelChannel) return;
      const jobId = jobIdFrom(message);
      if (jobId === null) return this.options.rejected(channel === this.keys.doneChannel ? 'done-notice' : 'cancel-notice', message);
      if (channel === this.keys.doneChannel) this.done.wake(jobId);
      else for (const listener of this.cancelListeners) listener(jobId);
    });
    await subscriber.subscribe(this.keys.doneChannel, this.keys.cancelChannel);
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.options.redis.commands.xgroup('CREATE', this.keys.jobStream, this.keys.consumerGroup, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
  }

  async enqueue(jobId: string): Promise<void> {
    await this.options.redis.commands.multi().xadd(this.keys.jobStream, '*', 'job', jobId).sadd(this.keys.enqueuedJobs, jobId).exec();
  }

  /** Reads on the blocking connection, so heartbeats never wait behind it. */
  async take(consumer: string, max: number, waitMs: number): Promise<Delivery[]> {
    const { keys } = this;
    try {
      const reply = (await this.options.redis.blocking.xreadgroup('GROUP', keys.consumerGroup, consumer, 'COUNT', max, 'BLOCK', waitMs, 'STREAMS', keys.jobStream, '>')) as StreamReply;
      return await this.deliveries(reply);
    } catch (error) {
      // Redis restarted empty: the group is gone; recreate it and let the caller read again.
      if (String(error).includes('NOGROUP')) await this.ensureGroup();
      throw error;
    }
  }

  /** The entries that carry a job id; any other entry is reported and acknowledged (it would stay pending forever). */
  private async deliveries(reply: StreamReply): Promise<Delivery[]> {
    const { keys } = this;
    const out: Delivery[] = [];
    for (const [, items] of reply ?? []) {
      for (const [receipt, fields] of items) {
        const jobId = jobIdOf(fields);
        if (jobId !== null) {
          out.push({ jobId, receipt });
          continue;
        }
        this.options.rejected('queue-entry', fields);
        await this.options.redis.commands.multi().xack(keys.jobStream, keys.consumerGroup, receipt).xdel(keys.jobStream, receipt).exec();
      }
    }
    return out;
  }

  async ack(delivery: Delivery): Promise<void> {
    const { keys } = this;
    await this.options.redis.commands.multi().xack(keys.jobStream, keys.consumerGroup, delivery.receipt).xdel(keys.jobStream, delivery.receipt).srem(keys.enqueuedJobs, delivery.jobId).exec();
  }

  async holds(jobIds: readonly string[]): Promise<Set<string>> {
    if (jobIds.length === 0) return new Set();
    const flags = await this.options.redis.commands.smismember(this.keys.enqueuedJobs, ...jobIds);
    return new Set(jobIds.filter((_, i) => flags[i] === 1));
  }

  async deadConsumers(self: string): Promise<DeadConsumer[]> {
    const dead: string[] = [];
    for (const consumer of await this.consumers()) {
      if (consumer !== self && !(await this.options.isAlive(consumer))) dead.push(consumer);
    }
    return dead;
  }

  private async consumers(): Promise<string[]> {
    try {
      const reply = (await this.options.redis.commands.xinfo('CONSUMERS', this.keys.jobStream, this.keys.consumerGroup)) as unknown[][];
      return reply.map((fields) => String(fields[fields.indexOf('name') + 1]));
    } catch {
      return [];
    }
  }

  /** Acknowledges and deletes the dead consumer's pending entries and the consumer itself. */
  async dropConsumer(consumer: DeadConsumer): Promise<string[]> {
    if (consumer === null) return [];
    const { commands } = this.options.redis;
    const { keys } = this;
    const pending = (await commands.xpending(keys.jobStream, keys.consumerGroup, '-', '+', 10_000, consumer)) as [string, string, number, number][];
    const jobIds: string[] = [];
    const tx = commands.multi();
    for (const [receipt] of pending) {
      const range = (await commands.xrange(keys.jobStream, receipt, receipt)) as [string, string[]][];
      const jobId = jobIdOf(range[0]?.[1] ?? []);
      if (jobId !== null) {
        jobIds.push(jobId);
        tx.srem(keys.enqueuedJobs, jobId);
      }
      tx.xack(keys.jobStream, keys.consumerGroup, receipt).xdel(keys.jobStream, receipt);
    }
    tx.xgroup('DELCONSUMER', keys.jobStream, keys.consumerGroup, consumer);
    await tx.exec();
    return jobIds;
  }

  /** Only the id crosses Redis: the waiting API node reads the job from the shared database. */
  async notifyDone(jobId: string): Promise<void> {
    await this.options.redis.commands.publish(this.keys.doneChannel, jobId);
  }

  waitDone(jobId: string, timeoutMs: number): Promise<Finished | null> {
    return this.done.wait(jobId, timeoutMs);
  }

  async publishCancel(jobId: string): Promise<void> {
    await this.options.redis.commands.publish(this.keys.cancelChannel, jobId);
  }

  onCancel(listener: (jobId: string) => void): void {
    this.cancelListeners.push(listener);
  }

  async lock(name: string, ttlMs: number, owner: string): Promise<boolean> {
    return Number(await this.lockCommand(this.keys.lock(name), owner, ttlMs)) === 1;
  }

  async ping(): Promise<void> {
    await this.options.redis.commands.ping();
  }

  async close(): Promise<void> {
    this.done.clear();
  }
}
