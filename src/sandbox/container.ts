import type Docker from 'dockerode';
import type { ExecutionPlan } from './execution.ts';

export const SUPERVISOR_PATH = '/usr/local/bin/bd-supervisor';
/** Unprivileged uid:gid ("nobody") for everything inside the sandbox. */
export const SANDBOX_USER = '65534:65534';

export const Label = {
  node: 'braindrill.node',
  execution: 'braindrill.execution',
  language: 'braindrill.language',
} as const;

const MB = 1024 * 1024;

/** The container memory while compiling: the compiler's figure, lowered to the run figure afterwards. */
export function initialMemoryMb(plan: ExecutionPlan): number {
  return plan.compile ? Math.max(plan.compile.memoryMb, plan.limits.memoryMb) : plan.limits.memoryMb;
}

/**
 * Docker create options for one execution. Every hardening flag is here, and docs/ARCHITECTURE.md says
 * why each one is.
 */
export function containerOptions(plan: ExecutionPlan, image: string, nodeId: string): Docker.ContainerCreateOptions {
  const memory = initialMemoryMb(plan) * MB;
  const pids = Math.max(plan.limits.pids, plan.compile?.pids ?? 0);
  return {
    Image: image,
    Entrypoint: [SUPERVISOR_PATH],
    Cmd: [],
    User: SANDBOX_USER,
    WorkingDir: '/tmp',
    Env: [],
    Hostname: 'sandbox',
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: false,
    Tty: false,
    NetworkDisabled: true,
    Labels: { [Label.node]: nodeId, [Label.execution]: plan.id, [Label.language]: plan.language.id },
    HostConfig: {
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,mode=1777,size=${plan.limits.tmpfsMb}m` },
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: pids,
      NanoCpus: Math.round(plan.limits.cpus * 1e9),
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      IpcMode: 'none',
      LogConfig: { Type: 'none', Config: {} },
      Ulimits: [
        { Name: 'nofile', Soft: plan.limits.nofile, Hard: plan.limits.nofile },
        { Name: 'fsize', Soft: plan.limits.fileSizeMb * MB, Hard: plan.limits.fileSizeMb * MB },
        { Name: 'core', Soft: 0, Hard: 0 },
      ],
      // Docker removes the container when the supervisor exits, even if this node died meanwhile.
      AutoRemove: true,
      Init: false,
    },
  };
}
