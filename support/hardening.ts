import Docker from 'dockerode';
import type { SandboxHardening } from '../src/sandbox/docker-options.ts';
import { hardeningFor, registeredRuntimes } from '../src/sandbox/docker-runtime.ts';
import { loadSeccompProfile } from '../src/sandbox/seccomp.ts';
import { loadSettings } from '../src/settings.ts';

/**
 * The hardening the engine gives every sandbox (its seccomp profile, the OCI runtime SANDBOX_RUNTIME picks
 * on this Docker host), for tests and benches that create containers with `containerOptions` themselves.
 */
export async function engineHardening(docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' })): Promise<SandboxHardening> {
  const settings = loadSettings(process.env);
  return hardeningFor(settings.sandboxRuntime, await registeredRuntimes(docker), loadSeccompProfile(settings.seccompProfile));
}
