/**
 * `npm run bench:versus -- BEFORE [AFTER]`: the same measurements on the code at git BEFORE (default: the
 * commit before HEAD) and at AFTER (default: this checkout), in one run on one machine, alternating the two engines round by
 * round so that drift in the machine's load falls on both. Prints a table with the ratio of each figure
 * (after / before) and, with BENCH_WRITE=1, writes it into bench/RESULTS.md.
 * Environment: BENCH_QUICK=1 (small counts), BENCH_ROUNDS (default 3), BENCH_ENGINE_ENV="K=V …" (both
 * engines), BENCH_AFTER_ENV="K=V …" (the after engine only, e.g. SANDBOX_RUNTIME=runc), BENCH_TITLE (the
 * section's heading: each titled comparison keeps its own section of RESULTS.md).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT_DIR } from '../src/settings.ts';
import { startEngine, stopAllEngines, type Engine } from './engine.ts';
import { burst, openLoop, sequential, warmUp } from './load.ts';
import { describeMachine, watchIdle } from './machine.ts';
import { progress } from './measure.ts';
import { PYTHON_HELLO } from './programs.ts';
import { writeResults } from './results-file.ts';
import { latencyText, rate, ratio, summarize, type LatencySummary } from './stats.ts';
import { runtimeImageTag } from '../src/sandbox/image.ts';

const run = promisify(execFile);
const quick = process.env.BENCH_QUICK === '1';
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3));
const counts = quick ? { sequential: 20, openLoopSeconds: 5, burst: 40 } : { sequential: 60, openLoopSeconds: 12, burst: 150 };
const envList = (text: string | undefined) => Object.fromEntries((text ?? '').split(/\s+/).filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
const engineEnv = envList(process.env.BENCH_ENGINE_ENV);
const afterEnv = { ...engineEnv, ...envList(process.env.BENCH_AFTER_ENV) };

/** What one engine measured, pooled over the rounds. */
interface Figures {
  warm: number[];
  openLoop: number[];
  burst: number[];
  cold: number[];
  failures: number;
}

/** A checkout of `ref` next to this one, sharing node_modules, built. */
async function checkout(ref: string): Promise<{ dir: string; commit: string; remove(): Promise<void> }> {
  const commit = (await run('git', ['-C', ROOT_DIR, 'rev-parse', '--short', ref])).stdout.trim();
  const dir = mkdtempSync(path.join(tmpdir(), `braindrill-versus-${commit}-`));
  rmSync(dir, { recursive: true });
  await run('git', ['-C', ROOT_DIR, 'worktree', 'add', '--detach', dir, commit]);
  symlinkSync(path.join(ROOT_DIR, 'node_modules'), path.join(dir, 'node_modules'));
  progress(`building ${commit} in ${dir}`);
  await run(process.execPath, [path.join(ROOT_DIR, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, timeout: 300_000 });
  return { dir, commit, remove: () => run('git', ['-C', ROOT_DIR, 'worktree', 'remove', '--force', dir]).then(() => undefined) };
}

async function measureRound(engine: Engine, cold: Engine, figures: Figures): Promise<void> {
  await warmUp(engine, PYTHON_HELLO, 5);
  const warm = await sequential(engine, PYTHON_HELLO, counts.sequential, 120_000);
  const open = await openLoop(engine, PYTHON_HELLO, 5, counts.openLoopSeconds);
  const jobs = await burst(engine, PYTHON_HELLO, counts.burst, 300_000);
  await warmUp(cold, PYTHON_HELLO, 2);
  const coldRun = await sequential(cold, PYTHON_HELLO, Math.ceil(counts.sequential / 2), 120_000);
  figures.warm.push(...warm.latenciesMs);
  figures.openLoop.push(...open.latenciesMs);
  figures.burst.push(jobs.jobsPerSecond);
  figures.cold.push(...coldRun.latenciesMs);
  figures.failures += warm.failures + open.failures + jobs.failures + coldRun.failures;
}

async function main(): Promise<void> {
  const before = await checkout(process.argv[2] ?? 'HEAD~1');
  const after = process.argv[3] ? await checkout(process.argv[3]) : null;
  const image = process.env.RUNTIME_IMAGE ?? runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime'));
  const header = await describeMachine(ROOT_DIR, image);
  const idle = watchIdle();
  const figures = new Map<string, Figures>([
    ['before', { warm: [], openLoop: [], burst: [], cold: [], failures: 0 }],
    ['after', { warm: [], openLoop: [], burst: [], cold: [], failures: 0 }],
  ]);
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so neither always meets the machine fresher.
      const order = round % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
      for (const which of order) {
        const root = which === 'before' ? before.dir : (after?.dir ?? ROOT_DIR);
        const env = which === 'before' ? engineEnv : afterEnv;
        progress(`round ${round + 1}/${rounds}: ${which} (${root})`);
        const engine = await startEngine(root, `versus-${which}-${round}`, env);
        const cold = await startEngine(root, `versus-${which}-${round}-cold`, { ...env, WARM_POOL: '0' });
        try {
          await measureRound(engine, cold, figures.get(which)!);
        } finally {
          await engine.stop();
          await cold.stop();
        }
      }
    }
  } finally {
    await stopAllEngines();
    await before.remove().catch(() => undefined);
    await after?.remove().catch(() => undefined);
  }
  const afterName = `${after ? after.commit : 'this checkout'}${Object.keys(afterEnv).length > Object.keys(engineEnv).length ? ` with ${process.env.BENCH_AFTER_ENV}` : ''}`;
  const report = render(header, idle.stop(), before.commit, afterName, figures.get('before')!, figures.get('after')!);
  process.stdout.write(report);
  if (process.env.BENCH_WRITE === '1') writeResults(report);
}

function render(header: string[], during: string, commit: string, afterName: string, before: Figures, after: Figures): string {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  const row = (name: string, a: LatencySummary, b: LatencySummary) => `| ${name} | ${latencyText(a)} | ${latencyText(b)} | ${ratio(b.p50 / a.p50)} |`;
  return [
    `## Before and after${process.env.BENCH_TITLE ? `: ${process.env.BENCH_TITLE}` : ''} (\`npm run bench:versus\`)`,
    '',
    ...header,
    `- before: ${commit}; after: ${afterName}; ${rounds} round(s), engines alternated; during the run: ${during}`,
    '',
    '| python hello world | before | after | after / before (p50; jobs/s for the burst) |',
    '| --- | --- | --- | --- |',
    row(`\`POST /lang\` sequential (warm pool), ${before.warm.length} + ${after.warm.length}`, summarize(before.warm), summarize(after.warm)),
    row('`POST /lang` at 5 jobs/s, open loop', summarize(before.openLoop), summarize(after.openLoop)),
    row('`POST /lang` sequential, `WARM_POOL=0` (cold path)', summarize(before.cold), summarize(after.cold)),
    `| burst of ${counts.burst} through \`POST /jobs\` (median of rounds) | ${rate(median(before.burst))} jobs/s | ${rate(median(after.burst))} jobs/s | ${ratio(median(after.burst) / median(before.burst))} |`,
    '',
    `- failed requests: before ${before.failures}, after ${after.failures}; latencies are client-side (HTTP round trip included)`,
    '',
  ].join('\n');
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    progress(`bench:versus failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAllEngines();
    process.exit(1);
  },
);
