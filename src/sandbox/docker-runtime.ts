import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { ConfigError, DockerUnavailableError, ImageMissingError } from '../errors.ts';
import type { Language } from '../languages/language.ts';
import type { Logger } from '../observability/logger.ts';
import type { Settings } from '../settings.ts';
import type { ContainerRuntime, ListedContainer, SandboxContainer, SupervisorChannel } from './container-runtime.ts';
import { DockerStreamDemuxer } from './docker-demux.ts';
import { Label, containerOptions, isGvisor, type SandboxHardening } from './docker-options.ts';
import { AutoRemovals, forceRemove } from './removals.ts';
import { securityOptFor, type SeccompProfile } from './seccomp.ts';

export interface DockerRuntimeOptions {
  socketPath: string;
  image: string;
  nodeId: string;
  /** The seccomp profile (loaded and checked at start-up). */
  seccomp: SeccompProfile;
  /** SANDBOX_RUNTIME: `auto` picks crun where dockerd has it registered, else runc. */
  ociRuntime: OciRuntimeSetting;
  log: Logger;
}

export type OciRuntimeSetting = Settings['sandboxRuntime'];

/**
 * The OCI runtime for sandboxes among those dockerd has registered: `auto` prefers crun (C, no re-exec: a
 * shorter start than runc's); a runtime named explicitly that dockerd does not have is a start-up error,
 * never a silent fallback.
 */
export function chooseOciRuntime(setting: OciRuntimeSetting, registered: readonly string[]): string {
  if (setting === 'auto') return registered.includes('crun') ? 'crun' : 'runc';
  if (!registered.includes(setting)) {
    throw new ConfigError(`SANDBOX_RUNTIME=${setting}, but dockerd has no runtime "${setting}" registered (it has: ${registered.join(', ') || 'none'}). Register it (./deploy.sh does for crun and runsc) or set SANDBOX_RUNTIME=auto.`);
  }
  return setting;
}

/** The OCI runtimes dockerd has registered (by name). */
export async function registeredRuntimes(docker: Docker): Promise<string[]> {
  return Object.keys(((await docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes ?? {});
}

/** The hardening sandboxes get on a dockerd with these runtimes: the runtime `setting` picks, and the profile for it. */
export function hardeningFor(setting: OciRuntimeSetting, registered: readonly string[], seccomp: SeccompProfile): SandboxHardening {
  const ociRuntime = chooseOciRuntime(setting, registered);
  return { seccomp: securityOptFor(seccomp, ociRuntime), ociRuntime };
}

const MB = 1024 * 1024;
const statusCode = (error: unknown): number | undefined => (error as { statusCode?: number } | null)?.statusCode;

/** Sandboxes as Docker containers, through dockerode: the only module that talks to Docker. */
export class DockerRuntime implements ContainerRuntime {
  readonly docker: Docker;
  private readonly autoRemovals: AutoRemovals;
  /** Known once check() has asked dockerd which OCI runtimes it has. */
  private hardening: SandboxHardening;

  constructor(private readonly options: DockerRuntimeOptions) {
    this.docker = new Docker({ socketPath: options.socketPath });
    this.autoRemovals = new AutoRemovals(this.docker, options.nodeId, options.log);
    this.hardening = { seccomp: options.seccomp.securityOpt };
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  /** Docker answers, the OCI runtime is there, the image is here (never pulled); then follows this node's container removals. */
  async check(): Promise<void> {
    const { socketPath, image } = this.options;
    let registered: string[];
    try {
      registered = await registeredRuntimes(this.docker);
    } catch (error) {
      throw new DockerUnavailableError(socketPath, error);
    }
    this.hardening = hardeningFor(this.options.ociRuntime, registered, this.options.seccomp);
    this.options.log.info({ ociRuntime: this.hardening.ociRuntime, setting: this.options.ociRuntime, registered }, 'sandboxes run with this OCI runtime');
    try {
      await this.docker.getImage(image).inspect();
    } catch (error) {
      if (statusCode(error) === 404) throw new ImageMissingError(image);
      throw new DockerUnavailableError(socketPath, error);
    }
    await this.autoRemovals.start();
  }

  async create(language: Language, label: string): Promise<SandboxContainer> {
    const { image, nodeId, log } = this.options;
    try {
      const container = await this.docker.createContainer(containerOptions(language, label, image, nodeId, this.hardening));
      return new DockerSandboxContainer(container, isGvisor(this.hardening.ociRuntime) ? 'address-space' : 'update', this.autoRemovals, log);
    } catch (error) {
      if (statusCode(error) === 404) throw new ImageMissingError(image);
      throw error;
    }
  }

  async list(nodeId = this.options.nodeId): Promise<ListedContainer[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${Label.node}=${nodeId}`] } });
    return containers.map((c) => ({ id: c.Id, execution: c.Labels[Label.execution] ?? '' }));
  }

  remove(id: string): Promise<void> {
    return forceRemove(this.docker.getContainer(id), this.options.log);
  }

  close(): Promise<void> {
    return this.autoRemovals.close();
  }
}

class DockerSandboxContainer implements SandboxContainer {
  constructor(
    private readonly container: Docker.Container,
    readonly memoryLowering: SandboxContainer['memoryLowering'],
    private readonly autoRemovals: AutoRemovals,
    private readonly log: Logger,
  ) {}

  get id(): string {
    return this.container.id;
  }

  async attach(): Promise<SupervisorChannel> {
    const stream = (await this.container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
    return dockerChannel(stream);
  }

  async start(): Promise<void> {
    await this.container.start();
  }

  async setMemoryLimit(memoryMb: number): Promise<void> {
    await this.container.update({ Memory: memoryMb * MB, MemorySwap: memoryMb * MB });
  }

  async kill(): Promise<void> {
    await this.container.kill({ signal: 'SIGKILL' });
  }

  async exitState(): Promise<{ oomKilled: boolean; exitCode: number | null } | null> {
    return this.container.inspect().then(
      (info) => ({ oomKilled: info.State.OOMKilled === true, exitCode: info.State.ExitCode ?? null }),
      () => null,
    );
  }

  assign(jobId: string): void {
    // Operators (and `docker ps`) see which job a pooled container now runs.
    this.container.rename({ name: `bd-job-${jobId}-${randomBytes(2).toString('hex')}` }).catch(() => undefined);
  }

  waitRemoved(): Promise<void> {
    return this.autoRemovals.expect(this.container);
  }

  remove(): Promise<void> {
    return forceRemove(this.container, this.log);
  }
}

/** Docker's attach stream (non-TTY) multiplexes stdout and stderr; the channel splits them. */
function dockerChannel(stream: Duplex): SupervisorChannel {
  const frameListeners: ((chunk: Buffer) => void)[] = [];
  const diagnosticListeners: ((chunk: Buffer) => void)[] = [];
  const demuxer = new DockerStreamDemuxer((kind, payload) => {
    for (const listener of kind === 1 ? frameListeners : diagnosticListeners) listener(payload);
  });
  return {
    write: (bytes) => void stream.write(bytes),
    onFrames(listener) {
      // The stream stays paused (buffering) until someone reads the frames.
      if (frameListeners.length === 0) stream.on('data', (chunk: Buffer) => demuxer.push(chunk));
      frameListeners.push(listener);
    },
    onDiagnostics: (listener) => void diagnosticListeners.push(listener),
    onClose(listener) {
      const ended = () => listener();
      const failed = (error: Error) => listener(error);
      stream.on('end', ended);
      stream.on('close', ended);
      stream.on('error', failed);
      return () => {
        stream.off('end', ended);
        stream.off('close', ended);
        stream.off('error', failed);
      };
    },
    close: () => void stream.destroy(),
  };
}
