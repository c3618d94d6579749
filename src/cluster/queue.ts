import type { Redis } from 'ioredis';
import { PREFIX } from './redis.ts';

export const STREAM = `${PREFIX}jobs`;
export const GROUP = 'managers';
/** Ids of jobs that have a stream entry not yet acknowledged: lets recovery find jobs Redis lost. */
export const ENQUEUED = `${PREFIX}jobs:enqueued`;

export interface QueueEntry {
  entryId: string;
  jobId: string;
}

type StreamReply = [string, [string, string[]][]][] | null;

function entries(reply: StreamReply): QueueEntry[] {
  const out: QueueEntry[] = [];
  for (const [, items] of reply ?? []) {
    for (const [entryId, fields] of items) {
      const index = fields.indexOf('job');
      const jobId = index >= 0 ? fields[index + 1] : undefined;
      if (jobId) out.push({ entryId, jobId });
    }
  }
  return out;
}

/**
 * The durable job queue: a Redis Stream read by the managers' consumer group. An entry is acknowledged
 * only after its job's result is in the database; entries of a manager whose membership expired are
 * handed back by the reclaimer. The database stays the source of truth: this is transport.
 */
export class JobQueue {
  constructor(
    private readonly commands: Redis,
    private readonly blocking?: Redis,
  ) {}

  async ensureGroup(): Promise<void> {
    try {
      await this.commands.xgroup('CREATE', STREAM, GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
  }

  async enqueue(jobId: string): Promise<void> {
    await this.commands.multi().xadd(STREAM, '*', 'job', jobId).sadd(ENQUEUED, jobId).exec();
  }

  /** New entries for `consumer`, at most `count`, waiting up to `blockMs` (on the blocking connection). */
  async read(consumer: string, count: number, blockMs: number): Promise<QueueEntry[]> {
    const redis = this.blocking ?? this.commands;
    try {
      const reply = (await redis.xreadgroup('GROUP', GROUP, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', STREAM, '>')) as StreamReply;
      return entries(reply);
    } catch (error) {
      // Redis restarted empty: the group is gone; recreate it and let the caller read again.
      if (String(error).includes('NOGROUP')) await this.ensureGroup();
      throw error;
    }
  }

  async ack(entry: QueueEntry): Promise<void> {
    await this.commands.multi().xack(STREAM, GROUP, entry.entryId).xdel(STREAM, entry.entryId).srem(ENQUEUED, entry.jobId).exec();
  }

  /** Which of these jobs have a live entry (so recovery re-enqueues only the ones Redis lost). */
  async enqueued(jobIds: string[]): Promise<Set<string>> {
    if (jobIds.length === 0) return new Set();
    const flags = await this.commands.smismember(ENQUEUED, ...jobIds);
    return new Set(jobIds.filter((_, i) => flags[i] === 1));
  }

  async consumers(): Promise<string[]> {
    try {
      const reply = (await this.commands.xinfo('CONSUMERS', STREAM, GROUP)) as unknown[][];
      return reply.map((fields) => String(fields[fields.indexOf('name') + 1]));
    } catch {
      return [];
    }
  }

  /** Entries delivered to `consumer` and not acknowledged. */
  async pendingOf(consumer: string): Promise<QueueEntry[]> {
    const pending = (await this.commands.xpending(STREAM, GROUP, '-', '+', 10_000, consumer)) as [string, string, number, number][];
    if (pending.length === 0) return [];
    const found: QueueEntry[] = [];
    for (const [entryId] of pending) {
      const range = (await this.commands.xrange(STREAM, entryId, entryId)) as [string, string[]][];
      const fields = range[0]?.[1] ?? [];
      const index = fields.indexOf('job');
      found.push({ entryId, jobId: index >= 0 ? (fields[index + 1] ?? '') : '' });
    }
    return found;
  }

  /** Forgets a dead consumer after its entries were handed back. */
  async dropConsumer(consumer: string, handled: QueueEntry[]): Promise<void> {
    const tx = this.commands.multi();
    for (const entry of handled) tx.xack(STREAM, GROUP, entry.entryId).xdel(STREAM, entry.entryId);
    tx.xgroup('DELCONSUMER', STREAM, GROUP, consumer);
    await tx.exec();
  }
}
