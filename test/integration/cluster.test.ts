import t from 'tap';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { API_KEY, containersOf, startEngine, type TestEngine } from '../helpers/engine.ts';
import { submitJob, waitForJob, waitForStatus, type JobView } from '../helpers/jobs.ts';
import { startEngineProcess, type EngineProcess } from '../../support/engine-process.ts';
import { startPostgres } from '../../support/postgres.ts';
import { startRedis } from '../../support/redis.ts';

// A real cluster on one machine: private Redis and PostgreSQL, an API node, manager nodes as processes.
const redis = await startRedis();
t.teardown(() => redis.destroy());
const postgres = await startPostgres();
t.teardown(() => postgres.destroy());
const cluster = { REDIS_URL: redis.url, DATABASE_URL: await postgres.createDatabase() };
const run = randomBytes(3).toString('hex');

const managers = new Map<string, EngineProcess>();
async function startManager(name: string, env: Record<string, string> = {}): Promise<EngineProcess> {
  const process = await startEngineProcess({ ...cluster, ROLE: 'worker', NODE_ID: `${name}-${run}`, CONCURRENCY: '1', ...env });
  managers.set(name, process);
  return process;
}
t.teardown(async () => {
  // Drain (removes warm containers), then make sure nothing of these managers is left on Docker.
  for (const m of managers.values()) await m.kill('SIGTERM');
  const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  for (const name of managers.keys()) {
    for (const c of await containersOf(`${name}-${run}`, { includeWarm: true })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
});

const api = await startEngine({ ...cluster, ROLE: 'api', RATE_LIMIT_MAX_REQUESTS: '5000', KEY_MAX_QUEUED_JOBS: '5000', IP_RATE_LIMIT_MAX: '100000' });
t.teardown(() => api.close());
await startManager('m1');
await startManager('m2');
const m1 = `m1-${run}`;
const m2 = `m2-${run}`;

type Ready = { status: string; members: { api: number; managers: number; workers: number }; capacity: { idle: number } };
type Worker = { id: string; status: string; uptime: number; managerId: string; currentJobId: string | null };
const ready = async () => (await (await fetch(`${api.url}/ready`)).json()) as Ready;
const workers = async () => (await (await api.request('/api/workers')).json()) as Worker[];
async function eventually<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!ok(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
    value = await probe();
  }
  return value;
}

t.test('/ready reports one API node and two managers; /api/workers lists their workers', async (t) => {
  const body = await eventually('members', ready, (r) => r.members.managers === 2 && r.members.workers === 2);
  t.match(body, { status: 'ready', members: { api: 1, managers: 2, workers: 2 }, capacity: { idle: Number } });
  const list = await workers();
  t.same(list.map((w) => w.managerId).sort(), [m1, m2].sort());
  for (const w of list) t.match(w, { id: /^[0-9a-f-]{36}$/, status: 'IDLE', uptime: Number, currentJobId: null });
  t.equal((await api.request('/api/workers', { headers: { 'x-api-key': 'test-key-abcde' } })).status, 403, 'admin only');
  const metrics = await (await fetch(`${api.url}/metrics`)).text();
  t.match(metrics, /^braindrill_worker_pool_size 2$/m, 'the API node reports the cluster\'s workers, read from Redis');
});

t.test('jobs spread over both managers; sync requests answer through the cluster', async (t) => {
  const ids = [];
  for (let i = 0; i < 8; i++) ids.push(await submitJob(api, { language: 'bash', code: `sleep 0.5; echo ${i}` }));
  const jobs: JobView[] = [];
  for (const id of ids) jobs.push(await waitForJob(api, id));
  t.same(jobs.map((j) => j.output), ids.map((_, i) => `${i}\n`));
  const nodes = new Set(jobs.map((j) => (j as unknown as { node_id: string }).node_id));
  t.same([...nodes].sort(), [m1, m2].sort(), 'both managers ran jobs');
  const sync = await api.request('/lang/python', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'print("drill my brain")' });
  t.equal(await sync.text(), 'drill my brain\n');
  t.equal(sync.headers.get('x-status'), 'completed');
});

t.test('a BUSY worker shows its job', async (t) => {
  const id = await submitJob(api, { language: 'bash', code: 'sleep 3' });
  await waitForStatus(api, id, 'running');
  const list = await eventually('busy worker', workers, (l) => l.some((w) => w.currentJobId === id));
  t.equal(list.find((w) => w.currentJobId === id)?.status, 'BUSY');
  await waitForJob(api, id);
});

t.test('scale up and down through the API', async (t) => {
  const scaled = await api.request('/api/workers/scale', { method: 'POST', json: { count: 2, targetId: m1 } });
  t.equal(scaled.status, 202);
  t.match(await scaled.json(), { managerId: m1, desired: 3 });
  await eventually('m1 has 3 workers', workers, (l) => l.filter((w) => w.managerId === m1).length === 3);
  const random = await api.request('/api/workers/scale', { method: 'POST', json: {} });
  t.equal(random.status, 202, 'count defaults to 1 on a random live manager');
  await eventually('4 + 1 workers', workers, (l) => l.length === 5);
  const victim = (await workers()).find((w) => w.managerId === m1)!;
  t.equal((await api.request(`/api/workers/${victim.id}`, { method: 'DELETE' })).status, 202);
  await eventually('the worker is gone', workers, (l) => !l.some((w) => w.id === victim.id));
  t.equal((await api.request('/api/workers/no-such-worker', { method: 'DELETE' })).status, 404);
  t.equal((await api.request('/api/workers/scale', { method: 'POST', json: { targetId: 'no-such-manager' } })).status, 404);
  t.equal((await api.request('/api/workers/scale', { method: 'POST', json: { count: 64 } })).status, 409, 'the cluster-wide cap');
  // Back to one worker each. The deletions are decided from one listing: a removal is asynchronous
  // (202), so a listing read between two of them may still show a worker that is already going.
  const kept = new Set<string>();
  for (const w of await workers()) {
    if (kept.has(w.managerId)) await api.request(`/api/workers/${w.id}`, { method: 'DELETE' });
    else kept.add(w.managerId);
  }
  await eventually('one worker each', workers, (l) => l.length === 2 && new Set(l.map((w) => w.managerId)).size === 2);
});

t.test('SIGKILL a manager running a 3 s job: the job is re-run and finishes within 20 s, and its container is gone', async (t) => {
  // The victim is the only manager with a worker, so the job runs there.
  for (const w of await workers()) await api.request(`/api/workers/${w.id}`, { method: 'DELETE' });
  await eventually('no workers', workers, (l) => l.length === 0);
  const victim = await startManager('m3');
  const m3 = `m3-${run}`;
  const id = await submitJob(api, { language: 'bash', code: 'sleep 3; echo survived' });
  const started = await eventually('the job runs', async () => (await (await api.request(`/jobs/${id}`)).json()) as { status: string; node_id: string | null }, (j) => j.status === 'running', 20_000);
  t.equal(started.node_id, m3, 'it runs on the victim, the only manager with a worker');
  const killedAt = Date.now();
  await victim.kill('SIGKILL');
  // The others get their worker back, to run it again once its manager is known dead.
  for (const manager of [m1, m2]) t.equal((await api.request('/api/workers/scale', { method: 'POST', json: { count: 1, targetId: manager } })).status, 202);
  const job = await waitForJob(api, id, 30_000);
  const tookMs = Date.now() - killedAt;
  // Membership expires after 8 s, a reclaim pass runs every 2 s, then the 3 s job runs again.
  t.match(job, { status: 'completed', output: 'survived\n', attempts: 2 }, 'handed back and run again, once');
  t.ok(tookMs <= 20_000, `finished ${tookMs} ms after the kill`);
  t.not((job as unknown as { node_id: string }).node_id, m3, 'by a live manager');
  await eventually('its containers are gone, warm ones included', () => containersOf(m3, { includeWarm: true }), (c) => c.length === 0, 15_000);
  await eventually('one worker each', workers, (l) => l.length === 2 && new Set(l.map((w) => w.managerId)).size === 2);
});

t.test('SIGTERM a manager: it drains and no job is lost', async (t) => {
  const leaving = await startManager('m4');
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push(await submitJob(api, { language: 'bash', code: `sleep 1; echo ${i}` }));
  await new Promise((r) => setTimeout(r, 1200));
  await leaving.kill('SIGTERM');
  for (const [i, id] of ids.entries()) t.match(await waitForJob(api, id, 60_000), { status: 'completed', output: `${i}\n` });
  await eventually('m4 left the cluster', ready, (r) => r.members.managers === 2);
});

t.test('Redis restarts empty: nodes reconnect and no job is lost', async (t) => {
  // With no worker free, the job waits in the stream; then Redis loses the stream.
  for (const w of await workers()) await api.request(`/api/workers/${w.id}`, { method: 'DELETE' });
  await eventually('no workers', workers, (l) => l.length === 0);
  const waiting = await submitJob(api, { language: 'bash', code: 'echo waited' });
  await redis.stop();
  await redis.start();
  await eventually('managers re-registered with their default workers', ready, (r) => r.status === 'ready' && r.members.managers === 2 && r.members.workers === 2, 20_000);
  t.match(await waitForJob(api, waiting, 40_000), { status: 'completed', output: 'waited\n' }, 'recovery re-enqueued it from the database');
  const after = await submitJob(api, { language: 'bash', code: 'echo after' });
  t.match(await waitForJob(api, after, 40_000), { status: 'completed', output: 'after\n' });
});

t.test('while Redis is down, submissions get a clear 503 and nothing is half-done', async (t) => {
  await redis.stop();
  const response = await api.request('/jobs', { method: 'POST', json: { language: 'bash', code: 'echo lost-and-found' } });
  t.equal(response.status, 503, await response.text());
  const readiness = await fetch(`${api.url}/ready`);
  t.equal(readiness.status, 503, '/ready says this node lost Redis');
  const body = await readiness.text();
  t.match(JSON.parse(body), { checks: { redis: { ok: false } } });
  t.notMatch(body, /ECONNREFUSED|connect|Connection|message/i, 'up or down, never the error text (that is in the log)');
  t.equal((await fetch(`${api.url}/health`)).status, 200);
  await redis.start();
  await eventually('ready again', ready, (r) => r.status === 'ready', 20_000);
});

t.test('300 jobs submitted at once across two managers: all finish exactly once', async (t) => {
  const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => submitJob(api, { language: 'bash', code: `echo ${i}` })));
  t.equal(new Set(ids).size, 300);
  const jobs = [];
  for (const id of ids) jobs.push(await waitForJob(api, id, 240_000));
  t.same(jobs.map((j) => j.output), ids.map((_, i) => `${i}\n`));
  t.ok(jobs.every((j) => j.status === 'completed' && (j as unknown as { attempts: number }).attempts === 1), 'each ran once');
});

t.test('two API nodes share one rate-limit bucket', async (t) => {
  const a = await startEngine({ ...cluster, ROLE: 'api', RATE_LIMIT_MAX_REQUESTS: '5' });
  const b = await startEngine({ ...cluster, ROLE: 'api', RATE_LIMIT_MAX_REQUESTS: '5' });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const key = { 'x-api-key': 'prod-key-67890' };
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    for (const node of [a, b] as TestEngine[]) statuses.push((await node.request('/jobs', { method: 'POST', headers: key, json: { language: 'bash', code: 'echo x' } })).status);
  }
  t.equal(statuses.filter((s) => s === 202).length, 5, `five accepted in all: ${statuses.join(',')}`);
  t.equal(statuses.filter((s) => s === 429).length, 3);
});

t.test('per-key quotas hold across API nodes: concurrent submissions on two nodes admit exactly the quota', async (t) => {
  const limits = { ...cluster, ROLE: 'api', KEY_MAX_QUEUED_JOBS: '5', RATE_LIMIT_MAX_REQUESTS: '1000', IP_RATE_LIMIT_MAX: '100000' };
  const [a, b] = await Promise.all([startEngine(limits), startEngine(limits)]);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  // A key no other test of this cluster spends tokens of (the token bucket is shared too).
  const key = { 'x-api-key': 'test-key-abcde' };
  // Long jobs: each holds its share of the quota (waiting or running) for the whole burst.
  const responses = await Promise.all(
    Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).request('/jobs', { method: 'POST', headers: key, json: { language: 'bash', code: 'sleep 20' } })),
  );
  const statuses = responses.map((r) => r.status);
  t.equal(statuses.filter((s) => s === 202).length, 5, `exactly KEY_MAX_QUEUED_JOBS accepted: ${statuses.join(',')}`);
  t.equal(statuses.filter((s) => s === 429).length, 25, 'the rest refused with 429');
  const refusal = (await responses.find((r) => r.status === 429)?.json()) as { error: { code: string } } | undefined;
  t.equal(refusal?.error.code, 'quota_exceeded', 'by the quota');
  for (const response of responses.filter((r) => r.status === 202)) {
    const { job_id } = (await response.json()) as { job_id: string };
    t.equal((await a.request(`/jobs/${job_id}`, { method: 'DELETE', headers: key })).status, 200);
  }
});

t.test('REDIS_URL without DATABASE_URL is refused at start', async (t) => {
  await t.rejects(startEngine({ REDIS_URL: redis.url, DATABASE_URL: '' }), /REDIS_URL is set but DATABASE_URL is not/);
  void API_KEY;
});
