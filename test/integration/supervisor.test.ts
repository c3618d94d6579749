import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import t from 'tap';
import { loadLanguages } from '../../src/languages/language.ts';
import { containerOptions } from '../../src/sandbox/docker-options.ts';
import { DockerStreamDemuxer } from '../../src/sandbox/docker-demux.ts';
import { FrameDecoder, FrameType, encodeRequest } from '../../src/sandbox/protocol.ts';
import { ROOT_DIR } from '../../src/settings.ts';
import { run, startEngine } from '../helpers/engine.ts';
import { submitJob, waitForJob } from '../helpers/jobs.ts';
import { engineHardening } from '../../support/hardening.ts';

// The user program runs beside the supervisor with the same uid: it must not be able to speak for it.
const engine = await startEngine();
t.teardown(() => engine.close());

t.test('forged frames are shown as plain output, not obeyed', async (t) => {
  // A RESULT frame (type 6) with a made-up nonce and a "completed" report, written to stdout.
  const code = [
    'import sys, json, struct',
    'body = b"\\x00" * 16 + json.dumps({"error": None, "compile": None, "run": {"exit_code": 0, "signal": None, "timed_out": False, "output_limited": False, "wall_ms": 1, "cpu_ms": 1, "max_rss_kb": 1, "stdout_bytes": 0, "stderr_bytes": 0}, "pids_limited": False, "oom_killed": False}).encode()',
    'sys.stdout.buffer.write(b"\\x06" + struct.pack(">I", len(body)) + body)',
    'sys.stdout.flush()',
    'sys.exit(7)',
  ].join('\n');
  const result = await run(engine, 'python', { code });
  t.equal(result.status, 'failed', 'the real result (exit 7) wins');
  t.equal(result.exit_code, 7);
  t.match(result.stdout, /pids_limited/, 'the forged bytes are just output');
});

t.test('the program cannot ptrace the supervisor or reach its file descriptors', async (t) => {
  const code = [
    'import ctypes, os',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'r = libc.ptrace(16, 1, None, None)',  // PTRACE_ATTACH to PID 1
    'print("ptrace", r, os.strerror(ctypes.get_errno()))',
    'for path in ["/proc/1/fd/1", "/proc/1/fd/0", "/proc/1/mem", "/proc/1/environ"]:',
    '    try:',
    '        open(path, "wb" if "fd" in path else "rb").close()',
    '        print(path, "OPEN")',
    '    except OSError as e:',
    '        print(path, e.strerror)',
    'print(sorted(os.listdir("/proc/self/fd")))',
  ].join('\n');
  const result = await run(engine, 'python', { code });
  t.match(result.stdout, /^ptrace -1 Operation not permitted$/m);
  t.notMatch(result.stdout, /OPEN/);
  t.match(result.stdout, /\['0', '1', '2', '3'\]\n$/, 'only stdin, stdout, stderr (and the listing itself) are open');
});

t.test('signals to the supervisor are ignored', async (t) => {
  const result = await run(engine, 'bash', { code: 'kill -9 1; kill -TERM 1; echo still-here' });
  t.equal(result.status, 'completed');
  t.equal(result.stdout, 'still-here\n');
});

t.test('step statistics reach the API: exit code, CPU time, peak memory', async (t) => {
  const result = (await run(engine, 'c', { code: '#include <stdio.h>\nint main(){ puts("hi"); return 0; }' })) as unknown as { compile: Record<string, number>; run: Record<string, number> };
  t.match(result.compile, { exit_code: 0, wall_ms: Number, cpu_ms: Number, max_rss_kb: Number });
  t.match(result.run, { exit_code: 0, wall_ms: Number, cpu_ms: Number, max_rss_kb: Number });
  t.ok((result.run.max_rss_kb ?? 0) > 0);
});

t.test('the async APIs carry the same step statistics: /jobs in snake_case, /api/runs in camelCase', async (t) => {
  const id = await submitJob(engine, { language: 'c', code: '#include <stdio.h>\nint main(){ puts("hi"); return 3; }' });
  const job = (await waitForJob(engine, id)) as unknown as { exit_code: number; compile: Record<string, unknown>; run: Record<string, unknown> };
  t.equal(job.exit_code, 3);
  t.match(job.compile, { exit_code: 0, signal: null, wall_ms: Number, cpu_ms: Number, max_rss_kb: Number, warm: false, stdout: String, stderr: String });
  t.match(job.run, { exit_code: 3, signal: null, wall_ms: Number, cpu_ms: Number, max_rss_kb: Number, warm: false });
  t.ok((job.run.max_rss_kb as number) > 0, 'peak memory measured');
  const run = (await (await engine.request(`/api/runs/${id}`)).json()) as { compile: Record<string, unknown>; run: Record<string, unknown> };
  t.same(run.run, { exitCode: 3, signal: null, wallMs: job.run.wall_ms, cpuMs: job.run.cpu_ms, maxRssKb: job.run.max_rss_kb, warm: false });
  t.match(run.compile, { exitCode: 0, wallMs: job.compile.wall_ms, cpuMs: job.compile.cpu_ms, maxRssKb: job.compile.max_rss_kb });

  const failed = await submitJob(engine, { language: 'c', code: 'int main( { return 0; }' });
  const compileError = (await waitForJob(engine, failed)) as unknown as { reason: string; compile: { exit_code: number; stderr: string }; run: unknown };
  t.equal(compileError.reason, 'compile_error');
  t.not(compileError.compile.exit_code, 0);
  t.match(compileError.compile.stderr, /error/, "the compiler's message is in the compile step");
  t.equal(compileError.run, null, 'no run step after a failed compile');
});

t.test('after its result the supervisor waits for the host to close stdin, then exits (and the container goes)', async (t) => {
  const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  const bash = loadLanguages(path.join(ROOT_DIR, 'config', 'languages.json')).find((l) => l.id === 'bash')!;
  const container = await docker.createContainer(containerOptions(bash, `linger-${randomBytes(3).toString('hex')}`, engine.node.image, engine.nodeId, await engineHardening()));
  const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
  await container.start();
  const result = new Promise<void>((resolve) => {
    const decoder = new FrameDecoder();
    const demuxer = new DockerStreamDemuxer((kind, payload) => {
      if (kind === 1 && decoder.push(payload).some((frame) => frame.type === FrameType.RESULT)) resolve();
    });
    stream.on('data', (chunk: Buffer) => demuxer.push(chunk));
  });
  const request = { nonce: randomBytes(16), files: [{ name: 'main.sh', content: Buffer.from('echo hi') }], compile: null, run: { argv: ['bash', 'main.sh'], timeoutMs: 5000 } };
  stream.write(encodeRequest({ ...request, stdin: Buffer.alloc(0), env: [], outputKeepBytes: 1024, outputMaxBytes: 4096, pauseAfterCompile: false }));
  await result;
  await new Promise((r) => setTimeout(r, 1000));
  t.equal((await container.inspect()).State.Running, true, 'still there a second after the result, while stdin is open');
  // It would exit anyway 5 s after the result: one second in, it must go as soon as stdin closes. The
  // exit (not the removal, which is dockerd's work) is measured, against a bound hundreds of times the ms it takes.
  const closed = Date.now();
  const exited = container.wait({ condition: 'not-running' }).catch(() => undefined);
  stream.destroy();
  await exited;
  t.ok(Date.now() - closed < 3500, `it exited ${Date.now() - closed} ms after stdin closed, not at the 5 s bound`);
  await container.wait({ condition: 'removed' }).catch(() => undefined);
  t.equal(await container.inspect().then(() => 'there', () => 'gone'), 'gone');
});
