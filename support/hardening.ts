import Docker from 'dockerode';
import { chooseOciRuntime, type OciRuntimeSetting } from '../src/sandbox/docker-runtime.ts';
import type { SandboxHardening } from '../src/sandbox/docker-options.ts';
import { loadSeccompProfile, securityOptFor } from '../src/sandbox/seccomp.ts';
import { loadSettings } from '../src/settings.ts';

/**
 * The hardening the engine gives every sandbox (its seccomp profile, the OCI runtime SANDBOX_RUNTIME picks
 * on this Docker host), for tests and benches that create containers with `containerOptions` themselves.
 */
export async function engineHardening(docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' })): Promise<SandboxHardening> {
  const settings = loadSettings(process.env);
  const registered = Object.keys(((await docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes ?? {});
  const ociRuntime = chooseOciRuntime(settings.sandboxRuntime as OciRuntimeSetting, registered);
  return { seccomp: securityOptFor(loadSeccompProfile(settings.seccompProfile), ociRuntime), ociRuntime };
}
