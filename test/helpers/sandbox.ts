import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { loadLanguages, type Language } from '../../src/languages/language.ts';
import { DockerStreamDemuxer } from '../../src/sandbox/docker-demux.ts';
import { Label, containerOptions, isGvisor } from '../../src/sandbox/docker-options.ts';
import { runtimeImageTag } from '../../src/sandbox/image.ts';
import { planExecution } from '../../src/sandbox/plan.ts';
import { FrameDecoder, FrameType, encodeRequest, parseResult, type SupervisorReport } from '../../src/sandbox/protocol.ts';
import { ROOT_DIR, loadSettings } from '../../src/settings.ts';
import { engineHardening } from '../../support/hardening.ts';

/**
 * One request straight through a sandbox container, without the engine: the engine's own create options
 * (src/sandbox/docker-options.ts, with its seccomp profile and OCI runtime), optionally changed by `tweak`
 * (Docker's default profile instead, the supervisor sharing the program's uid...), and the supervisor
 * protocol spoken here. For the hostile suite, which compares configurations. The container is removed
 * on every path.
 */

export const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
export const image = process.env.RUNTIME_IMAGE ?? runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime'));
export const languages = loadLanguages(path.join(ROOT_DIR, 'config', 'languages.json'));
/** Sandboxes run on gVisor (SANDBOX_RUNTIME=runsc): its kernel answers some calls differently (docs/SECURITY.md, section 7). */
export const GVISOR = isGvisor(loadSettings(process.env).sandboxRuntime);
/**
 * The node label every container this test process starts carries: its own leftovers can be found by
 * it. One per process, because test files run in parallel and one file's running containers are not
 * another's leftovers.
 */
export const DIRECT_NODE_ID = `test-direct-${process.pid}`;

let engine: ReturnType<typeof engineHardening> | null = null;
const hardening = () => (engine ??= engineHardening(docker));

export function language(id: string): Language {
  const found = languages.find((l) => l.id === id);
  if (!found) throw new Error(`no language ${id}`);
  return found;
}

export interface DirectRun {
  language: Language;
  /** The first is the entry file; without a name it is named as the engine names it (Java: its public class). */
  files: { name?: string; content: string | Buffer }[];
  /** The run step's argv (user args appended); default: the language's, with {file}/{stem}/{sources} expanded. */
  runArgv?: string[];
  args?: string[];
  stdin?: string;
  warm?: boolean;
  /** The run step's RLIMIT_AS (RUN_ADDRESS_SPACE_MB), as the engine asks under gVisor. */
  addressSpaceMb?: number;
  /** Changes the create options (SecurityOpt, User, CapAdd...) after containerOptions() built them. */
  tweak?: (options: Docker.ContainerCreateOptions) => void;
  /** Milliseconds to wait after start before the request is written (lets a warm interpreter start). */
  delayMs?: number;
  outputKeepBytes?: number;
  outputMaxBytes?: number;
  /** Another runtime image than this checkout's (an older supervisor, for comparison). */
  image?: string;
}

export interface DirectResult {
  report: SupervisorReport | null;
  /** Why there is no report (stream ended, bad nonce...). */
  failure: string | null;
  stdout: string;
  stderr: string;
  compileStdout: string;
  compileStderr: string;
  /** What the container wrote on its stderr stream (the supervisor's own last words, if any). */
  diagnostics: string;
  exitCode: number | null;
  oomKilled: boolean;
}


/** Docker's default seccomp profile instead of ours (what the engine used before it had its own). */
export function withDockerDefaultSeccomp(options: Docker.ContainerCreateOptions): void {
  options.HostConfig!.SecurityOpt = (options.HostConfig!.SecurityOpt ?? []).filter((opt: string) => !opt.startsWith('seccomp='));
}

/**
 * The supervisor's shared-uid mode (what the engine used before the own-uid mode): the container starts as
 * 65534 with no capability, the supervisor and the program share that uid.
 */
export function withSharedUid(options: Docker.ContainerCreateOptions): void {
  options.User = '65534:65534';
  delete options.HostConfig!.CapAdd;
}

/**
 * The supervisor's own-uid mode, the engine's: the container starts as root with CAP_SETUID and
 * CAP_SETGID only (still no-new-privileges); the supervisor becomes uid 65533 and runs every step as 65534.
 */
export function withOwnUid(options: Docker.ContainerCreateOptions): void {
  options.User = '0:0';
  options.HostConfig!.CapAdd = ['SETUID', 'SETGID'];
}

export async function runDirect(run: DirectRun): Promise<DirectResult> {
  const lang = run.language;
  // File names and argv exactly as the engine derives them (the contents stay bytes: binaries pass too).
  const plan = planExecution(
    'direct',
    lang,
    { files: run.files.map((f) => ({ ...(f.name ? { name: f.name } : {}), content: f.content.toString() })), stdin: '', args: run.args ?? [] },
    { outputKeepBytes: run.outputKeepBytes ?? 65536, outputDrainFactor: 16 },
  );
  const options = containerOptions(lang, `direct-${randomBytes(4).toString('hex')}`, run.image ?? image, DIRECT_NODE_ID, await hardening());
  options.HostConfig!.AutoRemove = false; // removed below, after its exit code was read
  run.tweak?.(options);
  const container = await docker.createContainer(options);
  try {
    const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
    await container.start();
    if (run.delayMs) await new Promise((r) => setTimeout(r, run.delayMs));
    const nonce = randomBytes(16);
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], compileStdout: [] as Buffer[], compileStderr: [] as Buffer[], diagnostics: [] as Buffer[] };
    let report: SupervisorReport | null = null;
    let failure: string | null = null;
    const limitMs = (lang.compile?.timeoutMs ?? 0) + lang.limits.timeoutMs + 10_000;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        failure = 'no result within the limits + 10 s';
        resolve();
      }, limitMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const decoder = new FrameDecoder();
      const demuxer = new DockerStreamDemuxer((kind, payload) => {
        if (kind === 2) return void out.diagnostics.push(Buffer.from(payload));
        let frames;
        try {
          frames = decoder.push(payload);
        } catch (error) {
          failure = String(error);
          return done();
        }
        for (const frame of frames) {
          const copy = Buffer.from(frame.payload);
          if (frame.type === FrameType.RUN_STDOUT) out.stdout.push(copy);
          else if (frame.type === FrameType.RUN_STDERR) out.stderr.push(copy);
          else if (frame.type === FrameType.COMPILE_STDOUT) out.compileStdout.push(copy);
          else if (frame.type === FrameType.COMPILE_STDERR) out.compileStderr.push(copy);
          else if (frame.type === FrameType.COMPILED) stream.write(Buffer.from([1]));
          else if (frame.type === FrameType.RESULT) {
            try {
              report = parseResult(copy, nonce);
            } catch (error) {
              failure = String(error);
            }
            return done();
          }
        }
      });
      stream.on('data', (chunk: Buffer) => demuxer.push(chunk));
      stream.on('end', () => {
        failure ??= 'the stream ended without a result';
        done();
      });
      stream.on('error', (error) => {
        failure ??= `attach stream: ${String(error)}`;
        done();
      });
      const files = run.files.map((f, i) => ({ name: plan.files[i]!.name, content: Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content) }));
      const compile = plan.compile ? { argv: plan.compile.argv, timeoutMs: plan.compile.timeoutMs } : null;
      const argv = run.runArgv ? [...run.runArgv, ...(run.args ?? [])] : plan.run.argv;
      stream.write(
        encodeRequest({
          nonce,
          files,
          compile,
          run: { argv, timeoutMs: lang.limits.timeoutMs, warm: run.warm ?? false, ...(run.addressSpaceMb ? { addressSpaceMb: run.addressSpaceMb } : {}) },
          stdin: Buffer.from(run.stdin ?? ''),
          env: lang.env,
          outputKeepBytes: run.outputKeepBytes ?? 65536,
          outputMaxBytes: run.outputMaxBytes ?? 65536 * 16,
          pauseAfterCompile: lang.compile !== null,
        }),
      );
    });
    stream.destroy();
    if (report === null) await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
    const state = await container
      .wait()
      .then(() => container.inspect())
      .then((info) => info.State, () => null);
    const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
    return {
      report,
      failure: report ? null : failure,
      stdout: text(out.stdout),
      stderr: text(out.stderr),
      compileStdout: text(out.compileStdout),
      compileStderr: text(out.compileStderr),
      diagnostics: text(out.diagnostics),
      exitCode: state?.ExitCode ?? null,
      oomKilled: state?.OOMKilled === true,
    };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** Containers this helper started that are still there (should be none). */
export async function directLeftovers(): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${Label.node}=${DIRECT_NODE_ID}`] } });
}
