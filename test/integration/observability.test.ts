import t from 'tap';
import { startEngine, run } from '../helpers/engine.ts';
import { submitJob, waitForJob } from '../helpers/jobs.ts';

const engine = await startEngine({ RATE_LIMIT_MAX_REQUESTS: '30' });
t.teardown(() => engine.close());

/** A small Prometheus text-format parser: every sample line must parse, or the test fails. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    // Values are Go floats: NaN and Inf in any case (prom-client writes "Nan").
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]?[Ii]nf)$/.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}

const scrape = async () => parse(await (await fetch(`${engine.url}/metrics`)).text());
const sum = (samples: Map<string, number>, prefix: string) => [...samples].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

t.test('/metrics is valid Prometheus text with every seed name and Node.js process metrics', async (t) => {
  const samples = await scrape();
  const text = await (await fetch(`${engine.url}/metrics`)).text();
  for (const name of [
    'braindrill_requests_total', 'braindrill_execution_duration_seconds', 'braindrill_active_executions', 'braindrill_auth_failures_total',
    'braindrill_rate_limit_hits_total', 'braindrill_validation_errors_total', 'braindrill_worker_pool_size', 'braindrill_queue_depth',
    'braindrill_queued_jobs', 'braindrill_jobs_submitted_total', 'braindrill_executions_total', 'braindrill_container_start_seconds',
    'braindrill_jobs_rejected_total', 'braindrill_jobs_recovered_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds',
  ]) t.match(text, `# TYPE ${name} `, name);
  t.ok(samples.get('braindrill_worker_pool_size')! > 0);
  for (const language of ['python', 'java', 'rust']) {
    for (const series of [`braindrill_queue_depth{language="${language}"}`, `braindrill_queued_jobs{language="${language}"}`, `braindrill_jobs_submitted_total{language="${language}"}`, `braindrill_requests_total{language="${language}",status="timedout"}`]) {
      t.type(samples.get(series), 'number', `${series} is there from the start`);
    }
  }
});

t.test('each metric moves when its event happens', async (t) => {
  const before = await scrape();
  await run(engine, 'python', { code: 'print(1)' });
  const id = await submitJob(engine, { language: 'bash', code: 'echo job' });
  await waitForJob(engine, id);
  await run(engine, 'python', { code: 'while True: pass' });
  await run(engine, 'python', { code: 'x = bytearray(400 * 1024 * 1024)' });
  await engine.request('/jobs', { headers: { 'x-api-key': 'nope' } });
  await engine.request('/lang/python', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '   ' });
  const after = await scrape();
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  t.equal(delta('braindrill_requests_total{language="python",status="completed"}'), 1);
  t.equal(delta('braindrill_requests_total{language="bash",status="completed"}'), 1);
  t.equal(delta('braindrill_jobs_submitted_total{language="python"}'), 3);
  t.equal(delta('braindrill_executions_total{language="python",status="timedout",reason="time_limit"}'), 1);
  t.equal(delta('braindrill_executions_total{language="python",status="failed",reason="memory_limit"}'), 1);
  t.equal(delta('braindrill_execution_duration_seconds_count{language="python"}'), 3);
  t.ok(delta('braindrill_container_start_seconds_count{language="bash"}') >= 1, 'container starts are timed (cold or warm)');
  t.equal(delta('braindrill_auth_failures_total'), 1);
  t.equal(delta('braindrill_validation_errors_total{rule="empty_code"}'), 1);
  t.equal(after.get('braindrill_active_executions'), 0);
  for (let i = 0; i < 40; i++) await engine.request('/jobs', { method: 'POST', json: { language: 'bash', code: '' } });
  const limited = await scrape();
  t.ok(sum(limited, 'braindrill_rate_limit_hits_total') > 0, 'rate-limit hits are counted');
});

t.test('logs: JSON lines with a request id, the job id where a job is involved, and no code, stdin or key', async (t) => {
  const secretCode = 'print("s3cr3t-c0de-marker")';
  const secretStdin = 'st4in-marker';
  // Another key: the test above used up dev-key-12345's submissions on purpose.
  const response = await engine.request('/lang/python', { method: 'POST', headers: { accept: 'application/json', 'x-api-key': 'test-key-abcde' }, json: { code: secretCode, stdin: secretStdin } });
  t.equal(response.status, 200);
  const jobId = response.headers.get('x-job-id')!;
  const lines = engine.logs.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const all = JSON.stringify(lines);
  t.notMatch(all, 's3cr3t-c0de-marker');
  t.notMatch(all, 'st4in-marker');
  t.notMatch(all, 'dev-key-12345');
  t.notMatch(all, 'test-key-abcde');
  const requestLines = lines.filter((l) => l.reqId !== undefined);
  t.ok(requestLines.length > 0, 'request lines carry reqId');
  t.ok(lines.some((l) => l.job === jobId && l.reqId !== undefined), 'the job id appears on a request line');
  t.ok(lines.some((l) => l.job === jobId && l.msg === 'job finished'), 'and on the job manager\'s line');
});
