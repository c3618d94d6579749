import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { ROOT_DIR } from '../src/settings.ts';
import { ensureBuilt, nodeArgs, type EntryPoint } from './build.ts';
import { freePort } from './free-port.ts';

export interface EngineProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}


/**
 * Starts a node as a separate process (so it can be SIGKILLed) and waits for /health: `src/main.ts`
 * through tsx, or the build (`dist/src/main.js`, built first) with `entry: 'build'`.
 */
export async function startEngineProcess(env: Record<string, string>, entry: EntryPoint = 'source'): Promise<EngineProcess> {
  if (entry === 'build') await ensureBuilt();
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, nodeArgs(entry), {
    // The build finds config/ and images/ from its own location, wherever it is started.
    cwd: entry === 'build' ? tmpdir() : ROOT_DIR,
    env: { ...process.env, LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  // Generous: a loaded machine (CI shares two cores with Docker) can take a while to start Node.js.
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`engine exited during start-up:\n${log}`);
    if (await fetch(`${url}/health`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`engine did not start within 90 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    output: () => log,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}
