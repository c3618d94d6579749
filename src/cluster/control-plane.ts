import type { Redis } from 'ioredis';
import { MAX_VALUE_LENGTH, countFrom, memberIdFrom, type Rejected } from '../redis/bus-input.ts';
import type { RedisKeys } from '../redis/redis-keys.ts';

/** The control plane's closed message set (Lambex's SPAWN/KILL); job cancels travel on the job bus. */
export type ControlMessage = { type: 'SPAWN'; managerId: string } | { type: 'KILL'; managerId: string; workerId: string };

/** Validates a message from the channel; anything malformed or oversized is null (reported and dropped by the caller). */
export function parseControlMessage(raw: string): ControlMessage | null {
  if (raw.length > MAX_VALUE_LENGTH) return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const m = value as Record<string, unknown>;
  const id = (v: unknown) => memberIdFrom(v) !== null;
  switch (m.type) {
    case 'SPAWN':
      return id(m.managerId) ? { type: 'SPAWN', managerId: m.managerId as string } : null;
    case 'KILL':
      return id(m.managerId) && id(m.workerId) ? { type: 'KILL', managerId: m.managerId as string, workerId: m.workerId as string } : null;
    default:
      return null;
  }
}

/**
 * Adds `delta` wanted workers to one manager unless the cluster-wide total would pass `cap`; never below 0.
 * Returns the manager's new count, or -1 when the cap refused it.
 */
const SCALE_LUA = `
local total = 0
local values = redis.call('HVALS', KEYS[1])
-- A value that is not a count (written by someone else) counts as nothing.
for _, v in ipairs(values) do total = total + (tonumber(v) or 0) end
local delta = tonumber(ARGV[2])
if delta > 0 and total + delta > tonumber(ARGV[3]) then return -1 end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = current + delta
if wanted < 0 then wanted = 0 end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
return wanted
`;

type ScaleCommand = (key: string, managerId: string, delta: number, cap: number) => Promise<unknown>;

/**
 * Wanted workers per manager (a hash: the source of truth managers reconcile to) and the control
 * channel (SPAWN/KILL: nudges, so a manager that missed one catches up at its next reconcile).
 */
export class ControlPlane {
  private readonly scaleCommand: ScaleCommand;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** The cluster-wide cap: a wanted count above it is not a count this engine wrote. */
    private readonly maxWorkers: number,
    private readonly rejected: Rejected,
  ) {
    if (typeof (redis as unknown as Record<string, unknown>).braindrillScale !== 'function') {
      redis.defineCommand('braindrillScale', { numberOfKeys: 1, lua: SCALE_LUA });
    }
    this.scaleCommand = ((redis as unknown as Record<string, ScaleCommand>).braindrillScale as ScaleCommand).bind(redis);
  }

  get channel(): string {
    return this.keys.controlChannel;
  }

  /** The wanted count of a manager; null when there is none, or it is not a count within 0..MAX_WORKERS (reported). */
  async desired(managerId: string): Promise<number | null> {
    const value = await this.redis.hget(this.keys.desiredWorkers, managerId);
    if (value === null) return null;
    const count = countFrom(value, 0, this.maxWorkers);
    if (count === null) this.rejected('desired-workers', value);
    return count;
  }

  /**
   * A manager's first start sets its default; a restart keeps what operators scaled it to. Null when the
   * stored value is not a valid count: the manager then keeps its size.
   */
  async initDesired(managerId: string, count: number): Promise<number | null> {
    await this.redis.hsetnx(this.keys.desiredWorkers, managerId, count);
    return this.desired(managerId);
  }

  async scale(managerId: string, delta: number, cap: number): Promise<number> {
    return Number(await this.scaleCommand(this.keys.desiredWorkers, managerId, delta, cap));
  }

  async publish(message: ControlMessage): Promise<void> {
    await this.redis.publish(this.keys.controlChannel, JSON.stringify(message));
  }
}
