import type { BucketStore } from '../access/bucket-store.ts';
import type { BucketPolicy, TakeResult } from '../access/token-bucket.ts';
import type { Logger } from '../observability/logger.ts';
import { dispatch, spawn, type Ref } from './system.ts';

export type RateDecision = Omit<TakeResult, 'state'> & { limit: number };
export type RateReply = { ok: true; decision: RateDecision } | { ok: false; error: Error };

export type RateLimiterMessage = { type: 'take'; bucket: string; policy: BucketPolicy; replyTo: Ref<RateReply> };

/**
 * Per-key token buckets. In the embedded mode the buckets are in memory and this actor's one-message-
 * at-a-time processing makes each take atomic; in a cluster the store is Redis and a Lua script does.
 */
export function spawnRateLimiter(parent: Ref<never>, store: BucketStore, log: Logger): Ref<RateLimiterMessage> {
  return spawn(
    parent,
    async (_state: undefined, message: RateLimiterMessage) => {
      try {
        const result = await store.take(message.bucket, message.policy);
        dispatch(message.replyTo, { ok: true, decision: { ...result, limit: message.policy.capacity } });
      } catch (error) {
        dispatch(message.replyTo, { ok: false, error: error as Error });
      }
      return undefined;
    },
    'rate-limiter',
    {
      onCrash: (message, error, ctx) => {
        log.error({ err: error, message: message?.type }, 'rate limiter failed on a message; resuming');
        return ctx.resume;
      },
    },
  );
}
