import t from 'tap';
import Docker from 'dockerode';
import { containersOf, run, startEngine } from '../helpers/engine.ts';

// The core's guarantees hold through the warm pool: one container per execution, always.
const engine = await startEngine({ WARM_POOL: '1', WARM_POOL_LANGUAGES: 'python,bash' });
t.teardown(() => engine.close());
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const warmContainers = async () => (await containersOf(engine.nodeId, { includeWarm: true })).filter((c) => c.Labels['braindrill.execution']?.startsWith('warm-'));
async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    value = await probe();
  }
  return value;
}

const CONTAINER_ID = 'import re\nprint(re.search(r"[0-9a-f]{64}", open("/proc/self/cgroup").read()).group(0))';

t.test('containers are started ahead of demand for the configured languages', async (t) => {
  const warm = await eventually(warmContainers, (c) => c.length >= 2 && c.every((x) => x.State === 'running'));
  t.same([...new Set(warm.map((c) => c.Labels['braindrill.language']))].sort(), ['bash', 'python']);
  t.ok(warm.every((c) => c.State === 'running'), 'they are running, waiting on stdin');
});

t.test('the pool never reuses a container: ids differ and files do not carry over', async (t) => {
  const ids = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const result = await run(engine, 'python', { code: `${CONTAINER_ID}\nimport os\nprint(os.path.exists("/tmp/marker"))\nopen("/tmp/marker", "w").write("x")` });
    const [id, seen] = result.stdout.trim().split('\n');
    t.equal(seen, 'False', 'nothing from an earlier job');
    ids.add(id!);
  }
  t.equal(ids.size, 5, 'five executions, five containers');
});

t.test('a pooled container that dies while waiting is replaced', async (t) => {
  const before = await eventually(warmContainers, (c) => c.some((x) => x.Labels['braindrill.language'] === 'python'));
  const victim = before.find((c) => c.Labels['braindrill.language'] === 'python')!;
  await docker.getContainer(victim.Id).kill().catch(() => undefined);
  const after = await eventually(warmContainers, (c) => c.some((x) => x.Labels['braindrill.language'] === 'python' && x.Id !== victim.Id && x.State === 'running'));
  t.ok(after.some((x) => x.Id !== victim.Id && x.Labels['braindrill.language'] === 'python'), 'a new warm python container');
  const result = await run(engine, 'python', { code: 'print("still fine")' });
  t.equal(result.stdout, 'still fine\n');
});

t.test('a job that finds no container waiting takes the one the pool is starting, not a second one', async (t) => {
  const other = await startEngine({ WARM_POOL: '1', WARM_POOL_LANGUAGES: 'python', WARM_POOL_MAX: '1', CONCURRENCY: '1' });
  t.teardown(() => other.close());
  const first = await eventually(() => containersOf(other.nodeId, { includeWarm: true }), (c) => c.length === 1);
  // Events have a one-second resolution: the container already there is told apart by its id.
  const existing = new Set(first.map((c) => c.Id));
  const since = Math.floor(Date.now() / 1000) - 1;
  const jobs = 6;
  // Back to back: each job but the first arrives while the pool's replacement is still starting.
  for (let i = 0; i < jobs; i++) t.equal((await run(other, 'python', { code: `print(${i})` })).stdout, `${i}\n`);
  await eventually(() => containersOf(other.nodeId, { includeWarm: true }), (c) => c.length === 1 && c[0]!.State === 'running');
  const until = Math.ceil(Date.now() / 1000) + 1;
  const events = await new Promise<string>((resolve, reject) => {
    docker.getEvents({ since, until, filters: { type: ['container'], event: ['create'], label: [`braindrill.node=${other.nodeId}`] } }, (error, stream) => {
      if (error || !stream) return reject(error);
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
      stream.on('end', () => resolve(text));
    });
  });
  const created = events
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { Actor: { ID: string; Attributes: Record<string, string> } })
    .filter((event) => !existing.has(event.Actor.ID))
    .map((event) => event.Actor.Attributes);
  t.equal(created.length, jobs, `${jobs} jobs, ${jobs} containers (five replacements and the one waiting now)`);
  t.same(created.filter((labels) => !labels['braindrill.execution']?.startsWith('warm-')), [], 'every one started by the pool: no job started its own beside the one coming');
});

t.test('limits hold through the pool', async (t) => {
  t.match(await run(engine, 'python', { code: 'while True: pass' }), { status: 'timedout', reason: 'time_limit' });
  t.match(await run(engine, 'python', { code: 'x = bytearray(400 * 1024 * 1024)' }), { status: 'failed', reason: 'memory_limit' });
  t.match(await run(engine, 'bash', { code: 'echo started; (sleep 30 &) ; exit 0' }), { status: 'completed', stdout: 'started\n' });
});

t.test('when the engine stops, no container of its node is left, warm ones included', async (t) => {
  const other = await startEngine({ WARM_POOL: '1', WARM_POOL_LANGUAGES: 'python' });
  await eventually(() => containersOf(other.nodeId, { includeWarm: true }), (c) => c.length > 0);
  await other.close();
  t.same(await containersOf(other.nodeId, { includeWarm: true }), []);
});
