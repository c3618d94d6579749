import type Docker from 'dockerode';
import type { Language } from '../languages/language.ts';
import { initialMemoryMb } from './plan.ts';

const SUPERVISOR_PATH = '/usr/local/bin/bd-supervisor';
/**
 * The container starts as root with CAP_SETUID and CAP_SETGID only: the supervisor becomes uid 65533 at
 * once and runs every step as 65534 ("nobody") with no capability at all, so the program cannot signal,
 * renice or re-limit it (docs/protocol.md, "Identity and self-defence"). With user namespaces (deploy.sh
 * enables userns-remap) that root is an unprivileged id on the host.
 */
const CONTAINER_USER = '0:0';
const SUPERVISOR_CAPS = ['SETUID', 'SETGID'];

/** What every sandbox gets beyond its language's limits, decided once at start-up. */
export interface SandboxHardening {
  /** `seccomp=<profile JSON>`: our own profile (config/seccomp.json, checked at start-up; the API takes its text). */
  seccomp: string;
  /** The OCI runtime dockerd runs sandboxes with (runc, crun, runsc); undefined: dockerd's default. */
  ociRuntime?: string;
}

export const Label = {
  node: 'braindrill.node',
  execution: 'braindrill.execution',
  language: 'braindrill.language',
} as const;

const MB = 1024 * 1024;

/**
 * gVisor (`runsc`) runs the program on a kernel of its own, served by host threads of its own: the host's
 * pids limit counts those too (a sandbox whose Go runtime cannot start a thread dies, exit code 2), and a
 * running sandbox's limits cannot be changed (no `docker update`). Under it the program's process limit
 * is RLIMIT_NPROC, which gVisor's kernel counts per sandbox (under runc it would count every container's
 * uid 65534 on the host together), and the host's pids limit leaves this much room above it.
 */
const GVISOR_HOST_TASKS = 128;

export function isGvisor(ociRuntime: string | undefined): boolean {
  return ociRuntime === 'runsc';
}

/** The supervisor's arguments: the warm interpreter to start with the container, and its environment. */
export function supervisorArgs(language: Language): string[] {
  if (!language.run.warm) return [];
  return [...language.env.flatMap((pair) => ['--env', pair]), '--warm', ...language.run.warm];
}

/**
 * Docker create options for one execution of `language`. They depend on the language only, never on the
 * submission, so a container can be created before its job is known (the warm pool). Every hardening
 * flag is here, and docs/ARCHITECTURE.md says why each one is.
 */
export function containerOptions(language: Language, label: string, image: string, nodeId: string, hardening: SandboxHardening): Docker.ContainerCreateOptions {
  const limits = language.limits;
  const memory = initialMemoryMb(language) * MB;
  const pids = Math.max(limits.pids, language.compile?.pids ?? 0);
  const gvisor = isGvisor(hardening.ociRuntime);
  return {
    Image: image,
    Entrypoint: [SUPERVISOR_PATH],
    Cmd: supervisorArgs(language),
    User: CONTAINER_USER,
    WorkingDir: '/tmp',
    Env: [],
    Hostname: 'sandbox',
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    // When the one attached client goes away (its node died), stdin closes: a warm container's supervisor
    // then exits, and AutoRemove removes it.
    StdinOnce: true,
    Tty: false,
    NetworkDisabled: true,
    Labels: { [Label.node]: nodeId, [Label.execution]: label, [Label.language]: language.id },
    HostConfig: {
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,mode=1777,size=${limits.tmpfsMb}m` },
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: gvisor ? pids + GVISOR_HOST_TASKS : pids,
      NanoCpus: Math.round(limits.cpus * 1e9),
      // Half the default weight: under contention the engine (heartbeats, HTTP) is served first.
      CpuShares: 512,
      CapDrop: ['ALL'],
      CapAdd: SUPERVISOR_CAPS,
      SecurityOpt: ['no-new-privileges', hardening.seccomp],
      ...(hardening.ociRuntime ? { Runtime: hardening.ociRuntime } : {}),
      Privileged: false,
      IpcMode: 'none',
      LogConfig: { Type: 'none', Config: {} },
      Ulimits: [
        { Name: 'nofile', Soft: limits.nofile, Hard: limits.nofile },
        { Name: 'fsize', Soft: limits.fileSizeMb * MB, Hard: limits.fileSizeMb * MB },
        { Name: 'core', Soft: 0, Hard: 0 },
        ...(gvisor ? [{ Name: 'nproc', Soft: pids, Hard: pids }] : []),
      ],
      // Docker removes the container when the supervisor exits, even if this node died meanwhile.
      AutoRemove: true,
      Init: false,
    },
  };
}
