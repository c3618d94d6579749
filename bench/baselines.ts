import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Language } from '../src/languages/language.ts';
import { containerOptions, type SandboxHardening } from '../src/sandbox/docker-options.ts';
import { expandArgv } from '../src/sandbox/plan.ts';
import { exec, runPool } from './exec.ts';
import type { Program } from './programs.ts';
import { emptySeries, recordFailure, throughput, type Series, type Throughput } from './stats.ts';

/** The bare interpreter's work in every baseline: start Python, print one line, exit. */
const PYTHON_ARGV = ['python3', '-c', 'print(1)'];
const CHROOT_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' };

/**
 * The engine's hardened create options for `language` (its seccomp profile and OCI runtime included),
 * running `argv` directly instead of the supervisor: as the unprivileged user the engine runs programs as,
 * without the two capabilities only the supervisor keeps.
 */
export function hardenedOptions(language: Language, image: string, nodeId: string, argv: string[], hardening: SandboxHardening): Docker.ContainerCreateOptions {
  const options = containerOptions(language, `bench-${randomBytes(4).toString('hex')}`, image, nodeId, hardening);
  const { CapAdd: _supervisorCaps, ...host } = options.HostConfig ?? {};
  return {
    ...options,
    User: '65534:65534',
    Entrypoint: [argv[0] ?? 'true'],
    Cmd: argv.slice(1),
    AttachStdin: false,
    OpenStdin: false,
    // The loop removes the container itself after `wait`, as the engine does after the result.
    HostConfig: { ...host, AutoRemove: false },
  };
}

/** The same options as `docker run` flags, so the CLI baseline carries exactly the engine's hardening. */
export function dockerRunFlags(options: Docker.ContainerCreateOptions): string[] {
  const host = options.HostConfig ?? {};
  const flags = ['--user', options.User ?? '', '--workdir', options.WorkingDir ?? '/', '--hostname', options.Hostname ?? 'sandbox'];
  flags.push('--network', host.NetworkMode ?? 'none');
  if (host.ReadonlyRootfs) flags.push('--read-only');
  for (const [mount, mountOptions] of Object.entries(host.Tmpfs ?? {})) flags.push('--tmpfs', `${mount}:${mountOptions}`);
  flags.push('--memory', String(host.Memory), '--memory-swap', String(host.MemorySwap), '--pids-limit', String(host.PidsLimit));
  flags.push('--cpus', String((host.NanoCpus ?? 1e9) / 1e9));
  for (const cap of host.CapDrop ?? []) flags.push('--cap-drop', cap);
  for (const cap of host.CapAdd ?? []) flags.push('--cap-add', cap);
  // The API takes a seccomp profile's text; the CLI wants a file.
  for (const option of host.SecurityOpt ?? []) flags.push('--security-opt', option.startsWith('seccomp=') ? `seccomp=${profileFile(option.slice('seccomp='.length))}` : option);
  if (host.Runtime) flags.push('--runtime', host.Runtime);
  flags.push('--ipc', host.IpcMode ?? 'none', '--log-driver', host.LogConfig?.Type ?? 'none');
  for (const limit of host.Ulimits ?? []) flags.push('--ulimit', `${limit.Name}=${limit.Soft}:${limit.Hard}`);
  for (const [key, value] of Object.entries(options.Labels ?? {})) flags.push('--label', `${key}=${value}`);
  return flags;
}

const profileFiles = new Map<string, string>();
/** The profile's text in a temporary file (one per text, removed when the process exits). */
function profileFile(profile: string): string {
  let file = profileFiles.get(profile);
  if (!file) {
    file = path.join(tmpdir(), `braindrill-bench-seccomp-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, profile);
    const created = file;
    process.once('exit', () => rmSync(created, { force: true }));
    profileFiles.set(profile, file);
  }
  return file;
}

/** (a) `docker run --rm -i` of the bare interpreter with the engine's hardening, one after the other. */
export async function dockerRunSequential(options: Docker.ContainerCreateOptions, count: number): Promise<Series> {
  const series = emptySeries();
  const args = ['run', '--rm', '-i', ...dockerRunFlags(options), '--entrypoint', options.Entrypoint?.[0] ?? 'python3', options.Image ?? '', ...(options.Cmd ?? [])];
  for (let i = 0; i < count; i++) {
    const result = await exec('docker', args, { timeoutMs: 60_000 });
    if (result.code === 0 && result.stdout === '1\n') series.latenciesMs.push(result.wallMs);
    else recordFailure(series, `docker run exited ${result.code}: ${result.stderr.trim().slice(0, 200)}`);
  }
  return series;
}

function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('close', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** One bare dockerode life cycle: create, attach, start, wait, remove; returns its wall time. */
export async function bareContainerRun(docker: Docker, options: Docker.ContainerCreateOptions): Promise<number> {
  const started = performance.now();
  const container = await docker.createContainer(options);
  try {
    const stream: NodeJS.ReadableStream = await container.attach({ stream: true, stdout: true, stderr: true });
    const output = drain(stream);
    await container.start();
    const exit = (await container.wait()) as { StatusCode: number };
    const bytes = await output;
    if (exit.StatusCode !== 0 || !bytes.includes('1\n')) throw new Error(`bare container exited ${exit.StatusCode}`);
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
  return performance.now() - started;
}

/** (b) the bare dockerode loop, one at a time. */
export async function bareSequential(docker: Docker, options: () => Docker.ContainerCreateOptions, count: number): Promise<Series> {
  const series = emptySeries();
  for (let i = 0; i < count; i++) {
    await bareContainerRun(docker, options()).then(
      (latency) => series.latenciesMs.push(latency),
      (error: unknown) => recordFailure(series, error),
    );
  }
  return series;
}

/** (b) the bare dockerode loop, `count` runs with `concurrency` at once: the engine's ceiling. */
export async function bareBurst(docker: Docker, options: () => Docker.ContainerCreateOptions, count: number, concurrency: number): Promise<Throughput> {
  const failures = emptySeries();
  const started = performance.now();
  await runPool(count, concurrency, (): Promise<void> => bareContainerRun(docker, options()).then(() => undefined, (error: unknown) => recordFailure(failures, error)));
  return throughput(count, failures.failures, (performance.now() - started) / 1000, failures.firstError);
}

/** (c) the bare interpreter in the exported root filesystem: no container at all. */
export async function chrootPython(rootfs: string, count: number): Promise<Series> {
  const series = emptySeries();
  for (let i = 0; i < count; i++) {
    const result = await exec('chroot', [rootfs, ...PYTHON_ARGV], { env: CHROOT_ENV, timeoutMs: 30_000 });
    if (result.code === 0 && result.stdout === '1\n') series.latenciesMs.push(result.wallMs);
    else recordFailure(series, `chroot python3 exited ${result.code}: ${result.stderr.trim().slice(0, 200)}`);
  }
  return series;
}

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/** The language's own compile and run command lines, as the supervisor would run them. */
function toolchainScript(language: Language, file: string, workDir: string): string {
  const steps = [language.compile ? expandArgv(language.compile.argv, [file]) : null, expandArgv(language.run.argv, [file])];
  return [`cd ${quote(workDir)}`, ...steps.filter((s): s is string[] => s !== null).map((argv) => argv.map(quote).join(' '))].join(' && ');
}

/** The JDK finds its libraries through /proc/self/exe: a private /proc, gone with the mount namespace. */
const WITH_PROC = 'mount -t proc proc "$1/proc" && exec chroot "$1" sh -c "$2"';

/** Compile and run `program` once in the root filesystem (as root, no limits); returns its wall time. */
async function chrootToolchainRun(rootfs: string, language: Language, program: Program): Promise<number> {
  const workDir = `/tmp/bench-${randomBytes(6).toString('hex')}`;
  mkdirSync(`${rootfs}${workDir}`, { recursive: true });
  try {
    writeFileSync(`${rootfs}${workDir}/${program.file}`, program.code);
    const result = await exec('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', WITH_PROC, 'chroot', rootfs, toolchainScript(language, program.file, workDir)], {
      env: CHROOT_ENV,
      timeoutMs: 60_000,
    });
    if (result.code !== 0 || result.stdout !== program.stdout) throw new Error(`chroot ${language.id} exited ${result.code}: ${result.stderr.trim().slice(0, 200)}`);
    return result.wallMs;
  } finally {
    rmSync(`${rootfs}${workDir}`, { recursive: true, force: true });
  }
}

export async function chrootToolchainSequential(rootfs: string, language: Language, program: Program, count: number): Promise<Series> {
  const series = emptySeries();
  for (let i = 0; i < count; i++) {
    await chrootToolchainRun(rootfs, language, program).then(
      (latency) => series.latenciesMs.push(latency),
      (error: unknown) => recordFailure(series, error),
    );
  }
  return series;
}

export async function chrootToolchainBurst(rootfs: string, language: Language, program: Program, count: number, concurrency: number): Promise<Throughput> {
  const failures = emptySeries();
  const started = performance.now();
  await runPool(count, concurrency, (): Promise<void> => chrootToolchainRun(rootfs, language, program).then(() => undefined, (error: unknown) => recordFailure(failures, error)));
  return throughput(count, failures.failures, (performance.now() - started) / 1000, failures.firstError);
}
