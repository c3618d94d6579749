/**
 * Token-bucket arithmetic, shared by the in-memory store and (as Lua) the Redis store: a bucket holds at
 * most `capacity` tokens and refills continuously at `capacity` per `windowMs`, so a full bucket lets a
 * burst of `capacity` through and then one request per `windowMs / capacity`.
 */
export interface BucketPolicy {
  capacity: number;
  windowMs: number;
}

export interface BucketState {
  tokens: number;
  updatedAtMs: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until the next token (0 when one is available now). */
  retryAfterSeconds: number;
  state: BucketState;
}

export function takeToken(state: BucketState | undefined, policy: BucketPolicy, nowMs: number, cost = 1): TakeResult {
  const rate = policy.capacity / policy.windowMs;
  const elapsed = state ? Math.max(0, nowMs - state.updatedAtMs) : 0;
  const available = state ? Math.min(policy.capacity, state.tokens + elapsed * rate) : policy.capacity;
  if (available >= cost) {
    const tokens = available - cost;
    const retryAfterSeconds = tokens >= 1 ? 0 : Math.ceil((1 - tokens) / rate / 1000);
    return { allowed: true, remaining: Math.floor(tokens), retryAfterSeconds, state: { tokens, updatedAtMs: nowMs } };
  }
  return {
    allowed: false,
    remaining: 0,
    retryAfterSeconds: Math.max(1, Math.ceil((cost - available) / rate / 1000)),
    state: { tokens: available, updatedAtMs: nowMs },
  };
}
