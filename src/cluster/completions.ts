import type { Redis } from 'ioredis';
import { LocalCompletions, type Completions, type Finished } from '../jobs/completions.ts';
import { PREFIX } from './redis.ts';

export const DONE_CHANNEL = `${PREFIX}jobs:done`;

/** Completions across nodes: a manager publishes "job X finished"; every API node's waiters wake. */
export class RedisCompletions implements Completions {
  private readonly local = new LocalCompletions();

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
  ) {}

  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, jobId: string) => {
      if (channel === DONE_CHANNEL) void this.local.notify(jobId);
    });
    await this.subscriber.subscribe(DONE_CHANNEL);
  }

  wait(jobId: string, timeoutMs: number): Promise<Finished | null> {
    return this.local.wait(jobId, timeoutMs);
  }

  /** Only the id crosses Redis: the waiting API node reads the job from the shared database. */
  async notify(jobId: string): Promise<void> {
    await this.publisher.publish(DONE_CHANNEL, jobId);
  }

  async close(): Promise<void> {
    await this.local.close();
  }
}
