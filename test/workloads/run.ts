/**
 * Legitimate programs under a sandbox configuration: every language's hello world (the `test` entry of
 * config/languages.json) and a program per language that uses threads and child processes the way real
 * programs do (this folder, threads.*). Each must complete with its expected output whatever the seccomp
 * profile: the profile may only take away what programs do not need.
 *
 *   node --import tsx test/workloads/run.ts      prints one line per language and configuration
 *
 * test/integration/seccomp.test.ts asserts the same under config/seccomp.json.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Language } from '../../src/languages/language.ts';
import { ROOT_DIR } from '../../src/settings.ts';
import { languages, runDirect, type DirectResult } from '../helpers/sandbox.ts';
import { CONFIGS, type Config } from '../hostile/run.ts';

const HERE = path.join(ROOT_DIR, 'test', 'workloads');

/** The threads program of each language: file name in this folder, and its last line of output. */
export const WORKLOADS: Record<string, { file: string; last: string }> = {
  python: { file: 'threads.py', last: 'ok python' },
  javascript: { file: 'threads.js', last: 'ok javascript' },
  typescript: { file: 'threads.ts', last: 'ok typescript' },
  java: { file: 'Threads.java', last: 'ok java' },
  ruby: { file: 'threads.rb', last: 'ok ruby' },
  perl: { file: 'threads.pl', last: 'ok perl' },
  php: { file: 'threads.php', last: 'ok php' },
  c: { file: 'threads.c', last: 'ok c' },
  cpp: { file: 'threads.cpp', last: 'ok cpp' },
  go: { file: 'threads.go', last: 'ok go' },
  rust: { file: 'threads.rs', last: 'ok rust' },
  bash: { file: 'threads.sh', last: 'ok bash' },
};

export interface WorkloadResult {
  language: string;
  kind: 'hello' | 'threads';
  config: string;
  ok: boolean;
  detail: string;
}

function verdict(result: DirectResult, expected: (stdout: string) => boolean): { ok: boolean; detail: string } {
  const report = result.report;
  if (!report) return { ok: false, detail: `no result: ${result.failure}` };
  if (report.error) return { ok: false, detail: `error: ${report.error}` };
  if (report.compile && report.compile.exit_code !== 0) return { ok: false, detail: `compile failed: ${result.compileStderr.slice(0, 300)}` };
  if (!report.run || report.run.exit_code !== 0) return { ok: false, detail: `run: exit ${report.run?.exit_code} signal ${report.run?.signal}: ${result.stderr.slice(0, 300)}` };
  if (!expected(result.stdout)) return { ok: false, detail: `unexpected output: ${JSON.stringify(result.stdout.slice(-300))} ${result.stderr.slice(0, 300)}` };
  return { ok: true, detail: result.stdout.trim().split('\n').slice(-2).join(' / ') };
}

export async function runHello(language: Language, config: Config): Promise<WorkloadResult> {
  const result = await runDirect({ language, files: [{ content: language.test.code }], tweak: config.tweak, image: config.image, warm: language.run.warm !== null, delayMs: language.run.warm ? 500 : 0 });
  return { language: language.id, kind: 'hello', config: config.name, ...verdict(result, (out) => out === language.test.stdout) };
}

export async function runThreads(language: Language, config: Config): Promise<WorkloadResult> {
  const workload = WORKLOADS[language.id]!;
  const result = await runDirect({ language, files: [{ name: workload.file, content: readFileSync(path.join(HERE, workload.file)) }], tweak: config.tweak, image: config.image });
  return { language: language.id, kind: 'threads', config: config.name, ...verdict(result, (out) => out.trimEnd().endsWith(workload.last)) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const only = process.argv.slice(2);
  for (const config of CONFIGS.filter((c) => only.length === 0 || only.includes(c.name))) {
    for (const language of languages) {
      for (const result of [await runHello(language, config), await runThreads(language, config)]) {
        console.log(`${config.name.padEnd(24)} ${language.id.padEnd(11)} ${result.kind.padEnd(8)} ${result.ok ? 'ok  ' : 'FAIL'} ${result.detail}`);
      }
    }
  }
}
