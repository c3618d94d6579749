import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { BraindrillError, ImageMissingError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { containerOptions } from './container.ts';
import { CappedBuffer, DockerStreamDemuxer } from './docker-stream.ts';
import type { ExecutionPlan, ExecutionResult, StepStats } from './execution.ts';
import type { Language } from '../languages/language.ts';
import { classify, signalName } from './outcome.ts';
import type { AutoRemovals } from './removals.ts';
import { FrameDecoder, FrameType, encodeRequest, parseResult, type StepReport, type SupervisorReport } from './protocol.ts';

export interface SandboxDeps {
  docker: Docker;
  image: string;
  nodeId: string;
  metrics: Metrics;
  log: Logger;
  /**
   * Receives the removal of a finished execution's container. The result does not wait for it (removing
   * takes ~100 ms); the owner awaits pending removals before it shuts down. Without it, removal is awaited.
   */
  trackRemoval?: (removal: Promise<void>) => void;
  /** Knows when a container that removes itself (AutoRemove) is gone; without it, removal is forced. */
  autoRemovals?: AutoRemovals;
}

/** Time the host allows beyond the steps' own limits before it kills the container itself. */
export const HOST_GRACE_MS = 3000;
/** How long after its result a container is let go: about as long as saving and sending the answer takes. */
const RELEASE_DELAY_MS = 25;
const MB = 1024 * 1024;

type Phase = 'creating' | 'running';

/** A started sandbox container whose supervisor waits for one request on the attached stream. */
export interface SandboxContainer {
  container: Docker.Container;
  stream: Duplex;
  /** The `braindrill.execution` label: the job id, or `warm-…` for a pooled container. */
  label: string;
}

/**
 * Creates, attaches and starts a container for `language`. Attach comes before start so no output is
 * lost; `onCreated` lets the caller remove the container if a later step fails.
 */
export async function startContainer(
  deps: SandboxDeps,
  language: Language,
  label: string,
  onCreated: (container: Docker.Container) => void = () => undefined,
): Promise<SandboxContainer> {
  let container: Docker.Container;
  try {
    container = await deps.docker.createContainer(containerOptions(language, label, deps.image, deps.nodeId));
  } catch (error) {
    if (statusCode(error) === 404) throw new ImageMissingError(deps.image);
    throw error;
  }
  onCreated(container);
  const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
  await container.start();
  return { container, stream, label };
}

function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number } | null)?.statusCode;
}

/**
 * One execution's whole life: a fresh hardened container (started here, or taken warm from the pool),
 * the request, frames until the supervisor's result (or a limit, a cancel, or a crash), then removal of the
 * container on every path. A container never serves a second execution.
 */
export async function runExecution(deps: SandboxDeps, plan: ExecutionPlan, signal?: AbortSignal, warm?: SandboxContainer): Promise<ExecutionResult> {
  let prepared = warm;
  const { metrics } = deps;
  const log = deps.log.child({ job: plan.id, language: plan.language.id });
  const nonce = randomBytes(16);
  let phase: Phase = 'creating';
  // A warm container is this execution's from the start: even a cancel before it is used removes it.
  let container: Docker.Container | undefined = warm?.container;

  const stdout = new CappedBuffer(plan.outputKeepBytes);
  const stderr = new CappedBuffer(plan.outputKeepBytes);
  const compileStdout = new CappedBuffer(plan.outputKeepBytes);
  const compileStderr = new CappedBuffer(plan.outputKeepBytes);
  const diagnostics = new CappedBuffer(4096);
  let report: SupervisorReport | null = null;
  let hostTimedOut = false;
  let cancelled = signal?.aborted ?? false;
  // A cancel may come at any phase; until the session below exists, it only marks and kills.
  let wake: (() => void) | undefined;
  const onAbort = () => {
    cancelled = true;
    container?.kill({ signal: 'SIGKILL' }).catch(() => undefined);
    wake?.();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let protocolFailure: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  const startedAt = performance.now();

  metrics.activeExecutions.inc();
  try {
    if (cancelled) return finish();
    if (!prepared) {
      const created = performance.now();
      prepared = await startContainer(deps, plan.language, plan.id, (c) => (container = c));
      metrics.containerStart.labels(plan.language.id).observe((performance.now() - created) / 1000);
    }
    container = prepared.container;
    const live = container;
    const stream = prepared.stream;
    phase = 'running';
    if (cancelled) return finish();
    const pauseAfterCompile = plan.compile !== null && plan.compile.memoryMb !== plan.limits.memoryMb;

    const done = new Promise<void>((resolve) => {
      const decoder = new FrameDecoder();
      const kill = (why: 'timeout' | 'cancel') => {
        if (why === 'timeout') hostTimedOut = true;
        else cancelled = true;
        live.kill({ signal: 'SIGKILL' }).catch(() => undefined);
        resolve();
      };
      const demuxer = new DockerStreamDemuxer((kind, payload) => {
        if (kind === 2) return diagnostics.push(payload);
        let frames;
        try {
          frames = decoder.push(payload);
        } catch (error) {
          protocolFailure = String(error);
          return resolve();
        }
        for (const frame of frames) {
          switch (frame.type) {
            case FrameType.RUN_STDOUT: stdout.push(frame.payload); break;
            case FrameType.RUN_STDERR: stderr.push(frame.payload); break;
            case FrameType.COMPILE_STDOUT: compileStdout.push(frame.payload); break;
            case FrameType.COMPILE_STDERR: compileStderr.push(frame.payload); break;
            case FrameType.COMPILED:
              // Compilers get their own memory figure; the program gets the language's.
              live
                .update({ Memory: plan.limits.memoryMb * MB, MemorySwap: plan.limits.memoryMb * MB })
                .catch((error: unknown) => log.warn({ err: error }, 'could not lower memory after compile; keeping the compile limit'))
                .finally(() => stream.write(Buffer.from([1])));
              break;
            case FrameType.RESULT:
              try {
                report = parseResult(frame.payload, nonce);
              } catch (error) {
                protocolFailure = String(error);
              }
              return resolve();
          }
        }
      });
      stream.on('data', (chunk: Buffer) => demuxer.push(chunk));
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', (error) => {
        protocolFailure = `attach stream: ${String(error)}`;
        resolve();
      });
      wake = resolve;
      if (cancelled) kill('cancel');
      const limitMs = (plan.compile?.timeoutMs ?? 0) + plan.run.timeoutMs + HOST_GRACE_MS;
      timer = setTimeout(() => kill('timeout'), limitMs);
    });

    stream.write(
      encodeRequest({
        nonce,
        files: plan.files,
        compile: plan.compile,
        run: plan.run,
        stdin: plan.stdin,
        env: plan.env,
        outputKeepBytes: plan.outputKeepBytes,
        outputMaxBytes: plan.outputMaxBytes,
        pauseAfterCompile,
      }),
    );
    await done;
    clearTimeout(timer);
    // The supervisor stays until its stdin closes: closing it a little later starts the container's
    // teardown (dockerd's heaviest work) after this job's answer has gone out, not beside it.
    if (report !== null) setTimeout(() => stream.destroy(), RELEASE_DELAY_MS).unref();
    else stream.destroy();

    let oomKilled = false;
    if (report === null && !cancelled) {
      // No result: the supervisor itself died. Docker knows whether the OOM killer did it.
      const state = await live.inspect().then((info) => info.State, () => null);
      oomKilled = state?.OOMKilled === true;
      if (!oomKilled && !hostTimedOut) {
        log.error({ protocolFailure, diagnostics: diagnostics.bytes().toString('utf8'), exitCode: state?.ExitCode }, 'sandbox ended without a result');
      }
    }
    return finish(oomKilled);
  } catch (error) {
    if (error instanceof BraindrillError) throw error;
    log.error({ err: error, phase }, 'execution failed inside the engine');
    protocolFailure = String(error);
    return finish();
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    metrics.activeExecutions.dec();
    if (container) {
      // A supervisor that sent its result exits, and AutoRemove takes its container away: removing it
      // again would double dockerd's work. On every other path the container may still run: force it.
      const removal = report !== null && deps.autoRemovals ? deps.autoRemovals.expect(container) : removeContainer(container, log);
      if (deps.trackRemoval) deps.trackRemoval(removal);
      else await removal;
    }
  }

  function finish(oomKilled = false): ExecutionResult {
    const outcome = classify({ report, hostTimedOut, cancelled, oomKilled });
    const compileFailed = outcome.reason === 'compile_error';
    const run = report?.run ?? null;
    const compile = report?.compile ?? null;
    const stdoutBytes = stdout.bytes();
    const stderrBytes = compileFailed ? Buffer.concat([compileStdout.bytes(), compileStderr.bytes()]) : stderr.bytes();
    const truncated =
      stdout.overflowed || stderr.overflowed || (run !== null && (run.stdout_bytes > stdoutBytes.length || run.stderr_bytes > stderr.bytes().length || run.output_limited));
    const result: ExecutionResult = {
      ...outcome,
      stdout: stdoutBytes.toString('utf8'),
      stderr: stderrBytes.toString('utf8') || (outcome.reason === 'internal' && protocolFailure ? `internal error: ${protocolFailure}` : ''),
      exitCode: run?.exit_code ?? (compileFailed ? (compile?.exit_code ?? null) : null),
      signal: signalName(run?.signal ?? null),
      executionTimeMs: run?.wall_ms ?? Math.round(performance.now() - startedAt),
      truncated,
      compile: compile && { ...stepStats(compile), stdout: compileStdout.bytes().toString('utf8'), stderr: compileStderr.bytes().toString('utf8') },
      run: run && stepStats(run),
      stdoutBytes,
      stderrBytes,
    };
    metrics.executions.labels(plan.language.id, result.status, result.reason ?? 'none').inc();
    metrics.executionDuration.labels(plan.language.id).observe((performance.now() - startedAt) / 1000);
    return result;
  }
}

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

/**
 * Kill and remove in one call. A container already gone is fine; one being removed by someone else is
 * waited for; anything else (dockerd still starting it, say) is retried with backoff.
 */
export async function removeContainer(container: Docker.Container, log: Logger): Promise<void> {
  for (let attempt = 1; attempt <= 6; attempt++) {
    try {
      await container.remove({ force: true, v: true });
      return;
    } catch (error) {
      const code = statusCode(error);
      if (code === 404) return;
      if (attempt === 6) {
        log.error({ err: error, container: container.id }, 'could not remove sandbox container; the reaper will');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
  }
}
