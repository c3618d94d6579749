/**
 * `npm run bench`: starts its own engine, measures latency, throughput and memory against baselines
 * taken in the same run, prints one markdown table (and writes bench/RESULTS.md with BENCH_WRITE=1).
 * Environment: BENCH_QUICK=1, BENCH_SKIP=a,b, BENCH_WRITE=1, BENCH_ENGINE_ENV="K=V …",
 * BENCH_COMPARE_ENV="K=V …" (a second engine for the "cold path" column). See bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Docker from 'dockerode';
import { loadLanguages } from '../src/languages/language.ts';
import { LanguageRegistry } from '../src/languages/registry.ts';
import { Label } from '../src/sandbox/docker-options.ts';
import { runtimeImageTag } from '../src/sandbox/image.ts';
import { ROOT_DIR } from '../src/settings.ts';
import { startEngine, stopAllEngines, type Engine } from './engine.ts';
import { sleep } from './exec.ts';
import { describeMachine, watchIdle } from './machine.ts';
import { measureBaselines, measureClusterIdle, measureColdPath, measureEngine, progress, type EngineResults } from './measure.ts';
import { readOptions, type BenchOptions } from './options.ts';
import type { Pair } from './measure.ts';
import { TARGETS, buildRows, failureNotes } from './report.ts';
import { renderTable } from './table.ts';
import { RESULTS_FILE, writeResults } from './results-file.ts';

/** The whole run is bounded: past this the bench cleans up and exits 1. */
const WATCHDOG_MS = { quick: 15 * 60_000, full: 60 * 60_000 };

const cleanups = new Set<() => Promise<void>>();

async function cleanUp(): Promise<void> {
  for (const task of [...cleanups].reverse()) await task().catch((error: unknown) => progress(`clean-up step failed: ${String(error)}`));
  cleanups.clear();
}

let exiting = false;

function exitAfterCleanUp(code: number, why: string): void {
  if (exiting) return;
  exiting = true;
  progress(why);
  void cleanUp().finally(() => process.exit(code));
}

/** Starts an engine, runs `task` on it, stops it (also on failure or interrupt); returns the engine's log. */
async function withEngine<T>(nodeId: string, env: Record<string, string>, task: (engine: Engine) => Promise<T>): Promise<{ value: T; log: string[] }> {
  progress(`starting engine ${nodeId}${Object.keys(env).length ? ` with ${envText(env)}` : ''}`);
  const engine = await startEngine(ROOT_DIR, nodeId, env);
  try {
    return { value: await task(engine), log: engine.warnings() };
  } finally {
    progress(`stopping engine ${nodeId}`);
    await engine.stop();
  }
}

const envText = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ') || '(defaults)';

/** Containers of this run still present after everything stopped; removes them and says how many there were. */
async function leftoverContainers(nodeIds: string[]): Promise<number> {
  const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  await sleep(1000);
  let count = 0;
  for (const nodeId of nodeIds) {
    const containers = await docker.listContainers({ all: true, filters: { label: [`${Label.node}=${nodeId}`] } });
    count += containers.length;
    for (const info of containers) await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
  }
  return count;
}

function notes(options: BenchOptions, engineLog: string[], leftovers: number, failures: string[]): string[] {
  const lines = [
    `- ratios compare medians (p50) or jobs/s of the rows named; targets (${TARGETS.warmP50Ms}/${TARGETS.warmP99Ms} ms at 5 jobs/s, ≥ ${TARGETS.fasterThanDockerRun}× docker run, ≥ ${TARGETS.burstJobsPerSecond} jobs/s and ≥ ${TARGETS.burstVersusBare}× the bare loop, cold p50 ≤ ${TARGETS.coldP50Ms} ms, idle RSS ≤ ${TARGETS.idleRssMb} MB, RSS flat ±${TARGETS.rssFlatMb} MB) are shown, not asserted`,
    '- latencies are client-side wall times (HTTP round trip, queueing included); burst jobs/s run from the first submit to the last `completed_at`; baselines 5a/5b run `python3 -c print(1)` with `containerOptions` (the engine runs its supervisor, then `python3 main.py`); chroot rows run as root with no limits',
    `- containers of this run left after the engines stopped: ${leftovers}`,
    ...failures.map((f) => `- failures — ${f}`),
  ];
  if (engineLog.length > 0) lines.push(`- the engine logged ${engineLog.length} line(s) at warn or above; first: \`${(engineLog[0] ?? '').slice(0, 300)}\``);
  if (options.quick) lines.push('- BENCH_QUICK=1: small counts, a smoke run; the numbers are indicative only');
  return lines;
}

async function main(): Promise<void> {
  const options = readOptions();
  const watchdog = setTimeout(() => exitAfterCleanUp(1, 'watchdog: the bench ran too long; stopping'), options.quick ? WATCHDOG_MS.quick : WATCHDOG_MS.full);
  process.once('SIGINT', () => exitAfterCleanUp(130, 'interrupted'));
  process.once('SIGTERM', () => exitAfterCleanUp(143, 'terminated'));

  const image = process.env.RUNTIME_IMAGE ?? runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime'));
  const languages = new LanguageRegistry(loadLanguages(process.env.LANGUAGES_FILE ?? path.join(ROOT_DIR, 'config', 'languages.json')));
  const runId = randomBytes(3).toString('hex');
  const ids = { baseline: `bench-${runId}-baseline`, engine: `bench-${runId}`, cold: `bench-${runId}-cold`, cluster: `bench-${runId}-cluster` };
  // On an interrupt: engines first (they remove their own containers), then whatever is left of this run.
  cleanups.add(async () => void (await leftoverContainers(Object.values(ids))));
  cleanups.add(stopAllEngines);
  const header = await describeMachine(ROOT_DIR, image);
  header.push(`- engine: \`node dist/src/main.js\` (the build), embedded mode, env ${envText(options.engineEnv)}${options.compareEnv ? `; cold-path column: ${envText({ ...options.engineEnv, ...options.compareEnv })}` : ''}`);

  const idleWatch = watchIdle();
  const baselines = await measureBaselines(options, languages, image, ids.baseline);
  const main = await withEngine<EngineResults>(ids.engine, options.engineEnv, (engine) => measureEngine(options, engine));
  let cold: Pair | null = null;
  let coldLog: string[] = [];
  if (options.compareEnv && !options.skip.has('compare')) {
    const run = await withEngine(ids.cold, { ...options.engineEnv, ...options.compareEnv }, (engine) => measureColdPath(options, engine));
    cold = run.value;
    coldLog = run.log;
  }
  const cluster = await measureClusterIdle(options, ROOT_DIR, ids.cluster);
  const leftovers = await leftoverContainers([...Object.values(ids), `${ids.cluster}-manager`]);
  clearTimeout(watchdog);
  header.push(`- during the run: ${idleWatch.stop()}`);

  const input = { baselines, engine: main.value, cold, cluster };
  const coldHeader = options.compareEnv ? `cold path (${envText(options.compareEnv)})` : null;
  const report = [
    '# braindrill benchmark',
    '',
    ...header,
    '',
    renderTable(buildRows(input), coldHeader),
    '',
    ...notes(options, [...main.log, ...coldLog], leftovers, failureNotes(input)),
    '',
  ].join('\n');
  process.stdout.write(report);
  if (options.write) {
    writeResults(report);
    progress(`wrote ${path.relative(ROOT_DIR, RESULTS_FILE)}`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => exitAfterCleanUp(1, `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`),
);
