/** An active job as the database lists it. */
export interface ActiveJob {
  id: string;
  owner: string | null;
  status: 'queued' | 'running';
}

/** What admission needs: jobs waiting in all, and jobs waiting or running per owner. */
export interface ActiveCounts {
  queued: number;
  byOwner: Map<string, number>;
}

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
