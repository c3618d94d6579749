import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import t, { type Test } from 'tap';
import { InProcessBus } from '../../src/bus/in-process-bus.ts';
import { RedisBus } from '../../src/bus/redis-bus.ts';
import { Membership } from '../../src/cluster/membership.ts';
import { openDatabase } from '../../src/db/database.ts';
import { LocalAdmissionCounts, StoredAdmissionCounts } from '../../src/jobs/admission.ts';
import type { JobBus } from '../../src/jobs/bus.ts';
import type { JobRecord, NewJob } from '../../src/jobs/job.ts';
import { JobLifecycle, type RunPlan } from '../../src/jobs/lifecycle.ts';
import { JobMaintenance } from '../../src/jobs/maintenance.ts';
import { JobStore } from '../../src/jobs/store.ts';
import { loadLanguages } from '../../src/languages/language.ts';
import { LanguageRegistry } from '../../src/languages/registry.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { connectRedis } from '../../src/redis/connections.ts';
import { RedisKeys } from '../../src/redis/redis-keys.ts';
import type { ExecutionResult } from '../../src/sandbox/execution.ts';
import { ROOT_DIR } from '../../src/settings.ts';
import { startPostgres } from '../../support/postgres.ts';
import { startRedis } from '../../support/redis.ts';
import { freshDataDir } from '../helpers/data-dir.ts';
import { needs } from '../helpers/tier.ts';

// One job's life through JobLifecycle and JobMaintenance, over both JobBus implementations: the
// in-process bus on PGlite (the embedded mode) and Redis Streams on PostgreSQL (a cluster).
const languages = new LanguageRegistry(loadLanguages(path.join(ROOT_DIR, 'config', 'languages.json')));
const python = languages.resolve('python');
const log = createLogger('silent', 'test-lifecycle');
const NODE = 'node-self';

interface World {
  store: JobStore;
  bus: JobBus;
  lifecycle: JobLifecycle;
  maintenance: JobMaintenance;
  /** Makes a consumer of the bus look dead to maintenance (Redis: a consumer without membership). */
  orphan(jobId: string): Promise<void>;
  sql(query: ReturnType<typeof sql>): Promise<void>;
}

const completed = (stdout: string): ExecutionResult => ({
  status: 'completed', reason: null, stdout, stderr: '', exitCode: 0, signal: null, executionTimeMs: 3, truncated: false,
  compile: null, run: { exitCode: 0, signal: null, wallMs: 3, cpuMs: 2, maxRssKb: 900, warm: false }, stdoutBytes: Buffer.from(stdout), stderrBytes: Buffer.alloc(0), cause: null,
});

/** A manager's pool, without a sandbox: answers what the plan's code says to print, after telling a worker started it. */
const echoRun: RunPlan = async (plan, _owner, onStart) => {
  onStart('worker-1');
  return completed(plan.files[0]!.content.toString('utf8'));
};

const newJob = (owner: string | null = 'key-a', code = 'hello'): NewJob => ({ id: randomUUID(), owner, language: 'python', version: python.version, files: [{ content: code }], stdin: '', args: [] });

async function inProcessWorld(t: Test): Promise<World> {
  const dir = await freshDataDir();
  const database = await openDatabase({ databaseUrl: null, dataDir: dir });
  t.teardown(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const store = new JobStore(database.db);
  const bus = new InProcessBus();
  t.teardown(() => bus.close());
  return assemble(store, bus, new LocalAdmissionCounts(store, () => undefined), {
    // An earlier process of this node took the job and died running it; this process's bus never held it.
    async orphan(jobId) {
      await bus.ack(await takeFrom(bus, jobId));
      await store.markRunning(jobId, 'an-earlier-process', 'w');
    },
    sql: (query) => query.execute(database.db).then(() => undefined),
  });
}

async function redisWorld(t: Test): Promise<World> {
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  t.teardown(() => Promise.all([redis.destroy(), postgres.destroy()]));
  const database = await openDatabase({ databaseUrl: await postgres.createDatabase(), dataDir: '' });
  t.teardown(() => database.close());
  const connections = await connectRedis(redis.url, log);
  t.teardown(() => connections.close());
  const keys = new RedisKeys(`test-${randomBytes(3).toString('hex')}:`);
  const rejected = () => undefined;
  const membership = new Membership(connections.commands, keys, rejected);
  const store = new JobStore(database.db);
  const bus = new RedisBus({ redis: connections, keys, isAlive: (nodeId) => membership.isAlive('manager', nodeId), rejected });
  await bus.start();
  t.teardown(() => bus.close());
  return assemble(store, bus, new StoredAdmissionCounts(store), {
    // A manager took the job and died: its consumer is in the group, its membership is gone.
    async orphan(jobId) {
      const [delivery] = await bus.take('a-dead-manager', 1, 1000);
      if (delivery?.jobId !== jobId) throw new Error(`expected to take ${jobId}, took ${delivery?.jobId}`);
      await store.markRunning(jobId, 'a-dead-manager', 'w');
    },
    sql: (query) => query.execute(database.db).then(() => undefined),
  });
}

function assemble(store: JobStore, bus: JobBus, admission: LocalAdmissionCounts | StoredAdmissionCounts, extra: Pick<World, 'orphan' | 'sql'>): World {
  const metrics = new Metrics({ processMetrics: false });
  const lifecycle = new JobLifecycle({ store, bus, languages, admission, quotas: { keyMaxQueued: 3, maxBacklog: 5 }, plan: { outputKeepBytes: 1024, outputDrainFactor: 4 }, metrics, log });
  const maintenance = new JobMaintenance({ store, bus, nodeId: NODE, maxAttempts: 2, ttlSeconds: 60, metrics, log });
  return { store, bus, lifecycle, maintenance, ...extra };
}

const stored = (answer: JobRecord | Error): JobRecord => {
  if (answer instanceof Error) throw answer;
  return answer;
};

async function takeFrom(bus: JobBus, jobId: string) {
  const [delivery] = await bus.take(NODE, 1, 2000);
  if (delivery?.jobId !== jobId) throw new Error(`expected ${jobId} from the bus, got ${delivery?.jobId ?? 'nothing'}`);
  return delivery;
}

const takeOne = (world: World, jobId: string) => takeFrom(world.bus, jobId);

function lifecycleTests(t: Test, build: (t: Test) => Promise<World>) {
  t.test('submitted → queued on the bus → run by a manager → completed, waiters woken, the bus acknowledged', async (t) => {
    const world = await build(t);
    const [answer] = await world.lifecycle.submit([newJob('key-a', 'drill my brain\n')]);
    const job = stored(answer!);
    t.equal(job.status, 'queued');
    t.same([...(await world.bus.holds([job.id]))], [job.id], 'the bus holds it');
    const done = world.bus.waitDone(job.id, 10_000);
    await world.lifecycle.execute(await takeOne(world, job.id), NODE, echoRun);
    t.ok(await done, 'the waiter was woken');
    t.match(await world.store.get(job.id), { status: 'completed', stdout: Buffer.from('drill my brain\n'), nodeId: NODE, workerId: 'worker-1', attempts: 1 });
    t.same([...(await world.bus.holds([job.id]))], [], 'acknowledged: the bus no longer holds it');
  });

  t.test('admission: a burst is decided in order against the per-key quota and the backlog bound', async (t) => {
    const world = await build(t);
    const burst = [newJob('key-a'), newJob('key-a'), newJob('key-a'), newJob('key-a'), newJob('key-b'), newJob('key-b'), newJob('key-c')];
    const answers = await world.lifecycle.submit(burst);
    t.same(
      answers.map((a) => (a instanceof Error ? (a as Error & { code: string }).code : 'stored')),
      ['stored', 'stored', 'stored', 'quota_exceeded', 'stored', 'stored', 'backlog_full'],
      'key-a may have 3; the backlog holds 5',
    );
    t.equal((await world.store.countByStatus()).queued, 5, 'only the admitted ones were stored');
  });

  t.test('a cancelled job is never run; a second delivery of a finished job changes nothing', async (t) => {
    const world = await build(t);
    const [a, b] = (await world.lifecycle.submit([newJob('key-a', 'a'), newJob('key-a', 'b')])).map(stored);
    t.same(await world.lifecycle.cancel(a!.id, 'key-a'), { found: true, cancelled: true });
    t.same(await world.lifecycle.cancel(a!.id, 'key-a'), { found: true, cancelled: false }, 'once');
    t.same(await world.lifecycle.cancel(b!.id, 'key-b'), { found: false, cancelled: false }, "another key's job is not found");
    const ran: string[] = [];
    const counting: RunPlan = async (plan, owner, onStart) => {
      ran.push(plan.id);
      return echoRun(plan, owner, onStart);
    };
    // Whatever the bus still delivers (Redis keeps the cancelled job's entry; the in-process bus drops it).
    const deliveries = await world.bus.take(NODE, 10, 1000);
    for (const delivery of deliveries) await world.lifecycle.execute(delivery, NODE, counting);
    t.same(ran, [b!.id], 'only the job that was not cancelled ran');
    t.match(await world.store.get(a!.id), { status: 'failed', reason: 'cancelled' });
    const again = deliveries.find((d) => d.jobId === b!.id)!;
    await world.lifecycle.execute({ ...again, job: (await world.store.get(b!.id))! }, NODE, counting);
    t.same(ran, [b!.id], 'the finished job was not run again');
  });

  t.test('reclaim: a dead consumer\'s running job goes back to the queue and runs again', async (t) => {
    const world = await build(t);
    const job = stored((await world.lifecycle.submit([newJob('key-a', 'again')]))[0]!);
    await world.orphan(job.id);
    t.match(await world.store.get(job.id), { status: 'running', attempts: 1 });
    await world.maintenance.reclaim();
    t.match(await world.store.get(job.id), { status: 'queued' }, 'handed back');
    await world.lifecycle.execute(await takeOne(world, job.id), NODE, echoRun);
    t.match(await world.store.get(job.id), { status: 'completed', stdout: Buffer.from('again'), attempts: 2 });
    await world.maintenance.reclaim();
    t.match(await world.store.get(job.id), { status: 'completed' }, 'a dead consumer is handed back once');
  });

  t.test('reclaim: a job whose node died on its last attempt fails, and its waiters are told', async (t) => {
    const world = await build(t);
    const job = stored((await world.lifecycle.submit([newJob('key-a', 'doomed')]))[0]!);
    await world.orphan(job.id);
    await world.sql(sql`update jobs set attempts = 2 where id = ${job.id}`);
    const done = world.bus.waitDone(job.id, 10_000);
    await world.maintenance.reclaim();
    t.match(await world.store.get(job.id), { status: 'failed', reason: 'internal', error: /stopped 2 times/ });
    t.ok(await done, 'its waiters were told');
    t.same([...(await world.bus.holds([job.id]))], [], 'not queued again');
  });

  t.test('recovery: a queued job the bus lost is queued again, once it is old enough not to be on its way', async (t) => {
    const world = await build(t);
    const job = stored((await world.lifecycle.submit([newJob('key-a', 'lost')]))[0]!);
    // Taken and acknowledged without a result: as if Redis restarted empty.
    await world.bus.ack(await takeOne(world, job.id));
    await world.maintenance.recover();
    t.same([...(await world.bus.holds([job.id]))], [], 'a fresh job is left alone');
    await world.sql(sql`update jobs set created_at = now() - interval '1 minute' where id = ${job.id}`);
    await world.maintenance.recover();
    const delivery = await takeOne(world, job.id);
    await world.lifecycle.execute(delivery, NODE, echoRun);
    t.match(await world.store.get(job.id), { status: 'completed', stdout: Buffer.from('lost') });
  });

  t.test('sweep: only finished jobs past the TTL are deleted', async (t) => {
    const world = await build(t);
    const [old, fresh, waiting] = (await world.lifecycle.submit([newJob('key-a', 'o'), newJob('key-b', 'f'), newJob('key-c', 'w')])).map(stored);
    for (const job of [old!, fresh!]) await world.lifecycle.execute(await takeOne(world, job.id), NODE, echoRun);
    await world.sql(sql`update jobs set completed_at = now() - interval '2 minutes' where id = ${old!.id}`);
    await world.sql(sql`update jobs set created_at = now() - interval '2 minutes' where id = ${waiting!.id}`);
    await world.maintenance.sweep();
    t.equal(await world.store.get(old!.id), undefined, 'expired');
    t.ok(await world.store.get(fresh!.id), 'finished, but within the TTL');
    t.ok(await world.store.get(waiting!.id), 'old but never finished');
  });
}

t.test('in-process bus on PGlite (the embedded mode)', async (t) => lifecycleTests(t, inProcessWorld));
t.test('Redis Streams on PostgreSQL (a cluster)', { skip: needs('redis', 'postgres') }, async (t) => lifecycleTests(t, redisWorld));
