/**
 * `npm run bench:runtimes` (= `node --import tsx bench/runtimes.ts [RUNTIME...]`, default `runc runsc`):
 * every language's `test` program (config/languages.json) through `POST /lang/:language` on one engine per
 * OCI runtime (SANDBOX_RUNTIME), with the warm pool off so each run pays its container's start. Prints,
 * per language, whether the output was right and the p50 wall time per run under each runtime, and the
 * ratio to the first. The runtimes must be registered with dockerd (`DOCKER_RUNSC=1 ./deploy.sh` for
 * runsc). With `BENCH_WRITE=1` it writes its section of bench/RESULTS.md.
 */
import path from 'node:path';
import { loadLanguages } from '../src/languages/language.ts';
import { runtimeImageTag } from '../src/sandbox/image.ts';
import { ROOT_DIR } from '../src/settings.ts';
import { API_KEY, startEngine, stopAllEngines } from './engine.ts';
import { describeMachine } from './machine.ts';
import { ms, percentile, ratio } from './stats.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const runtimes = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['runc', 'runsc'];
const languages = loadLanguages(path.join(ROOT_DIR, 'config', 'languages.json'));
const progress = (line: string) => process.stderr.write(`${line}\n`);

interface Outcome {
  /** Right output every time. */
  ok: boolean;
  /** What went wrong the first time it did (status, reason, first output). */
  detail: string;
  p50Ms: number;
}

async function measure(runtime: string): Promise<Map<string, Outcome>> {
  const engine = await startEngine(ROOT_DIR, `runtimes-${runtime}`, { SANDBOX_RUNTIME: runtime, WARM_POOL: '0' });
  const outcomes = new Map<string, Outcome>();
  try {
    for (const language of languages) {
      const times: number[] = [];
      let detail = '';
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        const response = await engine.request(`/lang/${language.id}`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'text/plain' }, body: language.test.code });
        const output = await response.text();
        times.push(performance.now() - started);
        if (!detail && output !== language.test.stdout) {
          detail = `${response.status} ${response.headers.get('x-status')} ${response.headers.get('x-reason')}: ${output.replace(/\s+/g, ' ').slice(0, 120)}`;
        }
      }
      times.sort((a, b) => a - b);
      outcomes.set(language.id, { ok: !detail, detail, p50Ms: percentile(times, 50) });
      progress(`${runtime} ${language.id}: ${detail || 'ok'} (${ms(percentile(times, 50))})`);
    }
  } finally {
    await engine.stop();
  }
  return outcomes;
}

async function main(): Promise<void> {
  const results: Map<string, Outcome>[] = [];
  for (const runtime of runtimes) results.push(await measure(runtime));
  const header = `| language | ${runtimes.map((r, i) => (i === 0 ? `${r} p50` : `${r} p50 | ${r} / ${runtimes[0]}`)).join(' | ')} | notes |`;
  const rule = `|---|${runtimes.map((_, i) => (i === 0 ? '---:' : '---:|---:')).join('|')}|---|`;
  const rows = languages.map((language) => {
    const cells = results.map((result, i) => {
      const outcome = result.get(language.id)!;
      const cell = `${ms(outcome.p50Ms)}${outcome.ok ? '' : ' ✗'}`;
      return i === 0 ? cell : `${cell} | ${ratio(outcome.p50Ms / results[0]!.get(language.id)!.p50Ms)}`;
    });
    const notes = results.map((result, i) => (result.get(language.id)!.ok ? '' : `${runtimes[i]}: ${result.get(language.id)!.detail}`)).filter(Boolean).join('; ');
    return `| ${language.id} | ${cells.join(' | ')} | ${notes.replace(/\|/g, '\\|')} |`;
  });
  const report = [
    `## OCI runtimes, per language (\`npm run bench:runtimes\`)`,
    '',
    ...(await describeMachine(ROOT_DIR, runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime')))),
    '',
    `Each language's \`test\` program ${RUNS} times through \`POST /lang\` with \`WARM_POOL=0\` (every run starts its container; compiled languages compile each time). ✗: wrong output at least once (notes: the first failure).`,
    '',
    header,
    rule,
    ...rows,
  ].join('\n');
  console.log(report);
  if (process.env.BENCH_WRITE === '1') (await import('./results-file.ts')).writeResults(report);
}

main().then(
  () => stopAllEngines(),
  async (error: unknown) => {
    progress(`bench:runtimes failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAllEngines();
    process.exitCode = 1;
  },
);
