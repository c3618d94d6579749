import { OverloadedError, QuotaExceededError } from '../errors.ts';
import type { JobStore } from '../jobs/store.ts';
import type { JobRecord, NewJob } from '../jobs/job.ts';
import type { Completions } from '../jobs/completions.ts';
import { ActiveJobs, type ActiveCounts } from '../jobs/active-jobs.ts';
import { recordResult } from '../jobs/record.ts';
import type { Language } from '../languages/language.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ExecutionResult } from '../sandbox/execution.ts';
import { planExecution, type PlanOptions } from '../sandbox/plan.ts';
import { internalFailure, type ExecutionReply, type ExecutionStarted } from './worker.ts';
import type { PoolMessage } from './worker-pool.ts';
import type { ControlPlane } from '../cluster/control.ts';
import type { JobQueue } from '../cluster/queue.ts';
import { dispatch, spawn, type Ref } from './system.ts';

export type SubmitReply = { ok: true; job: JobRecord } | { ok: false; error: Error };
export type CancelReply = { ok: true; found: boolean; cancelled: boolean } | { ok: false; error: Error };

export type JobManagerMessage =
  | { type: 'submit'; job: NewJob; replyTo: Ref<SubmitReply> }
  | { type: 'flush' }
  | { type: 'cancel'; jobId: string; owner: string | null; replyTo: Ref<CancelReply> }
  | { type: 'recover' }
  | { type: 'sweep' }
  | ExecutionStarted
  | ExecutionReply;

/**
 * Where queued jobs go: the local WorkerPool (embedded and single-node modes), or the Redis stream that
 * manager nodes read (cluster), with the control channel for cancels and a lock for cluster-wide chores.
 */
export type Transport =
  | { kind: 'local'; pool: Ref<PoolMessage> }
  | { kind: 'redis'; queue: JobQueue; control: ControlPlane; lock(name: string, ttlMs: number): Promise<boolean> };

export interface JobManagerOptions {
  store: JobStore;
  transport: Transport;
  completions: Completions;
  languages: LanguageRegistry;
  plan: PlanOptions;
  nodeId: string;
  ttlSeconds: number;
  /** Runs a job may start before it is failed instead of re-run (a job that kills its node). */
  maxAttempts: number;
  /** Admission: jobs one key may have waiting or running, and jobs waiting in all. */
  quotas: { keyMaxQueued: number; maxBacklog: number };
  metrics: Metrics;
  log: Logger;
}

type Submit = Extract<JobManagerMessage, { type: 'submit' }>;
/** Submissions written per statement when they arrive in a burst. */
const BATCH = 500;

interface State {
  /** Submissions waiting for the next flush: a burst becomes one admission query and one INSERT. */
  submits: Submit[];
  flushScheduled: boolean;
  /** Jobs handed to the pool whose result has not come back, with their language (null: no longer configured). */
  inFlight: Map<string, Language | null>;
  /** Results not yet persisted (database down): retried on every recover tick, never dropped. */
  unsaved: Map<string, ExecutionResult>;
  /**
   * Admission counts kept in memory (local transport: this actor makes every change to jobs), loaded
   * once the start-up recovery has run; null until then, and always in a cluster: ask the database.
   */
  active: ActiveJobs | null;
  /** The start-up recovery (jobs left running by a dead process) has run; retried until it has. */
  recovered: boolean;
}

/**
 * Owns every job's lifecycle, queued → running → completed | failed | timedout. The database is the
 * source of truth: a job is written before it is queued, results are applied once, and recovery
 * re-queues what the database says is waiting but nothing is running.
 */
export function spawnJobManager(parent: Ref<never>, options: JobManagerOptions): Ref<JobManagerMessage> {
  const { store, transport, completions, languages, log, metrics } = options;

  function enqueue(self: Ref<JobManagerMessage>, state: State, job: JobRecord): void {
    if (state.inFlight.has(job.id)) return;
    const language = languages.find(job.language);
    if (!language) {
      const result = internalFailure(new Error(`language "${job.language}" is no longer configured`));
      dispatch(self, { type: 'result', executionId: job.id, result });
      state.inFlight.set(job.id, null);
      return;
    }
    if (transport.kind !== 'local') return;
    const plan = planExecution(job.id, language, { files: job.files, stdin: job.stdin, args: job.args }, options.plan);
    state.inFlight.set(job.id, language);
    dispatch(transport.pool, { type: 'submit', plan, owner: job.owner, replyTo: self, onStart: self });
  }

  /** Cluster recovery: queued jobs the stream lost (Redis restarted empty) go back in. One node does it. */
  async function recoverFromDatabase(): Promise<void> {
    if (transport.kind !== 'redis' || !(await transport.lock('recover', 8000))) return;
    const queued = await store.queuedIds({ olderThanMs: 5000, limit: 1000 });
    const present = await transport.queue.enqueued(queued);
    const lost = queued.filter((id) => !present.has(id));
    for (const id of lost) await transport.queue.enqueue(id);
    if (lost.length > 0) {
      metrics.jobsRecovered.labels('requeued').inc(lost.length);
      log.warn({ count: lost.length }, 're-enqueued queued jobs missing from the stream');
    }
  }

  /** Saves a result once and wakes its waiters, handing them the finished job so they need not read it. */
  async function persistResult(state: State, jobId: string, result: ExecutionResult): Promise<void> {
    const language = state.inFlight.get(jobId) ?? (await languageOf(jobId));
    const finished = await recordResult({ store, metrics, log }, jobId, language, result);
    state.unsaved.delete(jobId);
    state.inFlight.delete(jobId);
    state.active?.finished(jobId);
    await completions.notify(jobId, finished ?? undefined);
  }

  async function languageOf(jobId: string): Promise<Language | null> {
    const job = await store.get(jobId);
    return (job && languages.find(job.language)) ?? null;
  }

  /** Quotas first (counted once for the whole burst), then one INSERT, then the queue. */
  async function admitAndStore(self: Ref<JobManagerMessage>, state: State, batch: Submit[]): Promise<void> {
    let counts: ActiveCounts;
    try {
      const owners = [...new Set(batch.map((s) => s.job.owner).filter((o): o is string => o !== null))];
      counts = state.active ? state.active.counts(owners) : await store.activeCountsFor(owners);
    } catch (error) {
      for (const submit of batch) dispatch(submit.replyTo, { ok: false, error: error as Error });
      return;
    }
    const admitted: Submit[] = [];
    for (const submit of batch) {
      const owner = submit.job.owner;
      const mine = owner === null ? 0 : (counts.byOwner.get(owner) ?? 0);
      if (counts.queued >= options.quotas.maxBacklog) {
        metrics.jobsRejected.labels('backlog').inc();
        dispatch(submit.replyTo, { ok: false, error: new OverloadedError(`${counts.queued} jobs are waiting (MAX_BACKLOG ${options.quotas.maxBacklog}); try again shortly.`) });
      } else if (owner !== null && mine >= options.quotas.keyMaxQueued) {
        metrics.jobsRejected.labels('quota').inc();
        dispatch(submit.replyTo, { ok: false, error: new QuotaExceededError(`This key already has ${mine} jobs waiting or running (KEY_MAX_QUEUED_JOBS ${options.quotas.keyMaxQueued}); wait for some to finish.`) });
      } else {
        counts.queued++;
        if (owner !== null) counts.byOwner.set(owner, mine + 1);
        admitted.push(submit);
      }
    }
    let jobs: (JobRecord | Error)[];
    try {
      jobs = await store.insertBatch(admitted.map((s) => s.job));
    } catch {
      // One bad row fails the statement: write them one by one to give each its own answer.
      jobs = await Promise.all(admitted.map((s) => store.insert(s.job).catch((e: unknown) => e as Error)));
    }
    for (const [index, submit] of admitted.entries()) {
      const job = jobs[index]!;
      if (job instanceof Error) {
        dispatch(submit.replyTo, { ok: false, error: job });
        continue;
      }
      metrics.jobsSubmitted.labels(job.language).inc();
      state.active?.add(job.id, job.owner);
      // Written first, then queued: if queueing fails, recovery finds the job in the database.
      if (transport.kind === 'redis') await transport.queue.enqueue(job.id).catch((error: unknown) => log.warn({ err: error, job: job.id }, 'could not queue the job now; recovery will'));
      else enqueue(self, state, job);
      dispatch(submit.replyTo, { ok: true, job });
    }
  }

  return spawn(
    parent,
    async (state: State, message: JobManagerMessage, ctx): Promise<State> => {
      switch (message.type) {
        case 'submit': {
          state.submits.push(message);
          if (!state.flushScheduled) {
            state.flushScheduled = true;
            setImmediate(() => dispatch(ctx.self, { type: 'flush' }));
          }
          return state;
        }
        case 'flush': {
          const batch = state.submits.splice(0, BATCH);
          state.flushScheduled = state.submits.length > 0;
          if (state.flushScheduled) setImmediate(() => dispatch(ctx.self, { type: 'flush' }));
          await admitAndStore(ctx.self, state, batch);
          return state;
        }
        case 'started': {
          state.active?.started(message.executionId);
          await store.markRunning(message.executionId, options.nodeId, message.worker).catch((error: unknown) => {
            log.warn({ err: error, job: message.executionId }, 'could not mark the job running; the result will still be saved');
          });
          return state;
        }
        case 'result': {
          try {
            await persistResult(state, message.executionId, message.result);
          } catch (error) {
            log.error({ err: error, job: message.executionId }, 'could not save a result; kept in memory and retried');
            state.unsaved.set(message.executionId, message.result);
          }
          return state;
        }
        case 'cancel': {
          try {
            const outcome = await store.cancel(message.jobId, message.owner);
            if (outcome.cancelled) {
              state.active?.finished(message.jobId);
              if (transport.kind === 'local') dispatch(transport.pool, { type: 'cancel', executionId: message.jobId });
              else await transport.control.publish({ type: 'CANCEL', jobId: message.jobId });
              await completions.notify(message.jobId);
            }
            dispatch(message.replyTo, { ok: true, found: outcome.found, cancelled: outcome.cancelled });
          } catch (error) {
            dispatch(message.replyTo, { ok: false, error: error as Error });
          }
          return state;
        }
        case 'recover': {
          try {
            for (const [jobId, result] of [...state.unsaved]) await persistResult(state, jobId, result);
            if (transport.kind === 'redis') {
              await recoverFromDatabase();
              return state;
            }
            if (!state.recovered) {
              // One process owns this database in the embedded and single-node modes: every job still
              // marked running was running in a process that died. (Retried on later ticks if the
              // database was down at start-up.)
              const { requeued, failed } = await store.requeueRunning(null, options.maxAttempts);
              metrics.jobsRecovered.labels('requeued').inc(requeued.length);
              metrics.jobsRecovered.labels('failed').inc(failed.length);
              if (requeued.length + failed.length > 0) log.warn({ requeued: requeued.length, failed: failed.length }, 'recovered jobs of a previous run');
              for (const jobId of failed) await completions.notify(jobId);
              state.active = new ActiveJobs(await store.activeJobs());
              state.recovered = true;
            } else if (state.active && state.inFlight.size === 0 && state.submits.length === 0) {
              // Idle: the counts must equal the database's. A difference is a bug; say so and heal.
              const listed = await store.activeJobs();
              if (!state.active.matches(listed)) {
                log.warn({ counted: state.active.size, listed: listed.length }, 'admission counts had drifted from the database; reloaded');
                state.active = new ActiveJobs(listed);
              }
            }
            for (const jobId of await store.queuedIds({ limit: 1000 })) {
              if (state.inFlight.has(jobId)) continue;
              const job = await store.get(jobId);
              if (job?.status === 'queued') enqueue(ctx.self, state, job);
            }
          } catch (error) {
            log.warn({ err: error }, 'job recovery failed; retrying on the next tick');
          }
          return state;
        }
        case 'sweep': {
          try {
            if (transport.kind === 'redis' && !(await transport.lock('sweep', 30_000))) return state;
            const deleted = await store.sweepExpired(options.ttlSeconds);
            if (deleted > 0) log.info({ deleted }, 'expired jobs deleted');
          } catch (error) {
            log.warn({ err: error }, 'job TTL sweep failed; retrying on the next tick');
          }
          return state;
        }
      }
    },
    'job-manager',
    {
      initialStateFunc: (): State => ({ submits: [], flushScheduled: false, inFlight: new Map(), unsaved: new Map(), active: null, recovered: false }),
      onCrash: (message, error, ctx) => {
        log.error({ err: error, message: message?.type }, 'job manager failed on a message; resuming');
        return ctx.resume;
      },
    },
  );
}
