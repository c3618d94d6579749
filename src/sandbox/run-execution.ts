import { randomBytes } from 'node:crypto';
import { BraindrillError } from '../errors.ts';
import { hostDeadlineMs } from '../languages/deadlines.ts';
import type { Language } from '../languages/language.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { CappedBuffer } from './capped-buffer.ts';
import { classify, signalName } from './classify.ts';
import type { ContainerRuntime, SandboxContainer, SupervisorChannel } from './container-runtime.ts';
import type { ExecutionPlan, ExecutionResult, StepStats } from './execution.ts';
import { FrameDecoder, FrameType, encodeRequest, parseResult, type Frame, type StepReport, type SupervisorReport } from './protocol.ts';

export interface ExecutionDeps {
  runtime: ContainerRuntime;
  metrics: Metrics;
  log: Logger;
  /**
   * Receives the removal of a finished execution's container. The result does not wait for it (removing
   * takes ~100 ms); the owner awaits pending removals before it shuts down.
   */
  trackRemoval: (removal: Promise<void>) => void;
}

/** A started sandbox container whose supervisor waits for one request on the attached channel. */
export interface ReadyContainer {
  container: SandboxContainer;
  channel: SupervisorChannel;
  /** The `braindrill.execution` label: the job id, or `warm-…` for a pooled container. */
  label: string;
}

/** How long after its result a container is let go: about as long as saving and sending the answer takes. */
const RELEASE_DELAY_MS = 25;

/**
 * Creates, attaches and starts a container for `language`. Attach comes before start so no output is
 * lost; `onCreated` lets the caller remove the container if a later step fails.
 */
export async function startContainer(
  runtime: ContainerRuntime,
  language: Language,
  label: string,
  onCreated: (container: SandboxContainer) => void = () => undefined,
): Promise<ReadyContainer> {
  const container = await runtime.create(language, label);
  onCreated(container);
  const channel = await container.attach();
  await container.start();
  return { container, channel, label };
}

/**
 * One execution's whole life: a fresh hardened container (started here, or taken warm from the pool),
 * the request, frames until the supervisor's result (or a limit, a cancel, or a crash), then removal of the
 * container on every path. A container never serves a second execution.
 */
export function runExecution(deps: ExecutionDeps, plan: ExecutionPlan, signal?: AbortSignal, warm?: ReadyContainer): Promise<ExecutionResult> {
  return new Execution(deps, plan, signal, warm).run();
}

type Phase = 'creating' | 'running';

class Execution {
  private readonly log: Logger;
  private readonly nonce = randomBytes(16);
  private readonly startedAt = performance.now();
  private readonly stdout: CappedBuffer;
  private readonly stderr: CappedBuffer;
  private readonly compileStdout: CappedBuffer;
  private readonly compileStderr: CappedBuffer;
  private readonly diagnostics = new CappedBuffer(4096);
  private phase: Phase = 'creating';
  /** Known from creation on (a warm one from the start), so every path can remove it. */
  private container: SandboxContainer | undefined;
  private report: SupervisorReport | null = null;
  private hostTimedOut = false;
  private cancelled: boolean;
  private protocolFailure: string | null = null;
  /** A hardening step that could not be applied: the program must not run. */
  private hardeningFailure: string | null = null;
  /** Ends the exchange early (a cancel); set while the exchange runs. */
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => {
    this.cancelled = true;
    this.container?.kill().catch(() => undefined);
    this.wake?.();
  };

  constructor(
    private readonly deps: ExecutionDeps,
    private readonly plan: ExecutionPlan,
    private readonly signal: AbortSignal | undefined,
    private readonly warm: ReadyContainer | undefined,
  ) {
    this.log = deps.log.child({ job: plan.id, language: plan.language.id });
    this.container = warm?.container;
    this.cancelled = signal?.aborted ?? false;
    this.stdout = new CappedBuffer(plan.outputKeepBytes);
    this.stderr = new CappedBuffer(plan.outputKeepBytes);
    this.compileStdout = new CappedBuffer(plan.outputKeepBytes);
    this.compileStderr = new CappedBuffer(plan.outputKeepBytes);
  }

  async run(): Promise<ExecutionResult> {
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.deps.metrics.activeExecutions.inc();
    try {
      if (this.cancelled) return this.finish();
      const ready = this.warm ?? (await this.startCold());
      this.phase = 'running';
      if (this.cancelled) return this.finish();
      await this.exchange(ready);
      return this.finish(await this.explainMissingResult(ready.container));
    } catch (error) {
      if (error instanceof BraindrillError) throw error;
      this.log.error({ err: error, phase: this.phase }, 'execution failed inside the engine');
      this.protocolFailure = String(error);
      return this.finish();
    } finally {
      clearTimeout(this.timer);
      this.signal?.removeEventListener('abort', this.onAbort);
      this.deps.metrics.activeExecutions.dec();
      this.release();
    }
  }

  private async startCold(): Promise<ReadyContainer> {
    const began = performance.now();
    const ready = await startContainer(this.deps.runtime, this.plan.language, this.plan.id, (c) => (this.container = c));
    this.deps.metrics.containerStart.labels(this.plan.language.id).observe((performance.now() - began) / 1000);
    return ready;
  }

  /** Writes the request and reads frames until the result, the end of the stream, a limit or a cancel. */
  private async exchange({ container, channel }: ReadyContainer): Promise<void> {
    const plan = this.plan;
    const done = new Promise<void>((resolve) => {
      const decoder = new FrameDecoder();
      const kill = (why: 'timeout' | 'cancel') => {
        if (why === 'timeout') this.hostTimedOut = true;
        else this.cancelled = true;
        container.kill().catch(() => undefined);
        resolve();
      };
      channel.onDiagnostics((chunk) => this.diagnostics.push(chunk));
      channel.onFrames((chunk) => {
        let frames: Frame[];
        try {
          frames = decoder.push(chunk);
        } catch (error) {
          this.protocolFailure = String(error);
          return resolve();
        }
        for (const frame of frames) if (this.onFrame(frame, container, channel)) return resolve();
      });
      channel.onClose((error) => {
        if (error) this.protocolFailure = `attach stream: ${String(error)}`;
        resolve();
      });
      this.wake = resolve;
      if (this.cancelled) kill('cancel');
      this.timer = setTimeout(() => kill('timeout'), hostDeadlineMs(plan));
    });
    // The run step never gets the compiler's memory: the container's limit is lowered in between, or,
    // where it cannot change while running (gVisor), the run step's address space is capped instead.
    const lowers = plan.compile !== null && plan.compile.memoryMb !== plan.limits.memoryMb;
    const inPlace = container.memoryLowering === 'update';
    channel.write(
      encodeRequest({
        nonce: this.nonce,
        files: plan.files,
        compile: plan.compile,
        run: lowers && !inPlace ? { ...plan.run, addressSpaceMb: plan.limits.memoryMb } : plan.run,
        stdin: plan.stdin,
        env: plan.env,
        outputKeepBytes: plan.outputKeepBytes,
        outputMaxBytes: plan.outputMaxBytes,
        pauseAfterCompile: lowers && inPlace,
      }),
    );
    await done;
    clearTimeout(this.timer);
    // The supervisor stays until its stdin closes: closing it a little later starts the container's
    // teardown (dockerd's heaviest work) after this job's answer has gone out, not beside it.
    if (this.report !== null) setTimeout(() => channel.close(), RELEASE_DELAY_MS).unref();
    else channel.close();
  }

  /** Handles one frame; true when the exchange is over (the result came). */
  private onFrame(frame: Frame, container: SandboxContainer, channel: SupervisorChannel): boolean {
    switch (frame.type) {
      case FrameType.RUN_STDOUT: this.stdout.push(frame.payload); return false;
      case FrameType.RUN_STDERR: this.stderr.push(frame.payload); return false;
      case FrameType.COMPILE_STDOUT: this.compileStdout.push(frame.payload); return false;
      case FrameType.COMPILE_STDERR: this.compileStderr.push(frame.payload); return false;
      case FrameType.COMPILED:
        // Compilers get their own memory figure; the program gets the language's, or does not run: it must
        // never run with the compiler's limit (fail closed).
        container.setMemoryLimit(this.plan.limits.memoryMb).then(
          () => channel.write(Buffer.from([1])),
          (error: unknown) => this.failClosed('memory_limit_update', `could not lower the memory limit to ${this.plan.limits.memoryMb} MB after the compile step: ${message(error)}`, container),
        );
        return false;
      case FrameType.RESULT:
        try {
          this.report = parseResult(frame.payload, this.nonce);
        } catch (error) {
          this.protocolFailure = String(error);
        }
        return true;
    }
    return false;
  }

  /**
   * A hardening step could not be applied: the program does not run. The container is killed (and then
   * removed by force), the execution ends as `internal` with the cause, and the metric counts it.
   */
  private failClosed(kind: string, cause: string, container: SandboxContainer): void {
    this.hardeningFailure = cause;
    this.deps.metrics.sandboxFailures.labels(kind).inc();
    this.log.error({ cause }, 'a hardening step failed; the program does not run');
    container.kill().catch(() => undefined);
    this.wake?.();
  }

  /** No result: the supervisor itself died. The container's state says whether the OOM killer did it. */
  private async explainMissingResult(container: SandboxContainer): Promise<boolean> {
    if (this.report !== null) {
      if (this.report.error !== null) this.log.error({ cause: this.report.error }, 'the supervisor reported an error');
      return false;
    }
    if (this.cancelled || this.hardeningFailure !== null) return false;
    const state = await container.exitState();
    const oomKilled = state?.oomKilled === true;
    if (!oomKilled && !this.hostTimedOut) {
      const lastWords = this.diagnostics.bytes().toString('utf8').trim();
      this.protocolFailure ??= `the sandbox ended without a result (supervisor exit code ${state?.exitCode ?? 'unknown'}${lastWords ? `: ${lastWords.slice(0, 300)}` : ''})`;
      this.log.error({ cause: this.protocolFailure, diagnostics: lastWords, exitCode: state?.exitCode }, 'sandbox ended without a result');
    }
    return oomKilled;
  }

  /**
   * The container goes on every path. A supervisor that sent its result exits, and the container removes
   * itself: removing it again would double the engine's work. On every other path it may still run: force it.
   */
  private release(): void {
    const container = this.container;
    if (!container) return;
    this.deps.trackRemoval(this.report !== null ? container.waitRemoved() : container.remove());
  }

  private finish(oomKilled = false): ExecutionResult {
    const { report } = this;
    const outcome = classify({ report, hostTimedOut: this.hostTimedOut, cancelled: this.cancelled, oomKilled });
    const compileFailed = outcome.reason === 'compile_error';
    const run = report?.run ?? null;
    const compile = report?.compile ?? null;
    const stdoutBytes = this.stdout.bytes();
    const stderrBytes = compileFailed ? Buffer.concat([this.compileStdout.bytes(), this.compileStderr.bytes()]) : this.stderr.bytes();
    const truncated =
      this.stdout.overflowed ||
      this.stderr.overflowed ||
      (run !== null && (run.stdout_bytes > stdoutBytes.length || run.stderr_bytes > this.stderr.bytes().length || run.output_limited));
    const result: ExecutionResult = {
      ...outcome,
      stdout: stdoutBytes.toString('utf8'),
      stderr: stderrBytes.toString('utf8'),
      // Every internal failure says why: a hardening step first, then the supervisor's own error, then what the host saw.
      cause: outcome.reason === 'internal' ? (this.hardeningFailure ?? report?.error ?? this.protocolFailure ?? 'the sandbox ended without a result') : null,
      exitCode: run?.exit_code ?? (compileFailed ? (compile?.exit_code ?? null) : null),
      signal: signalName(run?.signal ?? null),
      executionTimeMs: run?.wall_ms ?? Math.round(performance.now() - this.startedAt),
      truncated,
      compile: compile && { ...stepStats(compile), stdout: this.compileStdout.bytes().toString('utf8'), stderr: this.compileStderr.bytes().toString('utf8') },
      run: run && stepStats(run),
      stdoutBytes,
      stderrBytes,
    };
    const { metrics } = this.deps;
    metrics.executions.labels(this.plan.language.id, result.status, result.reason ?? 'none').inc();
    metrics.executionDuration.labels(this.plan.language.id).observe((performance.now() - this.startedAt) / 1000);
    return result;
  }
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function stepStats(step: StepReport): StepStats {
  return {
    exitCode: step.exit_code,
    signal: signalName(step.signal),
    wallMs: step.wall_ms,
    cpuMs: step.cpu_ms,
    maxRssKb: step.max_rss_kb,
    warm: step.warm === true,
  };
}
