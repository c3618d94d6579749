/**
 * Runs the hostile programs of this folder in sandbox containers created with the engine's own options
 * (src/sandbox/docker-options.ts), under several configurations, and reports what each attempt got:
 *
 *   node --import tsx test/hostile/run.ts [--json FILE] [--markdown FILE] [--old-image TAG]
 *
 * Configurations: Docker's default seccomp profile (today's engine), ours (config/seccomp.json), ours with
 * the supervisor's own-uid mode (User 0 + CapAdd SETUID, SETGID), and the own-uid mode under Docker's
 * default profile. --old-image adds the supervisor attacks against an older runtime image (the supervisor
 * before this branch) under Docker's default profile. test/integration/hostile.test.ts asserts on the
 * same runs; docs/SECURITY-notes.md records a full run.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type Docker from 'dockerode';
import { ROOT_DIR } from '../../src/settings.ts';
import { image, language, runDirect, withDockerDefaultSeccomp, withSharedUid, type DirectResult } from '../helpers/sandbox.ts';

const HERE = path.join(ROOT_DIR, 'test', 'hostile');

export interface Config {
  name: string;
  tweak?: (options: Docker.ContainerCreateOptions) => void;
  image?: string;
}

/** The engine's sandbox is `ours+own-uid`; the others take one protection away each, to show what it does. */
export const CONFIGS: Config[] = [
  { name: 'docker-default', tweak: (o) => (withDockerDefaultSeccomp(o), withSharedUid(o)) },
  { name: 'ours', tweak: withSharedUid },
  { name: 'ours+own-uid' },
  { name: 'docker-default+own-uid', tweak: withDockerDefaultSeccomp },
];

export const C_ATTACKS = [
  'prlimit-read',
  'prlimit-nofile',
  'prlimit-cpu',
  'prlimit-cpu-burn',
  'prlimit-stack',
  'prlimit-as',
  'prlimit-data',
  'prlimit-fsize',
  'prlimit-nproc',
  'prlimit-memlock',
  'prlimit-sigpending',
  'prlimit-core',
  'kill',
  'ptrace',
  'process_vm',
  'proc',
  'pidfd',
  'sched',
  'fsetown',
  'oom-adj',
];
export const PYTHON_ATTACKS = ['prlimit-nofile', 'prlimit-all', 'kill', 'proc', 'sched', 'io_uring'];

export interface Attempt {
  config: string;
  program: string;
  /** NAME → RESULT, from the program's "NAME RESULT" lines. */
  lines: Record<string, string>;
  /** The supervisor's RESULT: its error, and how the run step ended. */
  error: string | null;
  run: { exit_code: number | null; signal: number | null; warm?: boolean } | null;
  /** No RESULT at all (the supervisor died). */
  failure: string | null;
  compileError?: string;
}

function parseLines(stdout: string): Record<string, string> {
  const lines: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const match = /^([\w./+-]+) ([A-Z0-9?]+)$/.exec(line);
    if (match) lines[match[1]!] = match[2]!;
  }
  return lines;
}

function attempt(config: Config, program: string, result: DirectResult): Attempt {
  return {
    config: config.name,
    program,
    lines: parseLines(result.stdout),
    error: result.report?.error ?? null,
    run: result.report?.run ? { exit_code: result.report.run.exit_code, signal: result.report.run.signal, warm: result.report.run.warm } : null,
    failure: result.failure,
    ...(result.report?.compile && result.report.compile.exit_code !== 0 ? { compileError: result.compileStderr.slice(0, 500) } : {}),
  };
}

/** escapes.c, compiled and run by the C language's own steps (gcc under the profile is tested too). */
export async function runEscapes(config: Config): Promise<Attempt> {
  const c = language('c');
  const result = await runDirect({ language: c, files: [{ name: 'main.c', content: readFileSync(path.join(HERE, 'escapes.c')) }], tweak: config.tweak, image: config.image });
  return attempt(config, 'escapes.c', result);
}

let supervisorBinary: Buffer | undefined;
/** supervisor.c, compiled once in the runtime image (its gcc, its glibc). */
export function buildSupervisorAttacks(): Buffer {
  if (!supervisorBinary) {
    const built = spawnSync(
      'docker',
      ['run', '--rm', '-i', '--network', 'none', '--user', '65534:65534', '--tmpfs', '/tmp:rw,exec', '--entrypoint', 'sh', image, '-c', 'cd /tmp && cat > a.c && gcc -O1 -o a a.c && base64 -w0 a'],
      { input: readFileSync(path.join(HERE, 'supervisor.c')), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    if (built.status !== 0) throw new Error(`building test/hostile/supervisor.c failed: ${built.stderr}`);
    supervisorBinary = Buffer.from(built.stdout.trim(), 'base64');
  }
  return supervisorBinary;
}

/** One attack of supervisor.c. The binary is a request file (mode 0644): the dynamic loader runs it. */
export async function runSupervisorAttack(config: Config, attack: string): Promise<Attempt> {
  const c = language('c');
  const result = await runDirect({
    language: { ...c, compile: null },
    files: [{ name: 'hostile', content: buildSupervisorAttacks() }],
    runArgv: ['/lib64/ld-linux-x86-64.so.2', './hostile', attack],
    tweak: config.tweak,
    image: config.image,
  });
  return attempt(config, `supervisor.c ${attack}`, result);
}

/** One attack of supervisor_attacks.py, in the warm interpreter when there is one. */
export async function runPythonAttack(config: Config, attack: string): Promise<Attempt> {
  const python = language('python');
  const result = await runDirect({
    language: python,
    files: [{ name: 'main.py', content: readFileSync(path.join(HERE, 'supervisor_attacks.py')) }],
    args: [attack],
    warm: true,
    delayMs: 700,
    tweak: config.tweak,
    image: config.image,
  });
  return attempt(config, `supervisor_attacks.py ${attack}`, result);
}

export async function runAll(configs: Config[], oldImage?: string, log: (line: string) => void = () => undefined): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  const record = (a: Attempt) => {
    attempts.push(a);
    log(`${a.config.padEnd(24)} ${a.program.padEnd(36)} ${a.error ?? a.failure ?? 'ok'}`);
  };
  const old: Config | null = oldImage ? { name: 'docker-default, old supervisor', image: oldImage } : null;
  for (const config of configs) record(await runEscapes(config));
  for (const config of [...configs, ...(old ? [old] : [])]) {
    for (const attack of C_ATTACKS) record(await runSupervisorAttack(config, attack));
    for (const attack of PYTHON_ATTACKS) record(await runPythonAttack(config, attack));
  }
  return attempts;
}

/** Markdown tables: one row per attempt line, one column per configuration. */
export function markdown(attempts: Attempt[]): string {
  const configs = [...new Set(attempts.map((a) => a.config))];
  const out: string[] = [];
  const table = (programs: string[], title: string) => {
    out.push(`### ${title}`, '', `| attempt | ${configs.join(' | ')} |`, `|---|${configs.map(() => '---').join('|')}|`);
    for (const program of programs) {
      const runs = attempts.filter((a) => a.program === program);
      const names = [...new Set(runs.flatMap((a) => Object.keys(a.lines)))];
      for (const name of names) {
        const label = program === 'escapes.c' ? name : `${program.replace(/^supervisor(_attacks)?\.(c|py) /, (m) => (m.includes('.py') ? 'py ' : ''))}: ${name}`;
        out.push(`| ${label} | ${configs.map((c) => runs.find((a) => a.config === c)?.lines[name] ?? '—').join(' | ')} |`);
      }
      if (program !== 'escapes.c') {
        const verdict = (a: Attempt | undefined) => {
          if (!a) return '—';
          if (a.failure) return `**no result** (${a.failure})`;
          if (a.error) return `error: ${a.error}`;
          return `completed${a.run?.warm ? ' (warm)' : ''}`;
        };
        out.push(`| ${program.replace(/^supervisor(_attacks)?\.(c|py) /, (m) => (m.includes('.py') ? 'py ' : ''))} → supervisor's RESULT | ${configs.map((c) => verdict(runs.find((a) => a.config === c))).join(' | ')} |`);
      }
    }
    out.push('');
  };
  table(['escapes.c'], 'Denied syscalls and escapes (test/hostile/escapes.c)');
  table([...new Set(attempts.map((a) => a.program).filter((p) => p.startsWith('supervisor')))], 'Attacks on the supervisor (test/hostile/supervisor.c, supervisor_attacks.py)');
  return out.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const attempts = await runAll(CONFIGS, arg('--old-image'), (line) => process.stderr.write(`${line}\n`));
  const json = arg('--json');
  if (json) writeFileSync(json, JSON.stringify({ image, date: new Date().toISOString(), attempts }, null, 1));
  const md = arg('--markdown');
  if (md) writeFileSync(md, markdown(attempts));
  if (!json && !md) process.stdout.write(markdown(attempts));
}
