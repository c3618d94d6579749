import t from 'tap';
import { ask, dispatch, start, stop } from '../../src/actors/system.ts';
import { spawnWorkerPool, type PoolMessage, type PoolOptions, type PoolStats } from '../../src/actors/worker-pool.ts';
import type { ExecutionReply } from '../../src/actors/worker.ts';
import type { RunFunction } from '../../src/actors/runner.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import type { ExecutionPlan, ExecutionResult } from '../../src/sandbox/execution.ts';

// A fake sandbox: this tests the actors' scheduling and supervision, not Docker (test/integration does).
const plan = (id: string, language = 'python'): ExecutionPlan => ({ id, language: { id: language } } as unknown as ExecutionPlan);
const ok = (stdout: string): ExecutionResult => ({
  status: 'completed', reason: null, stdout, stderr: '', exitCode: 0, signal: null, executionTimeMs: 1, truncated: false,
  compile: null, run: null, stdoutBytes: Buffer.from(stdout), stderrBytes: Buffer.alloc(0), cause: null,
});

function setup(size: number, run: RunFunction, options: Pick<PoolOptions, 'budget' | 'maxRunningPerOwner'> = {}) {
  const system = start();
  const pool = spawnWorkerPool(system, { size, run, ...options, metrics: new Metrics({ processMetrics: false }), log: createLogger('silent', 'test') });
  const submit = (p: ExecutionPlan) => ask<PoolMessage, ExecutionReply>(pool, (replyTo) => ({ type: 'submit', plan: p, replyTo }), 5000, 'pool').then((r) => r.result);
  const stats = () => ask<PoolMessage, PoolStats>(pool, (replyTo) => ({ type: 'stats', replyTo }), 1000, 'pool');
  return { system, pool, submit, stats };
}

t.test('a Runner that throws ends as failed/internal and the pool keeps serving', async (t) => {
  const { system, submit } = setup(1, async (p) => {
    if (p.id === 'boom') throw new Error('runner exploded');
    return ok(p.id);
  });
  t.teardown(() => stop(system));
  const crashed = await submit(plan('boom'));
  t.equal(crashed.status, 'failed');
  t.equal(crashed.reason, 'internal');
  t.match(crashed.cause, /runner exploded/, 'and says why');
  const next = await submit(plan('after'));
  t.equal(next.stdout, 'after', 'the same single worker serves the next execution');
});

t.test('executions beyond the pool size wait in FIFO order and run at most `size` at once', async (t) => {
  let running = 0;
  let peak = 0;
  const order: string[] = [];
  const { system, submit } = setup(2, async (p) => {
    running++;
    peak = Math.max(peak, running);
    order.push(p.id);
    await new Promise((r) => setTimeout(r, 20));
    running--;
    return ok(p.id);
  });
  t.teardown(() => stop(system));
  const ids = Array.from({ length: 8 }, (_, i) => `e${i}`);
  const results = await Promise.all(ids.map((id) => submit(plan(id))));
  t.same(results.map((r) => r.stdout), ids);
  t.equal(peak, 2);
  t.same(order, ids, 'started in submission order');
});

t.test('cancel: a queued execution answers cancelled at once, a running one gets its signal aborted', async (t) => {
  const { system, pool, submit } = setup(1, (p, signal) =>
    new Promise((resolve) => {
      signal.addEventListener('abort', () => resolve({ ...ok(''), status: 'failed', reason: 'cancelled' }));
      if (p.id !== 'long') resolve(ok(p.id));
    }),
  );
  t.teardown(() => stop(system));
  const long = submit(plan('long'));
  const queued = submit(plan('queued'));
  await new Promise((r) => setTimeout(r, 20));
  dispatch(pool, { type: 'cancel', executionId: 'queued' });
  t.equal((await queued).reason, 'cancelled');
  dispatch(pool, { type: 'cancel', executionId: 'long' });
  t.equal((await long).reason, 'cancelled');
});

t.test('resize down never interrupts a running execution', async (t) => {
  let release!: () => void;
  const { system, pool, submit, stats } = setup(2, (p) =>
    p.id === 'slow' ? new Promise((resolve) => (release = () => resolve(ok('slow')))) : Promise.resolve(ok(p.id)),
  );
  t.teardown(() => stop(system));
  const slow = submit(plan('slow'));
  await new Promise((r) => setTimeout(r, 20));
  dispatch(pool, { type: 'resize', count: 0 });
  await new Promise((r) => setTimeout(r, 20));
  t.equal((await stats()).workers, 1, 'the busy worker is still there');
  release();
  t.equal((await slow).stdout, 'slow');
  await new Promise((r) => setTimeout(r, 20));
  t.equal((await stats()).workers, 0);
});

t.test('an owner at its running limit waits without blocking other owners', async (t) => {
  const system = start();
  t.teardown(() => stop(system));
  const release = new Map<string, () => void>();
  const started: string[] = [];
  const pool = spawnWorkerPool(system, {
    size: 2,
    maxRunningPerOwner: 1,
    run: (p) => new Promise((resolve) => {
      started.push(p.id);
      release.set(p.id, () => resolve(ok(p.id)));
    }),
    metrics: new Metrics({ processMetrics: false }),
    log: createLogger('silent', 'test'),
  });
  const submit = (id: string, owner: string) =>
    ask<PoolMessage, ExecutionReply>(pool, (replyTo) => ({ type: 'submit', plan: plan(id), owner, replyTo }), 5000, 'pool').then((r) => r.result);
  const a1 = submit('a1', 'A');
  const a2 = submit('a2', 'A');
  const b1 = submit('b1', 'B');
  await new Promise((r) => setTimeout(r, 30));
  t.same(started, ['a1', 'b1'], "A's second execution waits, B's runs");
  release.get('b1')!();
  t.equal((await b1).stdout, 'b1');
  await new Promise((r) => setTimeout(r, 30));
  t.same(started, ['a1', 'b1'], 'a free worker does not break the per-owner limit');
  release.get('a1')!();
  await a1;
  await new Promise((r) => setTimeout(r, 30));
  t.same(started, ['a1', 'b1', 'a2']);
  release.get('a2')!();
  t.equal((await a2).stdout, 'a2');
});

/** A plan of a language with the given limits (a stand-in: the pool reads only ids and limits). */
const sized = (id: string, memoryMb: number, cpus: number): ExecutionPlan =>
  ({ id, language: { id: `lang-${id}`, compile: null, limits: { memoryMb, cpus } } } as unknown as ExecutionPlan);

t.test('budget: executions wait until their memory and CPU fit, in order; smaller ones never overtake', async (t) => {
  const release = new Map<string, () => void>();
  const started: string[] = [];
  const running = (p: ExecutionPlan) =>
    new Promise<ExecutionResult>((resolve) => {
      started.push(p.id);
      release.set(p.id, () => resolve(ok(p.id)));
    });
  const { system, submit, stats } = setup(3, running, { budget: { memoryMb: 300, cpus: 2 } });
  t.teardown(() => stop(system));
  const java = submit(sized('java', 256, 2));
  const python = submit(sized('python', 50, 1));
  const perl = submit(sized('perl', 20, 1));
  await new Promise((r) => setTimeout(r, 30));
  t.same(started, ['java'], 'nothing fits beside a 2-CPU Java run, although workers are free');
  t.equal((await stats()).capacity, 0, 'the waiting ones are spoken for: the pool takes nothing more');
  release.get('java')!();
  await java;
  await new Promise((r) => setTimeout(r, 30));
  t.same(started, ['java', 'python', 'perl'], 'then both, in order');
  for (const id of ['python', 'perl']) release.get(id)!();
  await Promise.all([python, perl]);
});

t.test('budget: an execution larger than the whole budget still runs, alone', async (t) => {
  const { system, submit } = setup(2, async (p) => ok(p.id), { budget: { memoryMb: 100, cpus: 1 } });
  t.teardown(() => stop(system));
  t.equal((await submit(sized('big', 512, 1))).stdout, 'big');
});
