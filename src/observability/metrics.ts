import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

type Read<T> = () => Promise<T>;
type CountsByLanguage = Record<string, number>;

/**
 * Replaces a per-language gauge's values with a fresh read, every known language included (at 0); a
 * failed read (database down; /ready says why) keeps the last ones.
 */
async function collectLabelled(gauge: Gauge<'language'>, read: Read<CountsByLanguage> | undefined, languages: readonly string[]): Promise<void> {
  if (!read) return;
  let counts: CountsByLanguage;
  try {
    counts = await read();
  } catch {
    return;
  }
  gauge.reset();
  for (const language of languages) gauge.labels(language).set(0);
  for (const [language, count] of Object.entries(counts)) gauge.labels(language).set(count);
}

async function collectScalar(gauge: Gauge, read: Read<number> | undefined): Promise<void> {
  if (read) gauge.set(await read());
}

/**
 * Every metric braindrill exports, registered once per process. Names and labels are braindrill's
 * API contract; Node.js process metrics (memory, GC, event-loop lag) replace its JVM metrics.
 */
export class Metrics {
  readonly registry = new Registry();

  /** Readers installed by observeCluster / observeQueuedJobs, called at scrape time; unset, a gauge shows what this node set. */
  private readonly scrape: { poolSize?: Read<number>; queueDepth?: Read<CountsByLanguage>; queuedJobs?: Read<CountsByLanguage> } = {};
  /** Configured language ids: per-language series exist from the start, at 0 (see knowLanguages). */
  private languages: readonly string[] = [];

  readonly requests = new Counter({
    name: 'braindrill_requests_total',
    help: 'Execution requests by language and outcome status',
    labelNames: ['language', 'status'] as const,
    registers: [this.registry],
  });

  readonly executionDuration = new Histogram({
    name: 'braindrill_execution_duration_seconds',
    help: 'Time from container start to result, by language',
    labelNames: ['language'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly executions = new Counter({
    name: 'braindrill_executions_total',
    help: 'Finished executions by language, status and reason (timeouts, OOM kills, output truncations...)',
    labelNames: ['language', 'status', 'reason'] as const,
    registers: [this.registry],
  });

  readonly activeExecutions = new Gauge({
    name: 'braindrill_active_executions',
    help: 'Executions running on this node',
    registers: [this.registry],
  });

  readonly containerStart = new Histogram({
    name: 'braindrill_container_start_seconds',
    help: 'Time to create, attach and start a sandbox container',
    labelNames: ['language'] as const,
    buckets: [0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2],
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'braindrill_auth_failures_total',
    help: 'Requests refused for a missing or unknown API key',
    registers: [this.registry],
  });

  readonly rateLimitHits = new Counter({
    name: 'braindrill_rate_limit_hits_total',
    help: 'Requests refused by the per-key rate limit',
    registers: [this.registry],
  });

  readonly validationErrors = new Counter({
    name: 'braindrill_validation_errors_total',
    help: 'Submissions refused by input validation, by rule',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });

  readonly workerPoolSize: Gauge = new Gauge({
    name: 'braindrill_worker_pool_size',
    help: 'Workers able to run executions',
    registers: [this.registry],
    collect: () => collectScalar(this.workerPoolSize, this.scrape.poolSize),
  });

  readonly queueDepth: Gauge<'language'> = new Gauge({
    name: 'braindrill_queue_depth',
    help: 'Executions waiting for a worker, by language',
    labelNames: ['language'] as const,
    registers: [this.registry],
    collect: () => collectLabelled(this.queueDepth, this.scrape.queueDepth, this.languages),
  });

  readonly queuedJobs: Gauge<'language'> = new Gauge({
    name: 'braindrill_queued_jobs',
    help: 'Jobs in the queued state, by language (read from the shared database at scrape time)',
    labelNames: ['language'] as const,
    registers: [this.registry],
    collect: () => collectLabelled(this.queuedJobs, this.scrape.queuedJobs, this.languages),
  });

  /**
   * On an API node of a cluster, pool size and queue depth are the cluster's (live workers in Redis,
   * queued jobs in the database), read when Prometheus scrapes, not this node's empty local view.
   */
  observeCluster(readWorkers: Read<number>, readQueued: Read<CountsByLanguage>): void {
    this.scrape.poolSize = () => readWorkers().catch(() => 0);
    this.scrape.queueDepth = readQueued;
  }

  /** Reads cluster-wide values (from the database) when Prometheus scrapes, not from one node's view. */
  observeQueuedJobs(read: Read<CountsByLanguage>): void {
    this.scrape.queuedJobs = read;
  }

  readonly jobsSubmitted = new Counter({
    name: 'braindrill_jobs_submitted_total',
    help: 'Jobs submitted, by language',
    labelNames: ['language'] as const,
    registers: [this.registry],
  });

  readonly jobsRejected = new Counter({
    name: 'braindrill_jobs_rejected_total',
    help: 'Submissions refused before queueing, by cause (quota, backlog)',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });

  readonly jobsRecovered = new Counter({
    name: 'braindrill_jobs_recovered_total',
    help: 'Jobs found running on a node that died: re-queued, or failed after too many attempts',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly busRejected = new Counter({
    name: 'braindrill_bus_rejected_total',
    help: 'Values read from Redis that were not what the engine writes (ignored), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly sandboxFailures = new Counter({
    name: 'braindrill_sandbox_failures_total',
    help: 'Executions that failed closed because a hardening step could not be applied (the program did not run), by step',
    labelNames: ['step'] as const,
    registers: [this.registry],
  });

  readonly containersReaped = new Counter({
    name: 'braindrill_containers_reaped_total',
    help: 'Leftover sandbox containers of this node removed by the reaper',
    registers: [this.registry],
  });

  /**
   * Starts every per-language series at 0, so a scrape shows each language from the start (a rate over
   * a series that appears only with its first event loses that event) and alerts can tell 0 from absent.
   */
  knowLanguages(ids: readonly string[]): void {
    this.languages = ids;
    for (const language of ids) {
      this.queueDepth.labels(language).set(0);
      this.queuedJobs.labels(language).set(0);
      this.jobsSubmitted.labels(language).inc(0);
      for (const status of ['completed', 'failed', 'timedout']) this.requests.labels(language, status).inc(0);
    }
  }

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
    }
  }
}
