import type { Redis } from 'ioredis';
import { PREFIX } from './redis.ts';

/** Heartbeats every 3 s; a member whose key is not refreshed for 8 s (two missed beats) is gone. */
export const HEARTBEAT_MS = 3000;
export const MEMBER_TTL_SECONDS = 8;

const SETS = { api: `${PREFIX}members:api`, manager: `${PREFIX}members:managers`, worker: `${PREFIX}members:workers` } as const;
export const memberKey = (kind: 'api' | 'manager' | 'worker', id: string) => `${kind}:${id}`;

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
  constructor(private readonly redis: Redis) {}

  async heartbeat(kind: 'api' | 'manager', id: string, info: Record<string, string | number>): Promise<void> {
    const key = memberKey(kind, id);
    await this.redis
      .multi()
      .hset(key, info)
      .expire(key, MEMBER_TTL_SECONDS)
      .sadd(SETS[kind], id)
      .exec();
  }

  async putWorkers(workers: WorkerInfo[]): Promise<void> {
    if (workers.length === 0) return;
    const tx = this.redis.multi();
    for (const w of workers) {
      const key = memberKey('worker', w.id);
      tx.hset(key, { managerId: w.managerId, status: w.status, currentJobId: w.currentJobId ?? '', startedAt: w.startedAt })
        .expire(key, MEMBER_TTL_SECONDS)
        .sadd(SETS.worker, w.id);
    }
    await tx.exec();
  }

  async remove(kind: 'api' | 'manager' | 'worker', ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const tx = this.redis.multi();
    for (const id of ids) tx.del(memberKey(kind, id)).srem(SETS[kind], id);
    await tx.exec();
  }

  /** Live ids of a kind; expired ones are pruned from the set. */
  async live(kind: 'api' | 'manager' | 'worker'): Promise<string[]> {
    const ids = await this.redis.smembers(SETS[kind]);
    if (ids.length === 0) return [];
    const tx = this.redis.multi();
    for (const id of ids) tx.exists(memberKey(kind, id));
    const exists = ((await tx.exec()) ?? []).map(([, value]) => value === 1);
    const dead = ids.filter((_, i) => !exists[i]);
    if (dead.length > 0) await this.redis.srem(SETS[kind], ...dead);
    return ids.filter((_, i) => exists[i]);
  }

  async isAlive(kind: 'api' | 'manager' | 'worker', id: string): Promise<boolean> {
    return (await this.redis.exists(memberKey(kind, id))) === 1;
  }

  async workers(): Promise<WorkerInfo[]> {
    const ids = await this.live('worker');
    if (ids.length === 0) return [];
    const tx = this.redis.multi();
    for (const id of ids) tx.hgetall(memberKey('worker', id));
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
