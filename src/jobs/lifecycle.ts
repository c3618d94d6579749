import type { Language } from '../languages/language.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { resultWithoutRun, type ExecutionPlan, type ExecutionResult } from '../sandbox/execution.ts';
import { planExecution, type PlanOptions } from '../sandbox/plan.ts';
import { admitBurst, type AdmissionCounts, type AdmissionDecision, type Quotas } from './admission.ts';
import type { Delivery, JobBus } from './bus.ts';
import type { ActiveCounts, JobRecord, NewJob } from './job.ts';
import { jobOutcome } from './job-results.ts';
import { JobStore } from './store.ts';

export interface LifecycleOptions {
  store: JobStore;
  bus: JobBus;
  languages: LanguageRegistry;
  admission: AdmissionCounts;
  quotas: Quotas;
  plan: PlanOptions;
  metrics: Metrics;
  log: Logger;
}

/**
 * How a manager node runs a planned execution (its WorkerPool, within its budget). `onStart` is called
 * when a worker actually starts it, with the worker's id.
 */
export type RunPlan = (plan: ExecutionPlan, owner: string | null, onStart: (workerId: string) => void) => Promise<ExecutionResult>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Saving a result is retried this often before a node that is shutting down gives up (the job is then reclaimed). */
const SAVE_ATTEMPTS_WHILE_CLOSING = 10;

/**
 * One job's life, the same in every mode: submitted (admitted, stored, queued on the bus) → taken by a
 * manager node → running → finished (stored once, waiters told, the bus acknowledged) | cancelled |
 * failed. The database is the source of truth: a job is stored before it is queued, a result is applied
 * once, and what the bus loses, maintenance (maintenance.ts) finds again.
 */
export class JobLifecycle {
  /** Jobs delivered to this process and not finished: admission audits its counts only when there are none. */
  private readonly executing = new Set<string>();
  /** Of those, the ones a cancel notice has come for: not run, even if the record in hand says queued. */
  private readonly cancelled = new Set<string>();
  private closing = false;

  constructor(private readonly options: LifecycleOptions) {
    options.bus.onCancel((jobId) => {
      if (this.executing.has(jobId)) this.cancelled.add(jobId);
    });
  }

  get busy(): boolean {
    return this.executing.size > 0;
  }

  /**
   * Admits a burst with one count of the active jobs, stores the admitted ones with one INSERT, and queues
   * them. Answers per job, in order: the stored job, or why it was refused.
   */
  async submit(batch: readonly NewJob[]): Promise<(JobRecord | Error)[]> {
    // A job whose text cannot be stored is refused first: it takes no share of any quota.
    const unstorable = batch.map((job) => JobStore.unstorable(job));
    const storable = batch.filter((_, index) => unstorable[index] === null);
    const owners = [...new Set(storable.map((job) => job.owner).filter((owner): owner is string => owner !== null))];
    let admitted: (JobRecord | Error)[];
    try {
      admitted = await this.options.admission.admit(owners, (counts, store) => this.admit(storable, counts, store));
    } catch (error) {
      return batch.map((_, index) => unstorable[index] ?? (error as Error));
    }
    const answers = batch.map((_, index) => unstorable[index] ?? admitted.shift() ?? new Error('the job was not stored'));
    for (const answer of answers) if (!(answer instanceof Error)) await this.queue(answer);
    return answers;
  }

  /** Decides the burst against the counts and stores the admitted jobs with one INSERT; answers in order. */
  private async admit(jobs: NewJob[], counts: ActiveCounts, store: JobStore): Promise<(JobRecord | Error)[]> {
    const decisions: AdmissionDecision[] = admitBurst(counts, jobs.map((job) => job.owner), this.options.quotas);
    for (const decision of decisions) if (!decision.admitted) this.options.metrics.jobsRejected.labels(decision.cause).inc();
    const stored = await store.insertBatch(jobs.filter((_, index) => decisions[index]?.admitted));
    return decisions.map((decision) => (decision.admitted ? (stored.shift() ?? new Error('the job was not stored')) : decision.error));
  }

  /** Stored first, then queued: if queueing fails, maintenance finds the job in the database. */
  private async queue(job: JobRecord): Promise<void> {
    const { bus, admission, metrics, log } = this.options;
    metrics.jobsSubmitted.labels(job.language).inc();
    admission.added(job.id, job.owner);
    await bus.enqueue(job.id, job).catch((error: unknown) => log.warn({ err: error, job: job.id }, 'could not queue the job now; recovery will'));
  }

  /**
   * Runs one delivered job on this manager node and stores its result. A job that is no longer queued
   * (cancelled, finished, swept) is dropped. If the job cannot be read, its delivery is given up and
   * maintenance queues it again.
   */
  async execute(delivery: Delivery, nodeId: string, run: RunPlan): Promise<void> {
    const { bus } = this.options;
    this.executing.add(delivery.jobId);
    try {
      const job = await this.deliveredJob(delivery);
      if (job && job.status === 'queued' && !this.cancelled.has(job.id)) await this.run(job, nodeId, run);
      await bus.ack(delivery);
    } finally {
      this.executing.delete(delivery.jobId);
      this.cancelled.delete(delivery.jobId);
    }
  }

  /** The delivered job as it is now; undefined when it is gone, or unreadable (then recovery queues it again). */
  private async deliveredJob(delivery: Delivery): Promise<JobRecord | undefined> {
    try {
      return delivery.job ?? (await this.options.store.get(delivery.jobId));
    } catch (error) {
      this.options.log.warn({ err: error, job: delivery.jobId }, 'could not read a delivered job; it goes back through recovery');
      return undefined;
    }
  }

  private async run(job: JobRecord, nodeId: string, run: RunPlan): Promise<void> {
    const language = this.options.languages.find(job.language) ?? null;
    const result = language
      ? await run(planExecution(job.id, language, job, this.options.plan), job.owner, (workerId) => this.started(job.id, nodeId, workerId))
      : resultWithoutRun('internal', `language "${job.language}" is no longer configured`);
    await this.finish(job.id, language, result);
  }

  /** A worker started the job: the "running" note is written while the sandbox already works. */
  private started(jobId: string, nodeId: string, workerId: string): void {
    this.options.admission.started(jobId);
    this.options.store.markRunning(jobId, nodeId, workerId).catch((error: unknown) => {
      this.options.log.warn({ err: error, job: jobId }, 'could not mark the job running; the result will still be saved');
    });
  }

  /**
   * Saves a result once (retried while the database is down: the delivery is acknowledged only after)
   * and wakes the job's waiters, handing them the finished job where they are in this process.
   */
  private async finish(jobId: string, language: Language | null, result: ExecutionResult): Promise<void> {
    const { store, bus, admission, metrics, log } = this.options;
    let finished: JobRecord | null;
    for (let attempt = 0; ; attempt++) {
      try {
        finished = await store.complete(jobId, jobOutcome(result, language));
        break;
      } catch (error) {
        if (this.closing && attempt >= SAVE_ATTEMPTS_WHILE_CLOSING) throw error;
        log.warn({ err: error, job: jobId }, 'could not save a result; retrying');
        await sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
    // Only the delivery that applied the result counts it: a result delivered twice is counted once.
    if (finished) {
      metrics.requests.labels(finished.language, result.status).inc();
      log.info({ job: jobId, language: finished.language, status: result.status, reason: result.reason, durationMs: result.executionTimeMs }, 'job finished');
    }
    admission.finished(jobId);
    await bus.notifyDone(jobId, finished ?? undefined).catch(() => undefined);
  }

  /** A queued or running job becomes failed/cancelled; the manager running it is told to stop it. */
  async cancel(jobId: string, owner: string | null): Promise<{ found: boolean; cancelled: boolean }> {
    const { store, bus, admission } = this.options;
    const outcome = await store.cancel(jobId, owner);
    if (outcome.cancelled) {
      admission.finished(jobId);
      await bus.publishCancel(jobId);
      await bus.notifyDone(jobId);
    }
    return { found: outcome.found, cancelled: outcome.cancelled };
  }

  /** Shutting down: a result that cannot be saved is given up after a few tries (the job is reclaimed). */
  close(): void {
    this.closing = true;
  }
}
