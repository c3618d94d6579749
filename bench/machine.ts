import { readFileSync } from 'node:fs';
import os from 'node:os';
import { enginePids } from './engine.ts';
import { exec } from './exec.ts';

async function output(command: string, args: string[]): Promise<string> {
  const result = await exec(command, args, { timeoutMs: 10_000 }).catch(() => null);
  return result?.code === 0 ? result.stdout.trim() : 'unknown';
}

function cpuModel(): string {
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
  return line?.split(':')[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
}

export async function sourceRevision(root: string): Promise<string> {
  const commit = await output('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  // The results file is what the benchmarks themselves write: it does not make the source differ.
  const dirty = await output('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/RESULTS.md']);
  return dirty && dirty !== 'unknown' ? `${commit} + uncommitted changes` : commit;
}

/** Processes that would disturb the measurements (the test suite, other engines). */
export async function otherWork(): Promise<string[]> {
  const result = await exec('pgrep', ['-af', 'tap|src/main.ts|dist/src/main.js'], { timeoutMs: 5000 }).catch(() => null);
  return (result?.stdout ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.includes('pgrep') && !enginePids.has(Number(l.split(' ')[0])));
}

/** Watches for other work during the run, every few seconds; `stop()` says what it saw. */
export function watchIdle(intervalMs = 5000): { stop(): string } {
  let seen: string | null = null;
  let checking = false;
  const timer = setInterval(() => {
    if (checking || seen) return;
    checking = true;
    otherWork()
      .then((busy) => {
        if (busy.length > 0) seen = `${new Date().toISOString()}: ${busy[0]?.slice(0, 80)}…`;
      })
      .finally(() => (checking = false));
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return seen ? `NOT idle during the run (first seen ${seen})` : 'no test suite or other engine seen during the run (checked every 5 s)';
    },
  };
}

/** The header lines: machine, software, date, and whether the machine was idle. */
export async function describeMachine(root: string, image: string): Promise<string[]> {
  const busy = await otherWork();
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} × ${cpuModel()}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, kernel ${os.release()}`,
    `- software: Docker ${await output('docker', ['version', '--format', '{{.Server.Version}}'])}, Node ${process.version}, image ${image}, source ${await sourceRevision(root)}`,
    `- load at start: ${load}; ${busy.length === 0 ? 'no test suite or other engine running' : `NOT IDLE: ${busy.length} other process(es) (${busy[0]?.slice(0, 80)}…)`}`,
  ];
}
