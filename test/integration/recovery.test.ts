import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { API_KEY, containersLeft, startEngine } from '../helpers/engine.ts';
import { submitJob, waitForJob, waitForStatus } from '../helpers/jobs.ts';
import { startEngineProcess } from '../../support/engine-process.ts';
import { startPostgres } from '../../support/postgres.ts';

const post = (url: string, body: unknown) =>
  fetch(`${url}/jobs`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
    async (r) => ((await r.json()) as { job_id: string }).job_id,
  );

for (const mode of ['pglite', 'postgres'] as const) {
  t.test(`${mode}: a SIGKILLed node's queued and running jobs are run or failed after restart, finished jobs kept`, async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'braindrill-recovery-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    let env: Record<string, string> = { DATA_DIR: dataDir };
    if (mode === 'postgres') {
      const postgres = await startPostgres();
      t.teardown(() => postgres.destroy());
      env = { DATABASE_URL: await postgres.createDatabase() };
    }
    const nodeId = `test-recover-${randomBytes(3).toString('hex')}`;
    const first = await startEngineProcess({ ...env, NODE_ID: nodeId, CONCURRENCY: '1' });
    t.teardown(() => first.kill('SIGKILL'));
    const finished = await post(first.url, { language: 'bash', code: 'echo kept' });
    for (let i = 0; i < 100; i++) {
      const job = (await (await fetch(`${first.url}/jobs/${finished}`, { headers: { 'x-api-key': API_KEY } })).json()) as { status: string };
      if (job.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const running = await post(first.url, { language: 'bash', code: 'sleep 3; echo ran' });
    const queued = await post(first.url, { language: 'bash', code: 'echo queued-ran' });
    let status = '';
    for (let i = 0; i < 200 && status !== 'running'; i++) {
      status = ((await (await fetch(`${first.url}/jobs/${running}`, { headers: { 'x-api-key': API_KEY } })).json()) as { status: string }).status;
      if (status !== 'running') await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(status, 'running', 'the node is killed while the job runs');
    await first.kill('SIGKILL');

    const second = await startEngine({ ...env, NODE_ID: nodeId });
    t.teardown(() => second.close());
    t.match(await waitForJob(second, finished), { status: 'completed', output: 'kept\n' }, 'finished jobs survive the restart');
    t.match(await waitForJob(second, running), { status: 'completed', output: 'ran\n', attempts: 2 }, 'the job the kill interrupted ran again, to the end');
    t.match(await waitForJob(second, queued), { status: 'completed', output: 'queued-ran\n' }, 'the queued job ran after the restart');
    t.same(await containersLeft(nodeId), [], 'the killed run\'s container was reaped');
  });
}

t.test('database stop/start: 503 JSON while down, the process keeps running and recovers', async (t) => {
  const postgres = await startPostgres();
  t.teardown(() => postgres.destroy());
  const engine = await startEngine({ DATABASE_URL: await postgres.createDatabase() });
  t.teardown(() => engine.close());
  const before = await submitJob(engine, { language: 'bash', code: 'echo before' });
  await waitForJob(engine, before);

  await postgres.stop();
  const get = await engine.request(`/jobs/${before}`);
  t.equal(get.status, 503);
  t.equal(((await get.json()) as { error: { code: string } }).error.code, 'database_unavailable');
  const submit = await engine.request('/jobs', { method: 'POST', json: { language: 'bash', code: 'echo during' } });
  t.equal(submit.status, 503);
  const ready = await engine.request('/ready');
  t.equal(ready.status, 503);
  const readyBody = await ready.text();
  t.match(JSON.parse(readyBody), { status: 'not_ready', checks: { database: { ok: false } } });
  t.notMatch(readyBody, /ECONNREFUSED|connect|terminat|message/i, 'up or down, never the error text: anyone may ask');
  t.match(engine.logs.join(''), /a dependency did not answer the readiness check/, 'the cause is in the log');
  t.equal((await engine.request('/health')).status, 200, 'liveness stays up');

  await postgres.start();
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await engine.request(`/jobs/${before}`)).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(status, 200, 'reads recover without a restart');
  const after = await submitJob(engine, { language: 'bash', code: 'echo after' });
  t.match(await waitForJob(engine, after), { status: 'completed', output: 'after\n' });
  t.equal((await engine.request('/ready')).status, 200);
});

t.test('a result that arrives while the database is down is kept and saved when it returns', async (t) => {
  const postgres = await startPostgres();
  t.teardown(() => postgres.destroy());
  const engine = await startEngine({ DATABASE_URL: await postgres.createDatabase() });
  t.teardown(() => engine.close());
  const id = await submitJob(engine, { language: 'bash', code: 'sleep 2; echo survived' });
  await waitForStatus(engine, id, 'running');
  await postgres.stop();
  await new Promise((r) => setTimeout(r, 3000));
  await postgres.start();
  t.match(await waitForJob(engine, id, 40_000), { status: 'completed', output: 'survived\n' });
});
