import type { Engine } from './engine.ts';
import { sleep } from './exec.ts';
import type { Program } from './programs.ts';
import { emptySeries, recordFailure, throughput, type Series, type Throughput } from './stats.ts';

/** Longest a single synchronous request may take before it counts as failed. */
const REQUEST_TIMEOUT_MS = 60_000;
/** Burst throughput runs to the last `completed_at`, so polling only has to notice the end; polling faster loads the engine it measures. */
const POLL_INTERVAL_MS = 500;
const PAGE_SIZE = 100;
const FINAL = new Set(['completed', 'failed', 'timedout']);

/** One `POST /lang/:language` (text/plain), checked: status 200, `X-Status: completed`, exact stdout. */
export async function runSync(engine: Engine, program: Program): Promise<number> {
  const started = performance.now();
  const response = await engine.request(`/lang/${program.language}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: program.code,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = await response.text();
  const elapsed = performance.now() - started;
  const status = response.headers.get('x-status');
  if (response.status !== 200 || status !== 'completed' || body !== program.stdout) {
    throw new Error(`HTTP ${response.status} ${status ?? ''} ${response.headers.get('x-reason') ?? ''}: ${body.slice(0, 200)}`);
  }
  return elapsed;
}

/** `count` requests one after the other, stopping early past `budgetMs`. */
export async function sequential(engine: Engine, program: Program, count: number, budgetMs: number): Promise<Series> {
  const series = emptySeries();
  const deadline = performance.now() + budgetMs;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    await runSync(engine, program).then(
      (latency) => series.latenciesMs.push(latency),
      (error: unknown) => recordFailure(series, error),
    );
  }
  return series;
}

export async function warmUp(engine: Engine, program: Program, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await runSync(engine, program).catch(() => undefined);
}

export interface OpenLoopResult extends Series {
  sent: number;
  /** Successful completions per second, from the first send to the last completion. */
  achievedRate: number;
}

/** Fires `rate` requests a second for `seconds` on a fixed schedule, whether or not earlier ones finished. */
export async function openLoop(engine: Engine, program: Program, rate: number, seconds: number): Promise<OpenLoopResult> {
  const series = emptySeries();
  const count = Math.round(rate * seconds);
  const intervalMs = 1000 / rate;
  const start = performance.now();
  let lastCompletion = start;
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(
      runSync(engine, program).then(
        (latency) => {
          series.latenciesMs.push(latency);
          lastCompletion = performance.now();
        },
        (error: unknown) => recordFailure(series, error),
      ),
    );
  }
  await Promise.all(inFlight);
  const elapsedS = (lastCompletion - start) / 1000;
  return { ...series, sent: count, achievedRate: elapsedS > 0 ? series.latenciesMs.length / elapsedS : Number.NaN };
}

interface Submitted {
  ids: string[];
  rejected: number;
  firstError: string | null;
}

async function submitAll(engine: Engine, program: Program, count: number): Promise<Submitted> {
  const outcome: Submitted = { ids: [], rejected: 0, firstError: null };
  const submit = async () => {
    const response = await engine.request('/jobs', { method: 'POST', json: { language: program.language, code: program.code }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await response.json()) as { job_id?: string; error?: { code: string } };
    if (response.status !== 202 || !body.job_id) throw new Error(`POST /jobs: HTTP ${response.status} ${body.error?.code ?? ''}`);
    outcome.ids.push(body.job_id);
  };
  const failed = (error: unknown) => {
    outcome.rejected++;
    outcome.firstError ??= String(error);
  };
  await Promise.all(Array.from({ length: count }, () => submit().catch(failed)));
  return outcome;
}

interface JobSummary {
  job_id: string;
  status: string;
  reason: string | null;
  completed_at: string | null;
}

/** Polls `GET /jobs?limit=100` pages (newest first) until every id is final; returns the final summaries. */
async function pollUntilFinal(engine: Engine, ids: readonly string[], budgetMs: number): Promise<Map<string, JobSummary>> {
  const pending = new Set(ids);
  const finished = new Map<string, JobSummary>();
  const deadline = performance.now() + budgetMs;
  while (pending.size > 0 && performance.now() < deadline) {
    for (let offset = 0; offset < ids.length + PAGE_SIZE && pending.size > 0; offset += PAGE_SIZE) {
      const response = await engine.request(`/jobs?limit=${PAGE_SIZE}&offset=${offset}`);
      if (!response.ok) throw new Error(`GET /jobs: HTTP ${response.status}`);
      const page = (await response.json()) as { jobs: JobSummary[] };
      for (const job of page.jobs) {
        if (pending.has(job.job_id) && FINAL.has(job.status)) {
          pending.delete(job.job_id);
          finished.set(job.job_id, job);
        }
      }
      if (page.jobs.length < PAGE_SIZE) break;
    }
    if (pending.size > 0) await sleep(POLL_INTERVAL_MS);
  }
  return finished;
}

/**
 * Submits `count` jobs at once through `POST /jobs` and waits for all of them: jobs/s from the first
 * submit to the last `completed_at`. Rejected submissions, unfinished and non-completed jobs are failures.
 */
export async function burst(engine: Engine, program: Program, count: number, budgetMs: number): Promise<Throughput> {
  const firstSubmit = Date.now();
  const submitted = await submitAll(engine, program, count);
  const finished = await pollUntilFinal(engine, submitted.ids, budgetMs);
  let lastCompletion = firstSubmit;
  let failures = submitted.rejected + (submitted.ids.length - finished.size);
  let firstError = submitted.firstError ?? (finished.size < submitted.ids.length ? `${submitted.ids.length - finished.size} jobs unfinished after ${budgetMs / 1000} s` : null);
  for (const job of finished.values()) {
    if (job.completed_at) lastCompletion = Math.max(lastCompletion, Date.parse(job.completed_at));
    if (job.status !== 'completed') {
      failures++;
      firstError ??= `job ${job.status} (${job.reason ?? 'no reason'})`;
    }
  }
  return throughput(count, failures, (lastCompletion - firstSubmit) / 1000, firstError);
}

export interface RssProbe {
  idleMb: number;
  peakMb: number;
  deltaMb: number;
  outcome: string;
}

/** Samples the engine's RSS every 50 ms while one job floods stdout; idle is read just before. */
export async function rssDuringFlood(engine: Engine, program: Program): Promise<RssProbe> {
  const idleMb = engine.rssMb();
  let peakMb = idleMb;
  const sampler = setInterval(() => (peakMb = Math.max(peakMb, engine.rssMb())), 50);
  try {
    const response = await engine.request(`/lang/${program.language}`, {
      method: 'POST',
      json: { code: program.code },
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const result = (await response.json()) as { status?: string; reason?: string | null; stdout?: string; truncated?: boolean };
    await sleep(200);
    peakMb = Math.max(peakMb, engine.rssMb());
    const outcome = `${result.status ?? `HTTP ${response.status}`}, reason ${result.reason ?? 'none'}, ${result.stdout?.length ?? 0} B kept${result.truncated ? ', truncated' : ''}`;
    return { idleMb, peakMb, deltaMb: peakMb - idleMb, outcome };
  } finally {
    clearInterval(sampler);
  }
}
