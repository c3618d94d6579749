/** What `npm run bench` measures, read from the environment (every knob is optional). */

export const SECTIONS = ['docker-run', 'dockerode', 'chroot', 'sequential', 'open-loop', 'burst', 'c', 'java', 'rss', 'cluster-rss', 'compare'] as const;
export type Section = (typeof SECTIONS)[number];

/** Counts and durations of every measurement; `BENCH_QUICK=1` shrinks them for a smoke run. */
export interface Counts {
  pythonWarmup: number;
  pythonSequential: number;
  openLoopSeconds: number;
  openLoopRates: number[];
  pythonBurst: number;
  compiledWarmup: number;
  compiledSequential: number;
  compiledBurst: number;
  dockerRun: number;
  bareSequential: number;
  bareBurst: number;
  bareConcurrency: number[];
  chrootPython: number;
  chrootCompiledSequential: number;
  chrootCompiledBurst: number;
}

export interface BenchOptions {
  quick: boolean;
  write: boolean;
  skip: Set<Section>;
  engineEnv: Record<string, string>;
  /** Extra env of a second engine run ("cold path" column); null: no second run. */
  compareEnv: Record<string, string> | null;
  counts: Counts;
}

const FULL: Counts = {
  pythonWarmup: 5,
  pythonSequential: 100,
  openLoopSeconds: 20,
  openLoopRates: [5, 10],
  pythonBurst: 300,
  compiledWarmup: 3,
  compiledSequential: 30,
  compiledBurst: 60,
  dockerRun: 20,
  bareSequential: 50,
  bareBurst: 300,
  bareConcurrency: [2, 4],
  chrootPython: 50,
  chrootCompiledSequential: 10,
  chrootCompiledBurst: 20,
};

const QUICK: Counts = {
  pythonWarmup: 3,
  pythonSequential: 20,
  openLoopSeconds: 5,
  openLoopRates: [5, 10],
  pythonBurst: 30,
  compiledWarmup: 1,
  compiledSequential: 4,
  compiledBurst: 6,
  dockerRun: 3,
  bareSequential: 6,
  bareBurst: 8,
  bareConcurrency: [2, 4],
  chrootPython: 10,
  chrootCompiledSequential: 2,
  chrootCompiledBurst: 4,
};

/** `A=1 B=two` (whitespace-separated KEY=VALUE pairs) into an object. */
export function parseEnvList(raw: string | undefined, name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of (raw ?? '').split(/\s+/).filter(Boolean)) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new Error(`${name}: "${pair}" is not KEY=VALUE`);
    env[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return env;
}

function parseSkip(raw: string | undefined): Set<Section> {
  const skip = new Set<Section>();
  for (const name of (raw ?? '').split(/[\s,]+/).filter(Boolean)) {
    if (name === 'baselines') ['docker-run', 'dockerode', 'chroot'].forEach((s) => skip.add(s as Section));
    else if ((SECTIONS as readonly string[]).includes(name)) skip.add(name as Section);
    else throw new Error(`BENCH_SKIP: unknown section "${name}" (known: ${SECTIONS.join(', ')}, baselines)`);
  }
  return skip;
}

export function readOptions(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const quick = env.BENCH_QUICK === '1';
  const compare = env.BENCH_COMPARE_ENV?.trim();
  return {
    quick,
    write: env.BENCH_WRITE === '1',
    skip: parseSkip(env.BENCH_SKIP),
    engineEnv: parseEnvList(env.BENCH_ENGINE_ENV, 'BENCH_ENGINE_ENV'),
    compareEnv: compare ? parseEnvList(compare, 'BENCH_COMPARE_ENV') : null,
    counts: quick ? QUICK : FULL,
  };
}
