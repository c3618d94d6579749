import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Language } from '../../src/languages/language.ts';
import type { ContainerRuntime, ListedContainer, SandboxContainer, SupervisorChannel } from '../../src/sandbox/container-runtime.ts';
import { FrameType, MAGIC, NONCE_BYTES, Tag, type StepReport } from '../../src/sandbox/protocol.ts';

/**
 * A container runtime for tests of the layers above the sandbox (the fast tier): no Docker, no
 * isolation. Each "container" is a stand-in for the supervisor written in TypeScript: it reads the
 * same framed request, runs the steps as ordinary host processes (python3, node, bash from the host's
 * PATH) in a temporary directory with their time limits and output caps, and answers with the same
 * frames. Everything above the runtime (the runner, frames, classify, the warm pool, removal, the job
 * lifecycle) runs for real. Never used in production: the sandbox guarantees come from Docker.
 */
export class MemoryRuntime implements ContainerRuntime {
  readonly containers = new Map<string, MemoryContainer>();

  constructor(readonly nodeId: string) {}

  async ping(): Promise<void> {}
  async check(): Promise<void> {}

  async create(language: Language, label: string): Promise<SandboxContainer> {
    const container = new MemoryContainer(`mem-${randomBytes(6).toString('hex')}`, label, language, () => this.containers.delete(container.id));
    this.containers.set(container.id, container);
    return container;
  }

  async list(nodeId = this.nodeId): Promise<ListedContainer[]> {
    if (nodeId !== this.nodeId) return [];
    return [...this.containers.values()].map((c) => ({ id: c.id, execution: c.label }));
  }

  async remove(id: string): Promise<void> {
    await this.containers.get(id)?.remove();
  }

  async close(): Promise<void> {}

  /** Containers that run (or ran) a job, as opposed to pooled ones still waiting for one. */
  executionContainers(includeWaiting = false): MemoryContainer[] {
    return [...this.containers.values()].filter((c) => includeWaiting || !c.label.startsWith('warm-') || c.assigned);
  }
}

type Listener<T> = (value: T) => void;

interface Request {
  nonce: Buffer;
  files: { name: string; data: Buffer }[];
  compile: string[];
  compileTimeoutMs: number;
  run: string[];
  runTimeoutMs: number;
  stdin: Buffer;
  env: string[];
  keep: number;
  max: number;
  pauseAfterCompile: boolean;
}

export class MemoryContainer implements SandboxContainer {
  assigned = false;
  private readonly frameListeners: Listener<Buffer>[] = [];
  private readonly closeListeners = new Set<Listener<Error | undefined>>();
  private input = Buffer.alloc(0);
  private inputWaiter: (() => void) | null = null;
  private stdinClosed = false;
  private child: ChildProcess | null = null;
  private closed = false;
  private exited: Promise<void> = Promise.resolve();
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'braindrill-memory-box-'));

  constructor(
    readonly id: string,
    readonly label: string,
    private readonly language: Language,
    private readonly onGone: () => void,
  ) {}

  async attach(): Promise<SupervisorChannel> {
    return {
      write: (bytes) => {
        this.input = Buffer.concat([this.input, bytes]);
        this.inputWaiter?.();
      },
      onFrames: (listener) => void this.frameListeners.push(listener),
      onDiagnostics: () => undefined,
      onClose: (listener) => {
        this.closeListeners.add(listener);
        return () => void this.closeListeners.delete(listener);
      },
      close: () => {
        this.stdinClosed = true;
        this.inputWaiter?.();
      },
    };
  }

  async start(): Promise<void> {
    this.exited = this.supervise().finally(() => this.end());
  }

  readonly memoryLowering: SandboxContainer['memoryLowering'] = 'update';
  async setMemoryLimit(): Promise<void> {}

  async kill(): Promise<void> {
    this.killChild();
    this.end();
  }

  async exitState(): Promise<{ oomKilled: boolean; exitCode: number | null }> {
    return { oomKilled: false, exitCode: 137 };
  }

  assign(): void {
    this.assigned = true;
  }

  async waitRemoved(): Promise<void> {
    await this.exited;
  }

  async remove(): Promise<void> {
    this.killChild();
    this.stdinClosed = true;
    this.inputWaiter?.();
    this.end();
    await this.exited;
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.killChild();
    rmSync(this.dir, { recursive: true, force: true });
    this.onGone();
    for (const listener of [...this.closeListeners]) listener(undefined);
  }

  private killChild(): void {
    const pid = this.child?.pid;
    if (pid !== undefined && this.child?.exitCode === null) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  private send(type: number, payload: Buffer): void {
    if (this.closed) return;
    const header = Buffer.alloc(5);
    header.writeUInt8(type, 0);
    header.writeUInt32BE(payload.length, 1);
    for (const listener of this.frameListeners) listener(Buffer.concat([header, payload]));
  }

  /** Bytes of stdin: waits until `n` are there (or stdin closes: null). */
  private async read(n: number): Promise<Buffer | null> {
    while (this.input.length < n) {
      if (this.stdinClosed || this.closed) return null;
      await new Promise<void>((resolve) => (this.inputWaiter = resolve));
      this.inputWaiter = null;
    }
    const bytes = this.input.subarray(0, n);
    this.input = this.input.subarray(n);
    return bytes;
  }

  private async supervise(): Promise<void> {
    const request = await this.readRequest();
    if (!request) return;
    for (const file of request.files) writeFileSync(path.join(this.dir, file.name), file.data);
    writeFileSync(path.join(this.dir, '.stdin'), request.stdin);
    let compile: StepReport | null = null;
    if (request.compile.length > 0) {
      compile = await this.step(request.compile, request.compileTimeoutMs, request, FrameType.COMPILE_STDOUT, null);
      if (compile.exit_code !== 0 || compile.timed_out || compile.output_limited) return this.result(request, compile, null);
      if (request.pauseAfterCompile) {
        this.send(FrameType.COMPILED, Buffer.alloc(0));
        if ((await this.read(1))?.[0] !== 1) return this.result(request, compile, null, 'no go-ahead after compile');
      }
    }
    const run = await this.step(request.run, request.runTimeoutMs, request, FrameType.RUN_STDOUT, path.join(this.dir, '.stdin'));
    this.result(request, compile, run);
    // As the supervisor: stay until stdin closes (at most 5 s), then exit.
    await Promise.race([this.read(Number.MAX_SAFE_INTEGER), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  }

  private result(request: Request, compile: StepReport | null, run: StepReport | null, error: string | null = null): void {
    const report = { error, compile, run, pids_limited: false, oom_killed: false };
    this.send(FrameType.RESULT, Buffer.concat([request.nonce, Buffer.from(JSON.stringify(report))]));
  }

  /** One step as a host process group: output relayed up to `keep` per stream, killed past `max` or the deadline. */
  private step(argv: string[], timeoutMs: number, request: Request, stdoutFrame: number, stdinFile: string | null): Promise<StepReport> {
    const started = performance.now();
    const env = Object.fromEntries([`PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, `HOME=${this.dir}`, 'LANG=C.UTF-8', `TMPDIR=${this.dir}`, ...request.env].map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
    const [command = 'false', ...args] = argv;
    return new Promise((resolve) => {
      const child = spawn(command, args, { cwd: this.dir, env, detached: true, stdio: [stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
      this.child = child;
      if (stdinFile && child.stdin) {
        child.stdin.on('error', () => undefined);
        child.stdin.end(request.stdin);
      }
      const counts = [0, 0];
      let timedOut = false;
      let limited = false;
      const relay = (index: 0 | 1) => (chunk: Buffer) => {
        const before = counts[index] ?? 0;
        counts[index] = before + chunk.length;
        const room = Math.max(0, request.keep - before);
        if (room > 0) this.send(stdoutFrame + index, chunk.subarray(0, room));
        if ((counts[0] ?? 0) + (counts[1] ?? 0) > request.max && !limited) {
          limited = true;
          this.killChild();
        }
      };
      child.stdout?.on('data', relay(0));
      child.stderr?.on('data', relay(1));
      const timer = setTimeout(() => {
        timedOut = true;
        this.killChild();
      }, timeoutMs);
      child.on('error', (error) => {
        relay(1)(Buffer.from(`bd-supervisor: cannot execute ${command}: ${error.message}\n`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.killChild();
        const signalNumber = signal ? (SIGNALS[signal] ?? 9) : null;
        resolve({
          exit_code: signal ? null : (code ?? 127),
          signal: timedOut ? 9 : signalNumber,
          timed_out: timedOut,
          output_limited: limited,
          warm: false,
          wall_ms: Math.round(performance.now() - started),
          cpu_ms: 0,
          max_rss_kb: 0,
          stdout_bytes: counts[0] ?? 0,
          stderr_bytes: counts[1] ?? 0,
        });
      });
    });
  }

  private async readRequest(): Promise<Request | null> {
    const magic = await this.read(MAGIC.length);
    if (!magic?.equals(MAGIC)) return null;
    const request: Request = { nonce: Buffer.alloc(NONCE_BYTES), files: [], compile: [], compileTimeoutMs: 0, run: [], runTimeoutMs: 0, stdin: Buffer.alloc(0), env: [], keep: 0, max: 0, pauseAfterCompile: false };
    for (;;) {
      const header = await this.read(5);
      if (!header) return null;
      const tag = header.readUInt8(0);
      const value = (await this.read(header.readUInt32BE(1))) ?? Buffer.alloc(0);
      const text = value.toString('utf8');
      const u32 = value.length === 4 ? value.readUInt32BE(0) : 0;
      switch (tag) {
        case Tag.END: return request;
        case Tag.NONCE: request.nonce = Buffer.from(value); break;
        case Tag.FILE_NAME: request.files.push({ name: text, data: Buffer.alloc(0) }); break;
        case Tag.FILE_DATA: { const last = request.files.at(-1); if (last) last.data = Buffer.from(value); break; }
        case Tag.COMPILE_ARG: request.compile.push(text); break;
        case Tag.COMPILE_TIMEOUT_MS: request.compileTimeoutMs = u32; break;
        case Tag.RUN_ARG: request.run.push(text); break;
        case Tag.RUN_TIMEOUT_MS: request.runTimeoutMs = u32; break;
        case Tag.STDIN: request.stdin = Buffer.from(value); break;
        case Tag.ENV: request.env.push(text); break;
        case Tag.OUTPUT_KEEP: request.keep = u32; break;
        case Tag.OUTPUT_MAX: request.max = u32; break;
        case Tag.PAUSE_AFTER_COMPILE: request.pauseAfterCompile = true; break;
        default: break; // RUN_WARM: this stand-in always runs cold
      }
    }
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGABRT: 6, SIGFPE: 8, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGXFSZ: 25 };
