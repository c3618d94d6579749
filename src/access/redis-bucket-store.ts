import type { Redis } from 'ioredis';
import type { BucketStore } from './bucket-store.ts';
import type { BucketPolicy, TakeResult } from './token-bucket.ts';

/** The name the script is registered under on the ioredis client (`redis.braindrillTakeToken(...)`). */
export const TAKE_TOKEN_COMMAND = 'braindrillTakeToken';

/** A bucket key lives this long past the moment it would be full again, so idle buckets vanish. */
export const EXPIRY_MARGIN_MS = 1_000;

/**
 * `takeToken` (token-bucket.ts) as one atomic Lua script, one key (BullMQ would call it `takeToken-1`).
 * The arithmetic is the TypeScript one, operation for operation, on the same IEEE doubles. The clock is
 * the Redis server's (`TIME`), so every API node sees the same time.
 *
 * KEYS[1]  the bucket: a hash { tokens = "%.17g" double, updated = ms }
 * ARGV     capacity, windowMs, cost, expiry margin (ms)
 * Returns  { allowed (0|1), remaining, retryAfterSeconds, tokens ("%.17g" string), nowMs }
 *          Lua numbers become integer replies (floats would be truncated), so tokens travels as a string.
 */
export const takeToken1Lua = `
if redis.replicate_commands then redis.replicate_commands() end
local capacity = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local margin = tonumber(ARGV[4])
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local rate = capacity / windowMs

local stored = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(stored[1])
local updated = tonumber(stored[2])
local available
if tokens ~= nil and updated ~= nil then
  available = math.min(capacity, tokens + math.max(0, nowMs - updated) * rate)
else
  available = capacity
end

local allowed, left, remaining, retry
if available >= cost then
  allowed = 1
  left = available - cost
  remaining = math.floor(left)
  if left >= 1 then retry = 0 else retry = math.ceil((1 - left) / rate / 1000) end
else
  allowed = 0
  left = available
  remaining = 0
  retry = math.max(1, math.ceil((cost - available) / rate / 1000))
end

local text = string.format('%.17g', left)
redis.call('HSET', KEYS[1], 'tokens', text, 'updated', string.format('%d', nowMs))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((capacity - left) / rate) + margin))
return { allowed, remaining, retry, text, nowMs }
`;

type TakeTokenCommand = (key: string, capacity: number, windowMs: number, cost: number, marginMs: number) => Promise<unknown>;

export interface RedisBucketStoreOptions {
  /** Prepended to every bucket name (after the client's own `keyPrefix`, if any). Default `'braindrill:bucket:'`. */
  prefix?: string;
}

/**
 * Token buckets shared by every API node: one hash per bucket, changed only by one Lua script, so
 * concurrent takes from several nodes never overspend. The connection belongs to the caller: errors
 * from Redis propagate, and `close()` leaves the connection open.
 */
export class RedisBucketStore implements BucketStore {
  private readonly prefix: string;
  private readonly command: TakeTokenCommand;

  constructor(redis: Redis, options: RedisBucketStoreOptions = {}) {
    this.prefix = options.prefix ?? 'braindrill:bucket:';
    // Once per connection: ioredis sends EVALSHA and falls back to EVAL when the server answers NOSCRIPT.
    if (typeof (redis as unknown as Record<string, unknown>)[TAKE_TOKEN_COMMAND] !== 'function') {
      redis.defineCommand(TAKE_TOKEN_COMMAND, { numberOfKeys: 1, lua: takeToken1Lua });
    }
    const command = (redis as unknown as Record<string, TakeTokenCommand>)[TAKE_TOKEN_COMMAND] as TakeTokenCommand;
    this.command = command.bind(redis);
  }

  async take(bucket: string, policy: BucketPolicy, cost = 1): Promise<Omit<TakeResult, 'state'>> {
    const { state: _state, ...result } = await this.takeWithState(bucket, policy, cost);
    return result;
  }

  /**
   * `take`, plus the bucket as the script left it: `state.updatedAtMs` is the Redis clock reading the
   * script used, so `takeToken` fed that time reproduces the result exactly (tests rely on this).
   */
  async takeWithState(bucket: string, policy: BucketPolicy, cost = 1): Promise<TakeResult> {
    checkArguments(policy, cost);
    const reply = await this.command(this.prefix + bucket, policy.capacity, policy.windowMs, cost, EXPIRY_MARGIN_MS);
    return parseReply(reply);
  }

  async close(): Promise<void> {
    // The connection is the caller's.
  }
}

function checkArguments(policy: BucketPolicy, cost: number): void {
  if (!(Number.isFinite(policy.capacity) && policy.capacity > 0 && Number.isFinite(policy.windowMs) && policy.windowMs > 0)) {
    throw new RangeError(`braindrill: a bucket policy needs a finite capacity > 0 and windowMs > 0 (got ${policy.capacity}, ${policy.windowMs})`);
  }
  if (!(Number.isFinite(cost) && cost >= 0)) {
    throw new RangeError(`braindrill: a token cost must be a finite number >= 0 (got ${cost})`);
  }
}

function parseReply(reply: unknown): TakeResult {
  if (Array.isArray(reply) && reply.length === 5) {
    // Integers arrive as numbers, or as strings on a client with `stringNumbers: true`.
    const [allowed, remaining, retryAfterSeconds, tokens, nowMs] = (reply as unknown[]).map((value) =>
      typeof value === 'string' || typeof value === 'number' ? Number(value) : Number.NaN,
    );
    if ((allowed === 0 || allowed === 1) && [remaining, retryAfterSeconds, tokens, nowMs].every(Number.isFinite)) {
      return {
        allowed: allowed === 1,
        remaining: remaining as number,
        retryAfterSeconds: retryAfterSeconds as number,
        state: { tokens: tokens as number, updatedAtMs: nowMs as number },
      };
    }
  }
  throw new Error(`braindrill: unexpected reply from the ${TAKE_TOKEN_COMMAND} script: ${String(JSON.stringify(reply)).slice(0, 200)}`);
}
