import { takeToken, type BucketPolicy, type BucketState, type TakeResult } from './token-bucket.ts';

/** Where token buckets live: in memory (embedded mode) or in Redis (shared by every API node). */
export interface BucketStore {
  take(bucket: string, policy: BucketPolicy, cost?: number): Promise<Omit<TakeResult, 'state'>>;
  close(): Promise<void>;
}

/** One process's buckets. Full buckets are forgotten, so memory follows the number of active keys. */
export class LocalBucketStore implements BucketStore {
  private readonly buckets = new Map<string, BucketState>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.forgetFull(), 60_000);
    this.sweeper.unref();
  }

  async take(bucket: string, policy: BucketPolicy, cost = 1): Promise<Omit<TakeResult, 'state'>> {
    const { state, ...result } = takeToken(this.buckets.get(bucket), policy, this.now(), cost);
    this.buckets.set(bucket, state);
    return result;
  }

  private forgetFull(): void {
    // A bucket untouched for a day is full under any sane policy; dropping it changes nothing.
    const cutoff = this.now() - 24 * 3_600_000;
    for (const [bucket, state] of this.buckets) if (state.updatedAtMs < cutoff) this.buckets.delete(bucket);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
