import type { Redis } from 'ioredis';
import type { MemberKind, RedisKeys } from '../redis/redis-keys.ts';

/** Heartbeats every 3 s; a member whose key is not refreshed for 8 s (two missed beats) is gone. */
export const HEARTBEAT_MS = 3000;
const MEMBER_TTL_SECONDS = 8;


export type WorkerStatus = 'IDLE' | 'BUSY';

export interface WorkerInfo {
  id: string;
  managerId: string;
  status: WorkerStatus;
  currentJobId: string | null;
  /** When this worker started (ms since the epoch), for `uptime`. */
  startedAt: number;
}

/**
 * Cluster membership as expiring keys (`manager:{id}`, `worker:{uuid}`, `api:{id}`) plus one set per kind,
 * so listing never needs KEYS. A set member whose key expired is pruned when it is read.
 */
export class Membership {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async heartbeat(kind: 'api' | 'manager', id: string, info: Record<string, string | number>): Promise<void> {
    const key = this.keys.member(kind, id);
    await this.redis
      .multi()
      .hset(key, info)
      .expire(key, MEMBER_TTL_SECONDS)
      .sadd(this.keys.members(kind), id)
      .exec();
  }

  async putWorkers(workers: WorkerInfo[]): Promise<void> {
    if (workers.length === 0) return;
    const tx = this.redis.multi();
    for (const w of workers) {
      const key = this.keys.member('worker', w.id);
      tx.hset(key, { managerId: w.managerId, status: w.status, currentJobId: w.currentJobId ?? '', startedAt: w.startedAt })
        .expire(key, MEMBER_TTL_SECONDS)
        .sadd(this.keys.members('worker'), w.id);
    }
    await tx.exec();
  }

  async remove(kind: MemberKind, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const tx = this.redis.multi();
    for (const id of ids) tx.del(this.keys.member(kind, id)).srem(this.keys.members(kind), id);
    await tx.exec();
  }

  /** Live ids of a kind; expired ones are pruned from the set. */
  async live(kind: MemberKind): Promise<string[]> {
    const ids = await this.redis.smembers(this.keys.members(kind));
    if (ids.length === 0) return [];
    const tx = this.redis.multi();
    for (const id of ids) tx.exists(this.keys.member(kind, id));
    const exists = ((await tx.exec()) ?? []).map(([, value]) => value === 1);
    const dead = ids.filter((_, i) => !exists[i]);
    if (dead.length > 0) await this.redis.srem(this.keys.members(kind), ...dead);
    return ids.filter((_, i) => exists[i]);
  }

  async isAlive(kind: MemberKind, id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.member(kind, id))) === 1;
  }

  async workers(): Promise<WorkerInfo[]> {
    const ids = await this.live('worker');
    if (ids.length === 0) return [];
    const tx = this.redis.multi();
    for (const id of ids) tx.hgetall(this.keys.member('worker', id));
    const rows = ((await tx.exec()) ?? []).map(([, value]) => value as Record<string, string>);
    return ids
      .map((id, i) => ({ id, row: rows[i] ?? {} }))
      .filter(({ row }) => row.managerId)
      .map(({ id, row }) => ({
        id,
        managerId: row.managerId!,
        status: row.status === 'BUSY' ? 'BUSY' : 'IDLE',
        currentJobId: row.currentJobId ? row.currentJobId : null,
        startedAt: Number(row.startedAt) || Date.now(),
      }));
  }
}
