import Docker from 'dockerode';
import t from 'tap';
import { containersLeft, containersOf, run, startEngine } from '../helpers/engine.ts';

// Each hostile behaviour is one fixture (a small program), each limit reported with its own reason.
const engine = await startEngine();
t.teardown(() => engine.close());
const languages = ((await (await engine.request('/languages')).json()) as { languages: { id: string; limits: { timeout_ms: number; memory_mb: number; tmpfs_mb: number; file_size_mb: number; pids: number } }[] }).languages;
const python = languages.find((l) => l.id === 'python')!.limits;

t.test('wall timeout: an endless loop is killed and reported timedout/time_limit', async (t) => {
  const result = await run(engine, 'python', { code: 'while True:\n    pass' });
  t.equal(result.status, 'timedout');
  t.equal(result.reason, 'time_limit');
  t.ok(result.execution_time_ms >= python.timeout_ms - 100, `ran ${result.execution_time_ms} ms`);
});

t.test('a sleeping program is also stopped at the wall limit', async (t) => {
  const result = await run(engine, 'bash', { code: 'sleep 60' });
  t.equal(result.status, 'timedout');
  t.equal(result.reason, 'time_limit');
});

t.test('memory: allocating past the limit is memory_limit, not a timeout', async (t) => {
  const result = await run(engine, 'python', { code: `x = bytearray(${python.memory_mb * 4} * 1024 * 1024)\nprint(len(x))` });
  t.equal(result.status, 'failed');
  t.equal(result.reason, 'memory_limit', result.stderr);
});

t.test('pids: a fork bomb is contained and reported pids_limit', async (t) => {
  const result = await run(engine, 'python', { code: 'import os\nwhile True:\n    os.fork()' });
  t.equal(result.status, 'failed');
  t.equal(result.reason, 'pids_limit', result.stderr.slice(0, 500));
});

t.test('output: a 100 MB print is cut at the cap, reported output_limit, host memory flat', async (t) => {
  const before = process.memoryUsage().rss;
  const result = await run(engine, 'python', { code: 'import sys\nchunk = "x" * 1048576\nfor _ in range(100):\n    sys.stdout.write(chunk)' });
  const grown = process.memoryUsage().rss - before;
  t.equal(result.status, 'failed');
  t.equal(result.reason, 'output_limit');
  t.equal(result.truncated, true);
  t.equal(result.stdout.length, 64 * 1024, 'the first 64 KiB are kept');
  t.ok(grown < 40 * 1024 * 1024, `host RSS grew ${Math.round(grown / 1024 / 1024)} MB`);
});

t.test('a long but allowed output is kept whole up to the cap and marked truncated', async (t) => {
  const result = await run(engine, 'python', { code: 'print("y" * 200000)' });
  t.equal(result.status, 'completed', 'below the drain limit the program finishes');
  t.equal(result.truncated, true);
  t.equal(result.stdout.length, 64 * 1024);
});

t.test('/tmp is size-capped: filling it says "disk full", not an OOM kill', async (t) => {
  const result = await run(engine, 'python', {
    code: `chunk = b"z" * 1048576\nwith open("/tmp/fill", "wb") as f:\n    for _ in range(${python.tmpfs_mb * 4}):\n        f.write(chunk)\n        f.flush()`,
  });
  t.equal(result.status, 'failed');
  t.equal(result.reason, 'runtime_error');
  t.match(result.stderr, /No space left on device|File too large/);
});

t.test('file size is capped by RLIMIT_FSIZE', async (t) => {
  const result = await run(engine, 'bash', { code: `head -c ${(languages.find((l) => l.id === 'bash')!.limits.file_size_mb + 1) * 1048576} /dev/zero > /tmp/big; echo "exit=$?"; stat -c %s /tmp/big` });
  const bashLimits = languages.find((l) => l.id === 'bash')!.limits;
  t.match(result.stdout, /exit=153/, 'head is killed by SIGXFSZ (128+25)');
  t.match(result.stdout, new RegExp(`\\n${bashLimits.file_size_mb * 1048576}\\n`), 'the file stops at the limit');
});

t.test('network: only loopback exists, no route out, the host is unreachable', async (t) => {
  const port = new URL(engine.url).port;
  const result = await run(engine, 'python', {
    code: [
      'import os, socket',
      'print(sorted(os.listdir("/sys/class/net")))',
      'print(open("/proc/net/route").read().strip().count("\\n"))',
      'try:',
      `    socket.create_connection(("127.0.0.1", ${port}), timeout=2)`,
      '    print("connected")',
      'except OSError as e:',
      '    print("refused", e.errno)',
    ].join('\n'),
  });
  t.equal(result.stdout, "['lo']\n0\nrefused 111\n", result.stderr);
});

t.test('root filesystem is read-only; /tmp is the only writable place, nosuid and nodev', async (t) => {
  const result = await run(engine, 'python', {
    code: [
      'mounts = {l.split()[1]: l.split()[3] for l in open("/proc/self/mounts")}',
      'print(mounts["/"].split(",")[0])',
      'print(all(o in mounts["/tmp"].split(",") for o in ["rw", "nosuid", "nodev"]))',
      'import os',
      'for p in ["/etc/x", "/usr/x", "/x"]:',
      '    try:',
      '        open(p, "w")',
      '        print("wrote", p)',
      '    except OSError as e:',
      '        print(e.strerror)',
    ].join('\n'),
  });
  t.equal(result.stdout.split('\n')[0], 'ro');
  t.equal(result.stdout.split('\n')[1], 'True');
  t.notMatch(result.stdout, /wrote/);
});

t.test('the program runs unprivileged: uid 65534, no capabilities, no new privileges', async (t) => {
  const result = await run(engine, 'python', {
    code: 'import os\nprint(os.getuid(), os.getgid())\nstatus = dict(l.split(":\\t") for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)\nprint(*(status[k].strip() for k in ["CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd", "NoNewPrivs"]))\nprint(open("/proc/1/status").read().split("Uid:")[1].split("\\n")[0].split())',
  });
  // The container starts as root with CAP_SETUID and CAP_SETGID only (the supervisor's own-uid mode): they
  // stay in the bounding set (dropping them needs CAP_SETPCAP), but the program holds none and, with
  // no_new_privs, can never gain one. The supervisor runs as 65533 (65534 as its file-system uid).
  t.equal(result.stdout, "65534 65534\n0000000000000000 0000000000000000 0000000000000000 0000000000000000 00000000000000c0 1\n['65533', '65533', '65533', '65534']\n", result.stderr);
});

t.test('user namespaces: where dockerd remaps ids, root in a sandbox is an unprivileged id on the host', async (t) => {
  const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  const remapped = ((await docker.info()) as { SecurityOptions?: string[] }).SecurityOptions?.some((o) => o.includes('name=userns')) === true;
  if (process.env.BRAINDRILL_EXPECT_USERNS === '1') t.ok(remapped, 'the dockerd deploy.sh manages runs with userns-remap');
  const result = await run(engine, 'bash', { code: 'cat /proc/self/uid_map' });
  const [inside, outside] = result.stdout.trim().split(/\s+/).map(Number);
  t.equal(inside, 0, 'the map starts at the container\'s root');
  if (remapped) t.ok(outside! > 0, `container root is host id ${outside}, not root`);
  else t.equal(outside, 0, 'without userns-remap, container ids are the host\'s (DOCKER_USERNS=0)');
});

t.test('a background process does not outlive the execution', async (t) => {
  const result = await run(engine, 'bash', { code: '(sleep 30; echo late) &\nnohup sleep 30 >/dev/null 2>&1 &\necho started' });
  t.equal(result.status, 'completed');
  t.equal(result.stdout, 'started\n');
  t.ok(result.execution_time_ms < 20_000, `finished in ${result.execution_time_ms} ms, not after the 30 s sleeps`);
});

t.test('nothing written in one run is visible in the next', async (t) => {
  await run(engine, 'bash', { code: 'echo secret > /tmp/marker; echo done' });
  const result = await run(engine, 'bash', { code: 'ls /tmp; test -e /tmp/marker && echo found || echo absent' });
  t.match(result.stdout, /absent/);
});

t.test('afterwards no execution container of this node is left and the engine still answers', async (t) => {
  t.same(await containersLeft(engine.nodeId), [], 'only warm containers, waiting for their one job, remain');
  const result = await run(engine, 'python', { code: 'print("still here")' });
  t.equal(result.stdout, 'still here\n');
});

t.test('and once the engine stops, nothing of it is left at all', async (t) => {
  await engine.close();
  t.same(await containersOf(engine.nodeId, { includeWarm: true }), []);
});
