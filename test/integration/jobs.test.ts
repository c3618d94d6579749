import t, { type Test } from 'tap';
import { containersLeft, containersOf, startEngine, type TestEngine } from '../helpers/engine.ts';
import { submitJob, waitForJob, waitForStatus } from '../helpers/jobs.ts';
import { startPostgres } from '../../support/postgres.ts';
import { needs } from '../helpers/tier.ts';

const SEED_FIELDS = ['job_id', 'language', 'status', 'output', 'error', 'created_at', 'started_at', 'completed_at', 'execution_duration_ms'];

/** The same async flow in every mode: embedded PGlite, and one node on a real PostgreSQL. */
async function asyncFlow(t: Test, engine: TestEngine) {
  t.test('POST /jobs then GET /jobs/:id gives the seed\'s completed object', async (t) => {
    const response = await engine.request('/jobs', { method: 'POST', json: { code: 'print("Hello World")', language: 'python' } });
    t.equal(response.status, 202);
    const accepted = (await response.json()) as { job_id: string; status: string };
    t.same(Object.keys(accepted).sort(), ['job_id', 'status']);
    t.equal(accepted.status, 'queued');
    const job = await waitForJob(engine, accepted.job_id);
    for (const field of SEED_FIELDS) t.ok(field in job, `has ${field}`);
    t.match(job, { job_id: accepted.job_id, language: 'python', status: 'completed', output: 'Hello World\n', error: null, reason: null, exit_code: 0, stdout: 'Hello World\n', stderr: '' });
    t.match(job.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    t.ok(job.started_at && job.completed_at);
    t.ok(Date.parse(job.started_at!) >= Date.parse(job.created_at) && Date.parse(job.completed_at!) >= Date.parse(job.started_at!));
    t.type(job.execution_duration_ms, 'number');

    const run = (await (await engine.request(`/api/runs/${accepted.job_id}`)).json()) as Record<string, unknown>;
    t.match(run, { id: accepted.job_id, language: 'python', status: 'COMPLETED', output: 'Hello World\n', error: null, executionTime: job.execution_duration_ms });
    t.ok(run.createdAt && run.updatedAt);
  });

  t.test('Lambex: POST /api/runs → 202 with a real polling url', async (t) => {
    const response = await engine.request('/api/runs', { method: 'POST', json: { language: 'javascript', code: 'console.log(1 + 1)' } });
    t.equal(response.status, 202);
    const body = (await response.json()) as { id: string; status: string; url: string };
    t.equal(body.status, 'QUEUED');
    t.equal(body.url, `/api/runs/${body.id}`);
    const job = await waitForJob(engine, body.id);
    t.equal(job.output, '2\n');
    const run = (await (await engine.request(body.url)).json()) as { status: string; output: string };
    t.same([run.status, run.output], ['COMPLETED', '2\n']);
  });

  t.test('failed and timed-out jobs carry status, reason and error', async (t) => {
    const failed = await waitForJob(engine, await submitJob(engine, { language: 'python', code: 'raise SystemExit("boom")' }));
    t.match(failed, { status: 'failed', reason: 'runtime_error', error: /boom/, exit_code: 1 });
    const timedout = await waitForJob(engine, await submitJob(engine, { language: 'bash', code: 'sleep 60' }));
    t.match(timedout, { status: 'timedout', reason: 'time_limit', error: /time limit/ });
    const run = (await (await engine.request(`/api/runs/${timedout.job_id}`)).json()) as { status: string };
    t.equal(run.status, 'TIMEOUT');
  });

  t.test('output with NUL bytes and invalid UTF-8 round-trips through the database', async (t) => {
    const job = await waitForJob(engine, await submitJob(engine, { language: 'python', code: 'import sys\nsys.stdout.buffer.write(b"a\\x00b\\xff\\xfec\\n")' }));
    t.equal(job.output, 'a\u0000b\ufffd\ufffdc\n');
  });

  t.test('pagination: newest first, totals, capped limit, bad values refused', async (t) => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await submitJob(engine, { language: 'bash', code: `echo ${i}` }));
    const page = (await (await engine.request('/jobs?limit=2&offset=0')).json()) as { jobs: { job_id: string }[]; pagination: { total: number; limit: number; offset: number } };
    t.equal(page.jobs.length, 2);
    t.same(page.jobs.map((j) => j.job_id), [ids[2], ids[1]], 'newest first');
    t.ok(page.pagination.total >= 3);
    t.match(page.pagination, { limit: 2, offset: 0 });
    const next = (await (await engine.request('/jobs?limit=2&offset=1')).json()) as { jobs: { job_id: string }[] };
    t.equal(next.jobs[0]!.job_id, ids[1]);
    const capped = (await (await engine.request('/jobs?limit=1000')).json()) as { pagination: { limit: number } };
    t.equal(capped.pagination.limit, 100);
    for (const query of ['limit=-1', 'limit=abc', 'offset=-5', 'limit=0', 'offset=1.5', 'limit=NaN']) {
      const response = await engine.request(`/jobs?${query}`);
      t.equal(response.status, 400, query);
    }
    for (const id of ids) await waitForJob(engine, id);
  });

  t.test('unknown id → 404, malformed id → 400', async (t) => {
    t.equal((await engine.request('/jobs/00000000-0000-4000-8000-000000000000')).status, 404);
    t.equal((await engine.request('/api/runs/00000000-0000-4000-8000-000000000000')).status, 404);
    const bad = await engine.request('/jobs/not-a-uuid');
    t.equal(bad.status, 400);
    t.equal(((await bad.json()) as { error: { code: string } }).error.code, 'invalid_job_id');
    t.equal((await engine.request("/jobs/'%20OR%201=1")).status, 400);
  });

  t.test('cancel a running job: failed/cancelled and its container is killed', async (t) => {
    const id = await submitJob(engine, { language: 'bash', code: 'sleep 30' });
    await waitForStatus(engine, id, 'running');
    for (let i = 0; i < 50 && (await containersOf(engine.nodeId)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const response = await engine.request(`/jobs/${id}`, { method: 'DELETE' });
    t.equal(response.status, 200);
    t.match(await response.json(), { job_id: id, status: 'failed', reason: 'cancelled' });
    t.same(await containersLeft(engine.nodeId), [], 'the container is gone');
    const again = await engine.request(`/jobs/${id}`, { method: 'DELETE' });
    t.equal(again.status, 409, 'a finished job cannot be cancelled');
    t.match(await waitForJob(engine, id), { status: 'failed', reason: 'cancelled' }, 'the late result does not overwrite the cancel');
  });
}

t.test('embedded mode (PGlite)', async (t) => {
  const engine = await startEngine();
  t.teardown(() => engine.close());
  await asyncFlow(t, engine);
});

t.test('single node on PostgreSQL', { skip: needs('postgres') }, async (t) => {
  const postgres = await startPostgres();
  t.teardown(() => postgres.destroy());
  const engine = await startEngine({ DATABASE_URL: await postgres.createDatabase() });
  t.teardown(() => engine.close());
  await asyncFlow(t, engine);
});

t.test('cancel a queued job (one worker busy)', async (t) => {
  const engine = await startEngine({ CONCURRENCY: '1' });
  t.teardown(() => engine.close());
  const blocker = await submitJob(engine, { language: 'bash', code: 'sleep 2; echo done' });
  const queued = await submitJob(engine, { language: 'bash', code: 'echo never' });
  const response = await engine.request(`/jobs/${queued}`, { method: 'DELETE' });
  t.match(await response.json(), { status: 'failed', reason: 'cancelled', output: '', exit_code: null });
  t.match(await waitForJob(engine, blocker), { status: 'completed', output: 'done\n' });
  t.match(await waitForJob(engine, queued), { status: 'failed', reason: 'cancelled', output: '', exit_code: null, execution_duration_ms: null }, 'it never ran');
});

t.test('a sync request that waits too long answers 504 with X-Job-Id, and the job can still be polled', async (t) => {
  const engine = await startEngine({ CONCURRENCY: '1', SYNC_WAIT_MARGIN_MS: '0' });
  t.teardown(() => engine.close());
  const limits = ((await (await engine.request('/languages')).json()) as { languages: { id: string; limits: { timeout_ms: number } }[] }).languages.find((l) => l.id === 'bash')!.limits;
  const seconds = Math.floor(limits.timeout_ms / 1000);
  // Queued behind a job that takes all but a second of the wait, a 2 s job cannot finish in time.
  const blocker = await submitJob(engine, { language: 'bash', code: `sleep ${seconds - 1}` });
  await waitForStatus(engine, blocker, 'running');
  const response = await engine.request('/lang/bash', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'sleep 2; echo late' });
  t.equal(response.status, 504);
  const id = response.headers.get('x-job-id');
  t.ok(id);
  t.match(await waitForJob(engine, id!), { status: 'completed', output: 'late\n' });
});

t.test('TTL: only finished jobs older than JOBS_TTL are deleted', async (t) => {
  const engine = await startEngine({ JOBS_TTL: '2', CONCURRENCY: '1' });
  t.teardown(() => engine.close());
  const finished = await submitJob(engine, { language: 'bash', code: 'echo old' });
  await waitForJob(engine, finished);
  const running = await submitJob(engine, { language: 'bash', code: 'sleep 4' });
  await waitForStatus(engine, running, 'running');
  const deadline = Date.now() + 10_000;
  while ((await engine.request(`/jobs/${finished}`)).status === 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  t.equal((await engine.request(`/jobs/${finished}`)).status, 404, 'the expired finished job is gone');
  t.equal((await engine.request(`/jobs/${running}`)).status, 200, 'a running job is never swept');
  t.match(await waitForJob(engine, running), { status: 'completed' });
});
