import { OverloadedError, QuotaExceededError } from '../errors.ts';
import type { ActiveCounts, ActiveJob } from './job.ts';
import type { JobStore } from './store.ts';


/**
 * Jobs waiting or running, counted in memory. In the embedded and single-node modes one JobManager makes
 * every change to jobs, so it can keep the admission counts itself instead of counting rows on every
 * submission (two PGlite queries per job). A cluster's API nodes cannot: managers change jobs too, so
 * they ask the database. Each job moves once: added → started → finished, and a repeated or late
 * message (a cancelled job's result) changes nothing.
 */
export class ActiveJobs {
  private readonly jobs = new Map<string, { owner: string | null; running: boolean }>();
  private waiting = 0;
  private readonly perOwner = new Map<string, number>();

  constructor(active: readonly ActiveJob[] = []) {
    for (const job of active) this.add(job.id, job.owner, job.status === 'running');
  }

  get queued(): number {
    return this.waiting;
  }

  get size(): number {
    return this.jobs.size;
  }

  /** A snapshot for `owners`, in the shape JobStore.activeCountsFor answers. */
  counts(owners: readonly string[]): ActiveCounts {
    const byOwner = new Map<string, number>();
    for (const owner of owners) {
      const n = this.perOwner.get(owner) ?? 0;
      if (n > 0) byOwner.set(owner, n);
    }
    return { queued: this.waiting, byOwner };
  }

  add(id: string, owner: string | null, running = false): void {
    if (this.jobs.has(id)) return;
    this.jobs.set(id, { owner, running });
    if (!running) this.waiting++;
    if (owner !== null) this.perOwner.set(owner, (this.perOwner.get(owner) ?? 0) + 1);
  }

  started(id: string): void {
    const job = this.jobs.get(id);
    if (!job || job.running) return;
    job.running = true;
    this.waiting--;
  }

  finished(id: string): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    if (!job.running) this.waiting--;
    if (job.owner !== null) {
      const n = (this.perOwner.get(job.owner) ?? 1) - 1;
      if (n > 0) this.perOwner.set(job.owner, n);
      else this.perOwner.delete(job.owner);
    }
  }

  /** Whether these counts equal what the database lists (the JobManager checks while idle). */
  matches(active: readonly ActiveJob[]): boolean {
    const fresh = new ActiveJobs(active);
    if (fresh.waiting !== this.waiting || fresh.jobs.size !== this.jobs.size) return false;
    for (const [owner, n] of fresh.perOwner) if (this.perOwner.get(owner) !== n) return false;
    return true;
  }
}

/** Admission limits: jobs one key may have waiting or running, and jobs waiting in all. */
export interface Quotas {
  keyMaxQueued: number;
  maxBacklog: number;
}

export type AdmissionDecision = { admitted: true } | { admitted: false; cause: 'backlog' | 'quota'; error: OverloadedError | QuotaExceededError };

/**
 * Decides a burst of submissions in order against `counts`; each admitted job counts against the next
 * (the counts are updated in place). The backlog bound comes first: it protects everyone.
 */
export function admitBurst(counts: ActiveCounts, owners: readonly (string | null)[], quotas: Quotas): AdmissionDecision[] {
  return owners.map((owner) => {
    const mine = owner === null ? 0 : (counts.byOwner.get(owner) ?? 0);
    if (counts.queued >= quotas.maxBacklog) {
      return { admitted: false, cause: 'backlog', error: new OverloadedError(`${counts.queued} jobs are waiting (MAX_BACKLOG ${quotas.maxBacklog}); try again shortly.`) };
    }
    if (owner !== null && mine >= quotas.keyMaxQueued) {
      return { admitted: false, cause: 'quota', error: new QuotaExceededError(`This key already has ${mine} jobs waiting or running (KEY_MAX_QUEUED_JOBS ${quotas.keyMaxQueued}); wait for some to finish.`) };
    }
    counts.queued++;
    if (owner !== null) counts.byOwner.set(owner, mine + 1);
    return { admitted: true };
  });
}

/** Where admission reads its counts, and hears of every job's moves. */
export interface AdmissionCounts {
  /**
   * Runs `admit` with the counts of `owners` and a store to write with, atomically: no other admission,
   * on this node or another, comes between the counting and the storing.
   */
  admit<T>(owners: readonly string[], admit: (counts: ActiveCounts, store: JobStore) => Promise<T>): Promise<T>;
  added(id: string, owner: string | null): void;
  started(id: string): void;
  finished(id: string): void;
  /** While nothing is changing jobs here: compare with the store and heal a drift. */
  audit(): Promise<void>;
}

/**
 * A cluster: other nodes change jobs too, so every burst counts in the shared database, under the
 * admission lock (per-key quotas and the backlog bound hold across API nodes).
 */
export class StoredAdmissionCounts implements AdmissionCounts {
  constructor(private readonly store: JobStore) {}
  admit<T>(owners: readonly string[], admit: (counts: ActiveCounts, store: JobStore) => Promise<T>): Promise<T> {
    return this.store.admitting(async (store) => admit(await store.activeCountsFor([...owners]), store));
  }
  added(): void {}
  started(): void {}
  finished(): void {}
  async audit(): Promise<void> {}
}

/**
 * One process owns its database (embedded and single-node modes) and makes every change to jobs: it
 * counts in memory instead of counting rows on every submission (two PGlite queries per job). Loaded
 * from the store at the first burst (after start-up recovery), audited while idle.
 */
export class LocalAdmissionCounts implements AdmissionCounts {
  private active: ActiveJobs | null = null;

  constructor(
    private readonly store: JobStore,
    private readonly onDrift: (counted: number, listed: number) => void,
  ) {}

  /** One process, one JobManager taking one burst at a time: the counts in memory are the truth. */
  async admit<T>(owners: readonly string[], admit: (counts: ActiveCounts, store: JobStore) => Promise<T>): Promise<T> {
    this.active ??= new ActiveJobs(await this.store.activeJobs());
    return admit(this.active.counts(owners), this.store);
  }

  added(id: string, owner: string | null): void {
    this.active?.add(id, owner);
  }

  started(id: string): void {
    this.active?.started(id);
  }

  finished(id: string): void {
    this.active?.finished(id);
  }

  async audit(): Promise<void> {
    if (!this.active) return;
    const listed = await this.store.activeJobs();
    if (this.active.matches(listed)) return;
    this.onDrift(this.active.size, listed.length);
    this.active = new ActiveJobs(listed);
  }
}
