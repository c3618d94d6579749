import type { Redis } from 'ioredis';
import { jobIdFrom, memberIdFrom, type Rejected } from '../redis/bus-input.ts';
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
/** Members listed per kind at most: a set grown past it by someone else is read only this far. */
const MAX_MEMBERS = 10_000;

export class Membership {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly rejected: Rejected,
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
    const ids: string[] = [];
    const invalid: string[] = [];
    for (const id of await this.members(kind)) (memberIdFrom(id) === null ? invalid : ids).push(id);
    if (invalid.length > 0) {
      for (const id of invalid) this.rejected(`member-id:${kind}`, id);
      await this.redis.srem(this.keys.members(kind), ...invalid);
    }
    if (ids.length === 0) return [];
    const tx = this.redis.multi();
    for (const id of ids) tx.exists(this.keys.member(kind, id));
    const exists = ((await tx.exec()) ?? []).map(([, value]) => value === 1);
    const dead = ids.filter((_, i) => !exists[i]);
    if (dead.length > 0) await this.redis.srem(this.keys.members(kind), ...dead);
    return ids.filter((_, i) => exists[i]);
  }

  /** The set's members, MAX_MEMBERS at most (SSCAN: a huge set is never read whole). */
  private async members(kind: MemberKind): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.sscan(this.keys.members(kind), cursor, 'COUNT', 500);
      found.push(...batch);
      cursor = next;
    } while (cursor !== '0' && found.length < MAX_MEMBERS);
    return found.slice(0, MAX_MEMBERS);
  }

  async isAlive(kind: MemberKind, id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.member(kind, id))) === 1;
  }

  async workers(): Promise<WorkerInfo[]> {
    const ids = await this.live('worker');
    if (ids.length === 0) return [];
    const tx = this.redis.multi();
    for (const id of ids) tx.hgetall(this.keys.member('worker', id));
    const rows = ((await tx.exec()) ?? []).map(([, value]) => value as Record<string, string> | null);
    const workers: WorkerInfo[] = [];
    for (const [i, id] of ids.entries()) {
      const worker = workerFrom(id, rows[i] ?? {});
      if (worker) workers.push(worker);
      else this.rejected('worker-entry', rows[i]);
    }
    return workers;
  }
}

/** A worker's heartbeat hash, checked field by field; null when any field is not what managers write. */
function workerFrom(id: string, row: Record<string, string>): WorkerInfo | null {
  const managerId = memberIdFrom(row.managerId);
  const status = row.status === 'BUSY' || row.status === 'IDLE' ? row.status : null;
  const currentJobId = row.currentJobId === '' ? null : jobIdFrom(row.currentJobId);
  const startedAt = Number(row.startedAt);
  if (managerId === null || status === null || (row.currentJobId !== '' && currentJobId === null) || !Number.isSafeInteger(startedAt) || startedAt < 0) return null;
  return { id, managerId, status, currentJobId, startedAt };
}
