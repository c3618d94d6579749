import t from 'tap';
import { startEngine } from '../helpers/engine.ts';

const engine = await startEngine();
t.teardown(() => engine.close());

t.test('unsupported language: 400 JSON listing the supported ids', async (t) => {
  const response = await engine.request('/lang/cobol', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'DISPLAY "x"' });
  t.equal(response.status, 400);
  const body = (await response.json()) as { error: { code: string; message: string; supported: string[] } };
  t.equal(body.error.code, 'unsupported_language');
  t.ok(body.error.supported.includes('python'));
  t.match(body.error.message, /cobol/);
});

t.test('Accept: application/json returns the snake_case result object', async (t) => {
  const response = await engine.request('/lang/python', { method: 'POST', headers: { 'content-type': 'text/plain', accept: 'application/json' }, body: 'print("json")' });
  t.equal(response.status, 200);
  const body = (await response.json()) as Record<string, unknown>;
  t.match(body, { language: 'python', status: 'completed', reason: null, stdout: 'json\n', stderr: '', exit_code: 0, signal: null, truncated: false });
  t.type(body.execution_time_ms, 'number');
  t.match(body.run, { exit_code: 0 });
  t.ok(response.headers.get('x-request-id'));
});

t.test('curl -d without a content type (form-urlencoded) still runs the body as code', async (t) => {
  const response = await engine.request('/lang/python', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'print("drill my brain")' });
  t.equal(await response.text(), 'drill my brain\n');
});

t.test('bad bodies get a clear 4xx JSON error and nothing runs', async (t) => {
  const cases: [RequestInit, number, string][] = [
    [{ headers: { 'content-type': 'application/json' }, body: '{"code": ' }, 400, 'invalid_json'],
    [{ headers: { 'content-type': 'application/json' }, body: '{"code": 5}' }, 400, 'invalid_request'],
    [{ headers: { 'content-type': 'application/json' }, body: '{"code": "x", "extra": 1}' }, 400, 'invalid_request'],
    [{ headers: { 'content-type': 'application/json' }, body: '{"code": "x", "files": [{"content": "y"}]}' }, 400, 'code_and_files'],
    [{ headers: { 'content-type': 'text/plain' }, body: '' }, 400, 'empty_code'],
    [{ headers: { 'content-type': 'application/xml' }, body: '<x/>' }, 415, 'unsupported_media_type'],
    [{ headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(3 * 1024 * 1024) }, 413, 'body_too_large'],
    [{ headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(200 * 1024) }, 413, 'code_too_large'],
  ];
  for (const [init, status, code] of cases) {
    const response = await engine.request('/lang/python', { method: 'POST', ...init });
    t.equal(response.status, status, code);
    t.equal(((await response.json()) as { error: { code: string } }).error.code, code);
  }
});

t.test('GET /languages lists ids, aliases, versions and limits', async (t) => {
  const body = (await (await engine.request('/languages')).json()) as { languages: Record<string, unknown>[] };
  const python = body.languages.find((l) => l.id === 'python');
  t.match(python, { id: 'python', aliases: ['py', 'python3'], compiled: false, limits: { cpus: 1, timeout_ms: 5000 } });
  t.match(body.languages.find((l) => l.id === 'java'), { compiled: true, limits: { cpus: 2, memory_mb: Number, timeout_ms: 10000 }, compile_limits: { timeout_ms: Number } });
});

t.test('probes and docs', async (t) => {
  const health = await fetch(`${engine.url}/health`);
  t.equal(health.status, 200);
  t.equal(await health.text(), 'healthy');
  const ready = await fetch(`${engine.url}/ready`);
  t.equal(ready.status, 200);
  t.match(await ready.json(), { status: 'ready', checks: { docker: { ok: true } }, members: { workers: Number }, capacity: { idle: Number } });
  const metrics = await fetch(`${engine.url}/metrics`);
  const text = await metrics.text();
  for (const name of ['braindrill_requests_total', 'braindrill_execution_duration_seconds', 'braindrill_active_executions', 'braindrill_worker_pool_size', 'process_resident_memory_bytes']) {
    t.match(text, name);
  }
  t.match(text, /braindrill_requests_total\{language="python",status="completed"\} [1-9]/, 'requests are counted by language and status');
  const openapi = (await (await fetch(`${engine.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
  t.ok(openapi.paths['/lang/{language}'], 'the OpenAPI document lists POST /lang/{language}');
  t.equal((await fetch(`${engine.url}/docs/`)).status, 200);
});

t.test('unknown route: 404 JSON', async (t) => {
  const response = await engine.request('/nope');
  t.equal(response.status, 404);
  t.equal(((await response.json()) as { error: { code: string } }).error.code, 'not_found');
});
