import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.ts';

export interface PrivateRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Stops the server: clients see connection errors until start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port, with no data (nothing is ever saved). */
  start(): Promise<void>;
  /** Stops the server and deletes its directory. */
  destroy(): Promise<void>;
}

/** Servers still running when the test process exits (or is told to stop by a signal) are killed. */
const live = new Set<ChildProcess>();
function killAll(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // best effort
    }
  }
  live.clear();
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = () => {
    killAll();
    process.removeListener(signal, onSignal);
    // Nobody else handles it: die of it, as we would have without this listener.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

function serverBinary(): string {
  const found = ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'].find((candidate) => existsSync(candidate));
  const onPath = (process.env.PATH ?? '')
    .split(path.delimiter)
    .map((dir) => path.join(dir, 'redis-server'))
    .find((candidate) => existsSync(candidate));
  const binary = onPath ?? found;
  if (binary === undefined) throw new Error('redis-server not found. Install it with: apt-get install -y redis-server');
  return binary;
}


/** One raw PING: true on `+PONG` (not on `-LOADING` or a refused connection). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('close', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts a private, throw-away redis-server for one test file: its own temp directory and a free port on
 * 127.0.0.1, no persistence, in the foreground (a child of this process). Resolves once it answers PING.
 */
export async function startRedis(): Promise<PrivateRedis> {
  const binary = serverBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'braindrill-redis-'));
  const logFile = path.join(dir, 'redis.log');
  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const log = () => {
    try {
      return readFileSync(logFile, 'utf8').trim().split('\n').slice(-10).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const launch = async () => {
    const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    args.push('--dir', dir, '--logfile', logFile, '--protected-mode', 'yes');
    const server = spawn(binary, args, { stdio: 'ignore', detached: false });
    server.unref(); // a forgotten server must not keep the test process alive; the exit hook kills it
    live.add(server);
    let gone = false;
    let spawnError: Error | undefined;
    exited = new Promise<void>((resolve) => {
      server.once('error', (error) => {
        spawnError = error;
        gone = true;
        live.delete(server);
        resolve();
      });
      server.once('exit', () => {
        gone = true;
        live.delete(server);
        resolve();
      });
    });
    const deadline = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (gone) throw new Error(`redis-server on port ${port} exited during start-up${spawnError ? `: ${spawnError.message}` : ''}\n${log()}`);
      if (Date.now() > deadline) {
        server.kill('SIGKILL');
        await exited;
        throw new Error(`redis-server on port ${port} did not answer PING within 10 s\n${log()}`);
      }
      await sleep(20);
    }
    child = server;
  };

  const stop = async () => {
    const running = child;
    if (!running) return;
    child = undefined;
    running.kill('SIGTERM');
    const killer = setTimeout(() => running.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      // The port may have been taken between freePort() and start: try another.
      if (attempt >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start: async () => {
      if (child) return;
      await launch();
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
