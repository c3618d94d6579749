import os from 'node:os';
import Docker from 'dockerode';
import type { LanguageRegistry } from '../src/languages/registry.ts';
import {
  bareBurst,
  bareSequential,
  chrootPython,
  chrootToolchainBurst,
  chrootToolchainSequential,
  dockerRunSequential,
  hardenedOptions,
} from './baselines.ts';
import { startPostgres } from '../support/postgres.ts';
import { startRedis } from '../support/redis.ts';
import { engineHardening } from '../support/hardening.ts';
import { startEngine, type Engine, type MemoryUse } from './engine.ts';
import { sleep } from './exec.ts';
import { burst, openLoop, rssDuringFlood, sequential, warmUp, type OpenLoopResult, type RssProbe } from './load.ts';
import type { BenchOptions, Section } from './options.ts';
import { C_HELLO, JAVA_HELLO, PYTHON_FLOOD, PYTHON_HELLO, type Program } from './programs.ts';
import { ensureRootfs } from './rootfs.ts';
import type { Series, Throughput } from './stats.ts';

/** A measurement's value, the error that stopped it, or null when it was skipped. */
export type Measured<T> = T | Error | null;

export interface Pair {
  sequential: Measured<Series>;
  burst: Measured<Throughput>;
}

export interface BaselineResults {
  dockerRun: Measured<Series>;
  bareSequential: Measured<Series>;
  bareBursts: { concurrency: number; result: Measured<Throughput> }[];
  chrootPython: Measured<Series>;
  chrootC: Pair;
  chrootJava: Pair;
}

export interface EngineResults {
  idle: Measured<MemoryUse>;
  python: Pair;
  openLoops: { rate: number; result: Measured<OpenLoopResult> }[];
  c: Pair;
  java: Pair;
  rss: Measured<RssProbe>;
}

/** Pause between phases: background removals finish (and a warm pool refills) before the next one. */
const SETTLE_MS = 1500;
const SEQUENTIAL_BUDGET_MS = { python: 180_000, c: 240_000, java: 420_000 };
const BURST_BUDGET_MS = { python: 600_000, c: 300_000, java: 900_000 };

const started = performance.now();
export function progress(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
}

async function measure<T>(options: BenchOptions, section: Section, label: string, task: () => Promise<T>): Promise<Measured<T>> {
  if (options.skip.has(section)) return null;
  progress(label);
  try {
    return await task();
  } catch (error) {
    progress(`${label}: ${String(error)}`);
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** Section 5: what a container costs without the engine, and what the interpreter costs without a container. */
export async function measureBaselines(options: BenchOptions, languages: LanguageRegistry, image: string, nodeId: string): Promise<BaselineResults> {
  const counts = options.counts;
  const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  const python = languages.resolve('python');
  const hardening = await engineHardening(docker);
  const bareOptions = () => hardenedOptions(python, image, nodeId, ['python3', '-c', 'print(1)'], hardening);

  const dockerRun = await measure(options, 'docker-run', `docker run --rm × ${counts.dockerRun}`, () => dockerRunSequential(bareOptions(), counts.dockerRun));
  const bareSeq = await measure(options, 'dockerode', `bare dockerode loop × ${counts.bareSequential}`, () => bareSequential(docker, bareOptions, counts.bareSequential));
  const bareBursts = [];
  for (const concurrency of counts.bareConcurrency) {
    const result = await measure(options, 'dockerode', `bare dockerode burst ${counts.bareBurst} at concurrency ${concurrency}`, () =>
      bareBurst(docker, bareOptions, counts.bareBurst, concurrency),
    );
    bareBursts.push({ concurrency, result });
  }

  const rootfs = options.skip.has('chroot') ? null : await measure(options, 'chroot', 'exporting the image root filesystem (cached)', () => ensureRootfs(image, `braindrill.node=${nodeId}`));
  const inRootfs = <T>(label: string, section: Section, task: (dir: string) => Promise<T>): Promise<Measured<T>> => {
    if (rootfs instanceof Error) return Promise.resolve(rootfs);
    if (rootfs === null || options.skip.has(section)) return Promise.resolve(null);
    return measure(options, 'chroot', label, () => task(rootfs));
  };
  const toolchain = async (program: Program, section: Section): Promise<Pair> => {
    const language = languages.resolve(program.language);
    return {
      sequential: await inRootfs(`chroot ${language.id} compile+run × ${counts.chrootCompiledSequential}`, section, (dir) =>
        chrootToolchainSequential(dir, language, program, counts.chrootCompiledSequential),
      ),
      burst: await inRootfs(`chroot ${language.id} compile+run burst ${counts.chrootCompiledBurst}`, section, (dir) =>
        chrootToolchainBurst(dir, language, program, counts.chrootCompiledBurst, os.availableParallelism()),
      ),
    };
  };
  return {
    dockerRun,
    bareSequential: bareSeq,
    bareBursts,
    chrootPython: await inRootfs(`chroot python3 × ${counts.chrootPython}`, 'chroot', (dir) => chrootPython(dir, counts.chrootPython)),
    chrootC: await toolchain(C_HELLO, 'c'),
    chrootJava: await toolchain(JAVA_HELLO, 'java'),
  };
}

async function engineSequential(options: BenchOptions, engine: Engine, program: Program, section: Section, count: number, warmups: number): Promise<Measured<Series>> {
  const budget = SEQUENTIAL_BUDGET_MS[program.language as keyof typeof SEQUENTIAL_BUDGET_MS] ?? 180_000;
  const label = `${program.language} sequential × ${count}${warmups > 0 ? ` (after ${warmups} warm-up)` : ''}`;
  return measure(options, section, label, async () => {
    await warmUp(engine, program, warmups);
    await sleep(SETTLE_MS);
    return sequential(engine, program, count, budget);
  });
}

async function engineBurst(options: BenchOptions, engine: Engine, program: Program, section: Section, count: number): Promise<Measured<Throughput>> {
  const budget = BURST_BUDGET_MS[program.language as keyof typeof BURST_BUDGET_MS] ?? 600_000;
  await sleep(SETTLE_MS);
  return measure(options, section, `${program.language} burst of ${count} through POST /jobs`, () => burst(engine, program, count, budget));
}

/** Sections 1-4 and 6 on one engine. */
export async function measureEngine(options: BenchOptions, engine: Engine): Promise<EngineResults> {
  const counts = options.counts;
  await warmUp(engine, PYTHON_HELLO, counts.pythonWarmup);
  await sleep(SETTLE_MS);
  const idle = options.skip.has('rss') ? null : engine.memory();
  const pythonSequential = await engineSequential(options, engine, PYTHON_HELLO, 'sequential', counts.pythonSequential, 0);
  const openLoops = [];
  for (const rate of counts.openLoopRates) {
    await sleep(SETTLE_MS);
    const result = await measure(options, 'open-loop', `open loop ${rate} jobs/s for ${counts.openLoopSeconds} s`, () => openLoop(engine, PYTHON_HELLO, rate, counts.openLoopSeconds));
    openLoops.push({ rate, result });
  }
  const pythonBurst = await engineBurst(options, engine, PYTHON_HELLO, 'burst', counts.pythonBurst);
  const compiled = async (program: Program, section: Section): Promise<Pair> => ({
    sequential: await engineSequential(options, engine, program, section, counts.compiledSequential, counts.compiledWarmup),
    burst: await engineBurst(options, engine, program, section, counts.compiledBurst),
  });
  const c = await compiled(C_HELLO, 'c');
  const java = await compiled(JAVA_HELLO, 'java');
  await sleep(SETTLE_MS);
  const rss = await measure(options, 'rss', 'engine RSS while one job prints 100 MB', () => rssDuringFlood(engine, PYTHON_FLOOD));
  return { idle, python: { sequential: pythonSequential, burst: pythonBurst }, openLoops, c, java, rss };
}

/** Rows 1 and 3 again on the second engine (BENCH_COMPARE_ENV): the "cold path" column. */
export async function measureColdPath(options: BenchOptions, engine: Engine): Promise<Pair> {
  const counts = options.counts;
  return {
    sequential: await engineSequential(options, engine, PYTHON_HELLO, 'sequential', counts.pythonSequential, counts.pythonWarmup),
    burst: await engineBurst(options, engine, PYTHON_HELLO, 'burst', counts.pythonBurst),
  };
}

export interface ClusterIdle {
  api: MemoryUse;
  manager: MemoryUse;
}

/**
 * Row 6b: an API node and a manager node of a cluster (private Redis and PostgreSQL), idle after a few
 * jobs went through them, so their memory is measured as it settles in service rather than at start.
 */
export async function measureClusterIdle(options: BenchOptions, root: string, nodeId: string): Promise<Measured<ClusterIdle>> {
  return measure(options, 'cluster-rss', 'cluster: idle RSS of an API node and a manager node', async () => {
    const redis = await startRedis();
    const postgres = await startPostgres();
    const engines: Engine[] = [];
    try {
      const shared = { REDIS_URL: redis.url, DATABASE_URL: await postgres.createDatabase() };
      const manager = await startEngine(root, `${nodeId}-manager`, { ...shared, ROLE: 'worker' });
      engines.push(manager);
      const api = await startEngine(root, `${nodeId}-api`, { ...shared, ROLE: 'api' });
      engines.push(api);
      await warmUp(api, PYTHON_HELLO, Math.max(3, options.counts.pythonWarmup));
      await sleep(SETTLE_MS * 2);
      return { api: api.memory(), manager: manager.memory() };
    } finally {
      for (const engine of engines.reverse()) await engine.stop();
      await postgres.destroy();
      await redis.destroy();
    }
  });
}
