import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import t from 'tap';
import { startEngine, type TestEngine } from '../helpers/engine.ts';
import { submitJob, waitForJob, waitForStatus } from '../helpers/jobs.ts';
import { startPostgres } from '../../support/postgres.ts';
import { needs } from '../helpers/tier.ts';

/** One series' value (`name` or `name{label="value"}`), 0 when the series is not there yet. */
const metric = async (engine: TestEngine, series: string): Promise<number> => {
  const text = await (await fetch(`${engine.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
};

t.test('keys', async (t) => {
  const engine = await startEngine();
  t.teardown(() => engine.close());

  t.test('no key or an unknown key: 401 with the same JSON body, counted', async (t) => {
    const before = await metric(engine, 'braindrill_auth_failures_total');
    const missing = await engine.request('/lang/python', { method: 'POST', headers: { 'x-api-key': '', 'content-type': 'text/plain' }, body: 'print(1)' });
    const unknown = await engine.request('/jobs', { headers: { 'x-api-key': 'not-a-real-key' } });
    t.equal(missing.status, 401);
    t.equal(unknown.status, 401);
    const body = await missing.json();
    t.same(await unknown.json(), body);
    t.match(body, { error: { code: 'unauthorized' } });
    t.equal(await metric(engine, 'braindrill_auth_failures_total'), before + 2);
  });

  t.test('the key may come as ?api_key=, as in the seed, and is never logged', async (t) => {
    const response = await fetch(`${engine.url}/lang/python?api_key=dev-key-12345`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'print("query key")' });
    t.equal(await response.text(), 'query key\n');
    const logs = engine.logs.join('');
    t.notMatch(logs, 'dev-key-12345');
    t.match(logs, 'api_key=[redacted]');
  });

  t.test('a credential never reaches the log, however it is spelled', async (t) => {
    const secret = (n: number) => `s3cr3t-${n}-${'q'.repeat(12)}`;
    const spellings: [string, string, Record<string, string>][] = [
      ['api_key', `/jobs?api_key=${secret(1)}`, {}],
      ['api%5Fkey', `/jobs?api%5Fkey=${secret(2)}`, {}],
      ['api%5fkey, lower-case escape', `/jobs?api%5fkey=${secret(3)}`, {}],
      ['repeated', `/jobs?api_key=${secret(4)}&limit=1&api_key=${secret(5)}`, {}],
      ['upper case', `/jobs?API_KEY=${secret(6)}`, {}],
      ['apiKey', `/jobs?apiKey=${secret(7)}`, {}],
      ['token', `/jobs?token=${secret(8)}`, {}],
      ['access_token', `/jobs?access_token=${secret(9)}`, {}],
      ['Authorization header', '/jobs', { authorization: `Bearer ${secret(10)}` }],
      ['X-API-Key header', '/jobs', { 'x-api-key': secret(11) }],
      ['X-Auth-Token header', '/jobs', { 'x-auth-token': secret(12) }],
    ];
    for (const [, path, headers] of spellings) await fetch(`${engine.url}${path}`, { headers });
    // A credential in the URL's user-info, as an absolute-form request target.
    const { hostname, port } = new URL(engine.url);
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), hostname, () => socket.end(`GET http://user:${secret(13)}@${hostname}:${port}/jobs HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`));
      socket.on('data', () => undefined).on('close', () => resolve()).on('error', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 200));
    const logs = engine.logs.join('');
    for (let n = 1; n <= 13; n++) t.notMatch(logs, secret(n), `${spellings[n - 1]?.[0] ?? 'user-info'}: not in the log`);
    t.match(logs, /api%5Fkey=\[redacted\]/, 'the parameter is still there, its value is not');
    t.match(logs, /user-info|\[redacted\]@/, 'the user-info is redacted');
  });

  t.test('open routes stay open', async (t) => {
    for (const path of ['/health', '/ready', '/metrics', '/languages']) t.equal((await fetch(`${engine.url}${path}`)).status, 200, path);
  });

  t.test('a job is invisible to a different key', async (t) => {
    const id = await submitJob(engine, { language: 'bash', code: 'echo mine' });
    await waitForJob(engine, id);
    const other = { 'x-api-key': 'test-key-abcde' };
    t.equal((await engine.request(`/jobs/${id}`, { headers: other })).status, 404);
    t.equal((await engine.request(`/api/runs/${id}`, { headers: other })).status, 404);
    t.equal((await engine.request(`/jobs/${id}`, { method: 'DELETE', headers: other })).status, 404);
    const list = (await (await engine.request('/jobs?limit=100', { headers: other })).json()) as { jobs: { job_id: string }[] };
    t.notOk(list.jobs.some((j) => j.job_id === id));
  });

  t.test('key ids reveal nothing about the key: an HMAC under this installation\'s secret', async (t) => {
    const listed = (await (await engine.request('/admin/keys')).json()) as { keys: { id: string; name: string; source: string }[] };
    const dev = listed.keys.find((k) => k.name === 'dev' && k.source === 'default');
    t.match(dev, { id: /^key_[0-9a-f]{16}$/ }, 'the development keys are listed with their ids');
    t.not(dev?.id, `key_${createHash('sha256').update('dev-key-12345').digest('hex').slice(0, 16)}`, 'not a hash of the key');
    const other = await startEngine();
    t.teardown(() => other.close());
    const elsewhere = (await (await other.request('/admin/keys')).json()) as { keys: { id: string; name: string }[] };
    t.not(elsewhere.keys.find((k) => k.name === 'dev')?.id, dev?.id, 'another installation gives the same key another id');
  });

  t.test('admin routes need an admin key', async (t) => {
    t.equal((await engine.request('/admin/keys', { headers: { 'x-api-key': 'test-key-abcde' } })).status, 403);
    t.equal((await engine.request('/admin/keys')).status, 200);
  });

  t.test('blocked patterns are refused as policy, with their rule', async (t) => {
    const series = 'braindrill_validation_errors_total{rule="blocked_pattern"}';
    const before = await metric(engine, series);
    const response = await engine.request('/lang/bash', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'curl http://127.0.0.1/' });
    t.equal(response.status, 400);
    t.match(await response.json(), { error: { code: 'blocked_pattern', message: /curl/ } });
    t.equal(await metric(engine, series), before + 1, 'the refusal is counted under its rule');
  });
});

t.test('BLOCKED_PATTERNS=off turns the list off', async (t) => {
  const engine = await startEngine({ BLOCKED_PATTERNS: 'off' });
  t.teardown(() => engine.close());
  const response = await engine.request('/lang/bash', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'echo "rm -rf is just text"' });
  t.equal(await response.text(), 'rm -rf is just text\n');
});

t.test('rate limit: capacity 5, the sixth is 429 with Retry-After; a token returns after window/capacity', async (t) => {
  const engine = await startEngine({ RATE_LIMIT_MAX_REQUESTS: '5', RATE_LIMIT_WINDOW_SECONDS: '3600' });
  t.teardown(() => engine.close());
  const remaining = [];
  for (let i = 0; i < 5; i++) {
    const response = await engine.request('/jobs', { method: 'POST', json: { language: 'bash', code: `echo ${i}` } });
    t.equal(response.status, 202);
    remaining.push(response.headers.get('x-ratelimit-remaining'));
  }
  t.same(remaining, ['4', '3', '2', '1', '0']);
  const refused = await engine.request('/jobs', { method: 'POST', json: { language: 'bash', code: 'echo 6' } });
  t.equal(refused.status, 429);
  // One token per 3600 s / 5 = 720 s; the bucket has refilled a little since the first request.
  const retryAfter = Number(refused.headers.get('retry-after'));
  t.ok(retryAfter > 600 && retryAfter <= 720, `Retry-After ${retryAfter} s is the time until the next token (at most 720)`);
  t.equal(refused.headers.get('x-ratelimit-retry-after'), String(retryAfter), 'both headers say the same');
  t.equal(refused.headers.get('x-ratelimit-remaining'), '0');
  t.match(await refused.json(), { error: { code: 'rate_limited' } });
  t.equal(await metric(engine, 'braindrill_rate_limit_hits_total'), 1);
  const read = await engine.request('/jobs');
  t.equal(read.status, 200, 'reads have their own bucket');
  t.ok(Number(read.headers.get('x-ratelimit-remaining')) > 100);
  const other = await engine.request('/jobs', { method: 'POST', headers: { 'x-api-key': 'test-key-abcde' }, json: { language: 'bash', code: 'echo other' } });
  t.equal(other.status, 202, 'another key has its own bucket');
});

t.test('rate limit refill: one token per window/capacity', async (t) => {
  // One token per 5 s: the three requests below fit well inside it even on a busy machine.
  const engine = await startEngine({ RATE_LIMIT_MAX_REQUESTS: '2', RATE_LIMIT_WINDOW_SECONDS: '10' });
  t.teardown(() => engine.close());
  const post = () => engine.request('/jobs', { method: 'POST', json: { language: 'bash', code: 'echo x' } });
  t.equal((await post()).status, 202);
  t.equal((await post()).status, 202);
  const emptied = Date.now();
  const refused = await post();
  t.equal(refused.status, 429);
  const retryAfter = Number(refused.headers.get('retry-after'));
  t.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter} s: until the next token, at most 5 s`);
  await new Promise((r) => setTimeout(r, Math.max(0, emptied + 5200 - Date.now())));
  t.equal((await post()).status, 202, 'one token came back after 5 s');
});

t.test('quotas: per-key queued limit is 429, the backlog guard is 503 with Retry-After', async (t) => {
  const engine = await startEngine({ CONCURRENCY: '1', KEY_MAX_QUEUED_JOBS: '2', MAX_BACKLOG: '3' });
  t.teardown(() => engine.close());
  const a = await submitJob(engine, { language: 'bash', code: 'sleep 2' });
  await waitForStatus(engine, a, 'running');
  await submitJob(engine, { language: 'bash', code: 'echo queued' });
  const over = await engine.request('/jobs', { method: 'POST', json: { language: 'bash', code: 'echo 3' } });
  t.equal(over.status, 429);
  t.match(await over.json(), { error: { code: 'quota_exceeded', message: /KEY_MAX_QUEUED_JOBS/ } });
  const other = { 'x-api-key': 'test-key-abcde' };
  t.equal((await engine.request('/jobs', { method: 'POST', headers: other, json: { language: 'bash', code: 'echo b1' } })).status, 202, 'other keys are unaffected');
  t.equal((await engine.request('/jobs', { method: 'POST', headers: other, json: { language: 'bash', code: 'echo b2' } })).status, 202);
  const full = await engine.request('/jobs', { method: 'POST', headers: { 'x-api-key': 'prod-key-67890' }, json: { language: 'bash', code: 'echo c' } });
  t.equal(full.status, 503);
  t.ok(Number(full.headers.get('retry-after')) > 0);
  t.match(await full.json(), { error: { code: 'backlog_full' } });
  t.match(await fetch(`${engine.url}/metrics`).then((r) => r.text()), /braindrill_jobs_rejected_total\{cause="quota"\} 1/);
});

t.test('KEY_MAX_RUNNING_JOBS: one key cannot take every worker', async (t) => {
  const engine = await startEngine({ CONCURRENCY: '2', KEY_MAX_RUNNING_JOBS: '1' });
  t.teardown(() => engine.close());
  const a1 = await submitJob(engine, { language: 'bash', code: 'sleep 2' });
  const a2 = await submitJob(engine, { language: 'bash', code: 'sleep 2' });
  await waitForStatus(engine, a1, 'running');
  const b = await engine.request('/jobs', { method: 'POST', headers: { 'x-api-key': 'test-key-abcde' }, json: { language: 'bash', code: 'echo b' } });
  const bId = ((await b.json()) as { job_id: string }).job_id;
  const bJob = await waitForJob(engine, bId, 60_000, 'test-key-abcde');
  t.equal(bJob.output, 'b\n');
  const a2Now = (await (await engine.request(`/jobs/${a2}`)).json()) as { status: string };
  t.equal(a2Now.status, 'queued', "the key's second job waited while another key ran");
  t.match(await waitForJob(engine, a2), { status: 'completed' });
});

t.test('production mode refuses the development keys and needs its own', async (t) => {
  await t.rejects(startEngine({ NODE_ENV: 'production', API_KEYS: 'dev:dev-key-12345' }), /production refuses the default keys/);
  await t.rejects(startEngine({ NODE_ENV: 'production', API_KEYS: 'dev:dev-key-12345:admin' }), /production refuses the default keys/);
  await t.rejects(startEngine({ NODE_ENV: 'production' }), /no API keys/);
  const engine = await startEngine({ NODE_ENV: 'production', API_KEYS: 'ops:a-long-enough-secret:admin' });
  t.teardown(() => engine.close());
  t.equal((await engine.request('/jobs')).status, 401, 'dev-key-12345 does not exist in production');
  t.equal((await engine.request('/jobs', { headers: { 'x-api-key': 'a-long-enough-secret' } })).status, 200);
});

t.test('revocation reaches every node within seconds (two nodes, one PostgreSQL)', { skip: needs('postgres') }, async (t) => {
  const postgres = await startPostgres();
  t.teardown(() => postgres.destroy());
  const url = await postgres.createDatabase();
  const a = await startEngine({ DATABASE_URL: url });
  const b = await startEngine({ DATABASE_URL: url });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const created = (await (await a.request('/admin/keys', { method: 'POST', json: { name: 'temp' } })).json()) as { id: string; key: string };
  t.match(created.key, /^bd_/);
  const asTemp = { 'x-api-key': created.key };
  let okOnB = false;
  for (let i = 0; i < 30 && !okOnB; i++) {
    okOnB = (await b.request('/jobs', { headers: asTemp })).status === 200;
    if (!okOnB) await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(okOnB, 'a key created on A works on B');
  t.equal((await a.request(`/admin/keys/${created.id}`, { method: 'DELETE' })).status, 200);
  t.equal((await a.request('/jobs', { headers: asTemp })).status, 401, 'revoked at once on A');
  const start = Date.now();
  while ((await b.request('/jobs', { headers: asTemp })).status === 200 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 100));
  t.equal((await b.request('/jobs', { headers: asTemp })).status, 401, `revoked on B after ${Date.now() - start} ms`);
  // A configured key is revoked the same way, by its id (as /admin/keys lists it).
  const listed = (await (await a.request('/admin/keys')).json()) as { keys: { id: string; name: string; source: string }[] };
  const testKey = listed.keys.find((k) => k.name === 'test' && k.source === 'default')!.id;
  t.match(testKey, /^key_[0-9a-f]{16}$/);
  t.equal((await a.request(`/admin/keys/${testKey}`, { method: 'DELETE' })).status, 200);
  t.equal((await a.request('/jobs', { headers: { 'x-api-key': 'test-key-abcde' } })).status, 401);
});
