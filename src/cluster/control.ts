import type { Redis } from 'ioredis';
import { PREFIX } from './redis.ts';

export const CONTROL_CHANNEL = `${PREFIX}control`;
/** Wanted workers per manager: the source of truth managers reconcile to; channel messages only nudge. */
export const DESIRED = `${PREFIX}workers:desired`;

/** The control plane's closed message set (Lambex's SPAWN/KILL, plus CANCEL of a running job). */
export type ControlMessage =
  | { type: 'SPAWN'; managerId: string }
  | { type: 'KILL'; managerId: string; workerId: string }
  | { type: 'CANCEL'; jobId: string };

/** Validates a message from the channel; anything malformed is null (logged and dropped by the caller). */
export function parseControlMessage(raw: string): ControlMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const m = value as Record<string, unknown>;
  const id = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 128;
  switch (m.type) {
    case 'SPAWN':
      return id(m.managerId) ? { type: 'SPAWN', managerId: m.managerId as string } : null;
    case 'KILL':
      return id(m.managerId) && id(m.workerId) ? { type: 'KILL', managerId: m.managerId as string, workerId: m.workerId as string } : null;
    case 'CANCEL':
      return id(m.jobId) ? { type: 'CANCEL', jobId: m.jobId as string } : null;
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
for _, v in ipairs(values) do total = total + tonumber(v) end
local delta = tonumber(ARGV[2])
if delta > 0 and total + delta > tonumber(ARGV[3]) then return -1 end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = current + delta
if wanted < 0 then wanted = 0 end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
return wanted
`;

export class ControlPlane {
  constructor(private readonly redis: Redis) {
    if (!(redis as unknown as Record<string, unknown>).braindrillScale) {
      redis.defineCommand('braindrillScale', { numberOfKeys: 1, lua: SCALE_LUA });
    }
  }

  async desired(managerId: string): Promise<number | null> {
    const value = await this.redis.hget(DESIRED, managerId);
    return value === null ? null : Number(value);
  }

  /** A manager's first start sets its default; a restart keeps what operators scaled it to. */
  async initDesired(managerId: string, count: number): Promise<number> {
    await this.redis.hsetnx(DESIRED, managerId, count);
    return (await this.desired(managerId)) ?? count;
  }

  async scale(managerId: string, delta: number, cap: number): Promise<number> {
    const scale = (this.redis as unknown as { braindrillScale: (key: string, id: string, delta: number, cap: number) => Promise<number> }).braindrillScale;
    return Number(await scale.call(this.redis, DESIRED, managerId, delta, cap));
  }

  async publish(message: ControlMessage): Promise<void> {
    await this.redis.publish(CONTROL_CHANNEL, JSON.stringify(message));
  }
}
