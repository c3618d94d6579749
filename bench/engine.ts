import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/free-port.ts';
import { ensureBuilt } from '../support/build.ts';
import { ROOT_DIR } from '../src/settings.ts';
import { sleep } from './exec.ts';

export const API_KEY = 'dev-key-12345';

/** Engines this bench started: not "other work" when checking that the machine is idle. */
export const enginePids = new Set<number>();
/** How to stop every engine still running, from the moment it is spawned (an interrupt may come during start-up). */
const running = new Set<() => Promise<void>>();

export async function stopAllEngines(): Promise<void> {
  await Promise.all([...running].map((stop) => stop()));
}

/** Settings that take the engine's own guards (rate limits, quotas, patterns) out of the measurement. */
const BENCH_ENGINE_ENV: Record<string, string> = {
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
  RATE_LIMIT_MAX_REQUESTS: '1000000',
  RATE_LIMIT_READ_MAX_REQUESTS: '1000000',
  KEY_MAX_QUEUED_JOBS: '100000',
  IP_RATE_LIMIT_MAX: '10000000',
  BLOCKED_PATTERNS: 'off',
};

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 90_000;

export interface Engine {
  url: string;
  nodeId: string;
  pid: number;
  /** Log lines at warn level or above, for the report. */
  warnings(): string[];
  request(pathname: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  rssMb(): number;
  memory(): MemoryUse;
  stop(): Promise<void>;
}

export interface MemoryUse {
  rssMb: number;
  /** Heap-like memory (RssAnon): what the process allocated, as opposed to mapped files. */
  anonMb: number;
}

/** Resident memory of a process, from /proc/<pid>/status. */
export function memoryOf(pid: number): MemoryUse {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(status.match(new RegExp(`^${name}:\\s*(\\d+) kB`, 'm'))?.[1]) / 1024;
  return { rssMb: field('VmRSS'), anonMb: field('RssAnon') };
}

async function waitReady(child: ChildProcess, url: string, log: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`engine exited during start-up:\n${log()}`);
    if (await fetch(`${url}/ready`).then((r) => r.ok, () => false)) return;
    if (Date.now() > deadline) throw new Error(`engine not ready within ${START_TIMEOUT_MS / 1000} s:\n${log()}`);
    await sleep(200);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts the build (`dist/src/main.js`, what deploy.sh runs; built first) as a child process on a free
 * port with its own data dir (unless `extraEnv` names one), and waits for /ready.
 */
export async function startEngine(root: string, nodeId: string, extraEnv: Record<string, string>): Promise<Engine> {
  // This checkout is built here; another one (bench:versus compares two) was built by its caller.
  if (root === ROOT_DIR) await ensureBuilt();
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'braindrill-bench-data-'));
  const child = spawn(process.execPath, [path.join(root, 'dist', 'src', 'main.js')], {
    cwd: root,
    env: { ...process.env, ...BENCH_ENGINE_ENV, DATA_DIR: dataDir, ...extraEnv, PORT: String(port), NODE_ID: nodeId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid) enginePids.add(child.pid);
  let log = '';
  const append = (chunk: Buffer) => (log = (log + chunk.toString()).slice(-200_000));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
    running.delete(stop);
  };
  running.add(stop);
  try {
    await waitReady(child, url, () => log);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    nodeId,
    pid: child.pid ?? -1,
    warnings: () => log.split('\n').filter((line) => line.trim() !== ''),
    request(pathname, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('x-api-key', API_KEY);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      return fetch(`${url}${pathname}`, { ...init, headers, body });
    },
    rssMb: () => memoryOf(child.pid ?? -1).rssMb,
    memory: () => memoryOf(child.pid ?? -1),
    stop,
  };
}
