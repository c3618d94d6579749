import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import t from 'tap';
import { RedisKeys } from '../../src/redis/redis-keys.ts';
import { startEngineProcess, type EngineProcess } from '../../support/engine-process.ts';
import { startPostgres } from '../../support/postgres.ts';
import { startRedis } from '../../support/redis.ts';
import { startEngine } from '../helpers/engine.ts';
import { submitJob, waitForJob } from '../helpers/jobs.ts';
import { needs } from '../helpers/tier.ts';

// A hostile neighbour on the bus: whoever can write to the cluster's Redis publishes forged, garbled and
// huge messages and values on a live cluster. Jobs keep completing, no node leaves its bounds, a forged
// notice answers no request, and every ignored value is logged and counted.
t.test('a hostile neighbour on the bus', { skip: needs('redis', 'postgres', 'docker') }, async (t) => {
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  t.teardown(() => Promise.all([redis.destroy(), postgres.destroy()]));
  const prefix = `hostile-${randomBytes(3).toString('hex')}:`;
  const keys = new RedisKeys(prefix);
  const cluster = { REDIS_URL: redis.url, DATABASE_URL: await postgres.createDatabase(), REDIS_PREFIX: prefix, MAX_WORKERS: '8' };
  const api = await startEngine({ ...cluster, ROLE: 'api', RATE_LIMIT_MAX_REQUESTS: '1000', IP_RATE_LIMIT_MAX: '100000' });
  t.teardown(() => api.close());
  const managerId = `hostile-manager-${randomBytes(3).toString('hex')}`;
  const manager: EngineProcess = await startEngineProcess({ ...cluster, ROLE: 'worker', NODE_ID: managerId, CONCURRENCY: '2', LOG_LEVEL: 'warn' });
  t.teardown(() => manager.kill('SIGTERM'));
  const neighbour = new Redis(redis.url);
  t.teardown(() => neighbour.disconnect());

  const rejections = async (url: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return text.split('\n').filter((l) => l.startsWith('braindrill_bus_rejected_total{')).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  };
  const workers = async () => (await (await api.request('/api/workers')).json()) as { id: string; managerId: string }[];
  const until = async (what: string, probe: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await until('the manager and its two workers are registered', async () => (await workers()).filter((w) => w.managerId === managerId).length === 2);
  t.match(await waitForJob(api, await submitJob(api, { language: 'bash', code: 'echo before' })), { status: 'completed', output: 'before\n' });

  t.test('a forged "finished" notice answers no request: the stored result does', async (t) => {
    const answer = api.request('/lang/bash', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'sleep 2; echo the real result' });
    let jobId = '';
    await until('the request has its job', async () => {
      const listed = (await (await api.request('/jobs?limit=1')).json()) as { jobs: { job_id: string; status: string }[] };
      jobId = listed.jobs[0]?.status === 'running' ? listed.jobs[0].job_id : '';
      return jobId !== '';
    });
    await neighbour.publish(keys.doneChannel, jobId);
    const response = await answer;
    t.equal(response.status, 200);
    t.equal(await response.text(), 'the real result\n', 'the answer waited for the stored result');
    t.equal(response.headers.get('x-job-id'), jobId);
  });

  t.test('garbled and huge notices, control messages and queue entries are ignored and counted; jobs keep completing', async (t) => {
    const [apiBefore, managerBefore] = [await rejections(api.url), await rejections(manager.url)];
    const huge = 'x'.repeat(2 * 1024 * 1024);
    for (const message of ['not-a-job-id', '', huge, randomUUID().toUpperCase()]) await neighbour.publish(keys.doneChannel, message);
    for (const message of ['DROP TABLE', huge, `${randomUUID()}x`]) await neighbour.publish(keys.cancelChannel, message);
    const controls = ['{', 'null', '[]', '{"type":"SPAWN"}', `{"type":"KILL","managerId":"${managerId}","workerId":5}`, `{"type":"SPAWN","managerId":"${'m'.repeat(500)}"}`, huge, JSON.stringify({ type: 'KILL', managerId: managerId, workerId: huge.slice(0, 300) })];
    for (const message of controls) await neighbour.publish(keys.controlChannel, message);
    await neighbour.xadd(keys.jobStream, '*', 'job', 'not-a-uuid');
    await neighbour.xadd(keys.jobStream, '*', 'something', 'else');
    await neighbour.xadd(keys.jobStream, '*', 'job', huge);
    await neighbour.xadd(keys.jobStream, '*', 'job', randomUUID(), 'extra', 'field');
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await submitJob(api, { language: 'bash', code: `echo after ${i}` }));
    for (const [i, id] of ids.entries()) t.match(await waitForJob(api, id, 60_000), { status: 'completed', output: `after ${i}\n` });
    await until('the API node counted what it ignored', async () => (await rejections(api.url)) >= apiBefore + 4 + 3);
    await until('the manager counted what it ignored', async () => (await rejections(manager.url)) >= managerBefore + 4 + 3 + 4);
    t.pass('every garbled value was counted');
    t.equal((await workers()).filter((w) => w.managerId === managerId).length, 2, 'no worker was killed or added by a forged message');
  });

  t.test('a wanted worker count that is not a count never resizes a node beyond its bounds', async (t) => {
    const before = await rejections(manager.url);
    for (const value of ['abc', '100000', '-5', '3.5', ' 4']) {
      await neighbour.hset(keys.desiredWorkers, managerId, value);
      // The manager reconciles every 3 s: wait for it to have read the value.
      await until(`"${value}" was read and ignored`, async () => (await rejections(manager.url)) > before);
      t.equal((await workers()).filter((w) => w.managerId === managerId).length, 2, `"${value}": still two workers`);
    }
    const scaled = await api.request('/api/workers/scale', { method: 'POST', json: { count: 1, targetId: managerId } });
    t.equal(scaled.status, 202, 'scaling still works over a garbled count (it counts as nothing)');
    // The script counted the garbled value as what Lua's tonumber makes of it (or nothing), and stored a real count.
    const wanted = Number(await neighbour.hget(keys.desiredWorkers, managerId));
    t.ok(Number.isInteger(wanted) && wanted >= 0 && wanted <= 8, `the stored count is a count within MAX_WORKERS: ${wanted}`);
    await until(`the manager runs the ${wanted} workers it is asked for`, async () => (await workers()).filter((w) => w.managerId === managerId).length === wanted);
    t.match(await waitForJob(api, await submitJob(api, { language: 'bash', code: 'echo still working' })), { status: 'completed', output: 'still working\n' });
  });

  t.test('garbage in the membership is not listed, and is counted', async (t) => {
    const before = await rejections(api.url);
    await neighbour.sadd(keys.members('worker'), 'has spaces', 'w'.repeat(300), 'fake-worker');
    await neighbour.hset(keys.member('worker', 'fake-worker'), { managerId: managerId, status: 'EXPLODING', currentJobId: 'nope', startedAt: 'yesterday' });
    await neighbour.expire(keys.member('worker', 'fake-worker'), 60);
    const listed = await workers();
    t.notOk(listed.some((w) => w.id === 'fake-worker' || w.id.includes(' ') || w.id.length > 128), 'none of it is listed');
    t.ok((await rejections(api.url)) >= before + 3, 'and it is counted');
    t.equal((await fetch(`${api.url}/ready`)).status, 200, 'the cluster is still ready');
  });

  t.test('the nodes are alive and within their bounds', async (t) => {
    t.equal(manager.child.exitCode, null, 'the manager is running');
    const ready = (await (await fetch(`${api.url}/ready`)).json()) as { members: { managers: number; workers: number } };
    t.equal(ready.members.managers, 1);
    t.ok(ready.members.workers <= 8, `${ready.members.workers} workers, within MAX_WORKERS`);
  });
});
