/** Latency summaries (nearest-rank percentiles) and throughput, plus their formatting. */

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
}

/** A sequential or open-loop series: latencies of the successful samples and the failures. */
export interface Series {
  latenciesMs: number[];
  failures: number;
  /** First failure message, to say what went wrong. */
  firstError: string | null;
}

export interface Throughput {
  jobs: number;
  failures: number;
  seconds: number;
  jobsPerSecond: number;
  firstError: string | null;
}

export function emptySeries(): Series {
  return { latenciesMs: [], failures: 0, firstError: null };
}

export function recordFailure(series: { failures: number; firstError: string | null }, error: unknown): void {
  series.failures++;
  series.firstError ??= error instanceof Error ? error.message : String(error);
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) };
}

export function throughput(jobs: number, failures: number, seconds: number, firstError: string | null = null): Throughput {
  return { jobs, failures, seconds, jobsPerSecond: seconds > 0 ? (jobs - failures) / seconds : Number.NaN, firstError };
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return '—';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

export function rate(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : '—';
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)}×` : '—';
}

export function latencyText(s: LatencySummary): string {
  return `p50 ${ms(s.p50)} · p90 ${ms(s.p90)} · p99 ${ms(s.p99)} ms`;
}

export function mark(ok: boolean): string {
  return ok ? '✓' : '✗';
}
