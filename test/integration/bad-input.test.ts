import t from 'tap';
import { request as httpRequest } from 'node:http';
import { API_KEY, startEngine } from '../helpers/engine.ts';

// Every hostile request gets a clear 4xx JSON error; nothing crashes, nothing is queued.
const engine = await startEngine({ RATE_LIMIT_MAX_REQUESTS: '100000', IP_RATE_LIMIT_MAX: '1000000' });
t.teardown(() => engine.close());

/** Raw HTTP, so bodies can be arbitrary bytes and headers arbitrary sizes. */
function raw(method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const url = new URL(engine.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ agent: false, host: url.hostname, port: url.port, method, path, headers: { 'x-api-key': API_KEY, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const total = async () => ((await (await engine.request('/jobs?limit=1')).json()) as { pagination: { total: number } }).pagination.total;
const json = { 'content-type': 'application/json' };
const text = { 'content-type': 'text/plain' };
const deep = '['.repeat(100_000) + ']'.repeat(100_000);

const cases: [string, string, string, Record<string, string>, Buffer | string | undefined, number, string][] = [
  ['malformed JSON', 'POST', '/jobs', json, '{"language": "python", "code": ', 400, 'invalid_json'],
  ['JSON that is not an object', 'POST', '/jobs', json, '"just a string"', 400, 'invalid_request'],
  ['JSON null', 'POST', '/jobs', json, 'null', 400, 'invalid_request'],
  ['prototype poisoning', 'POST', '/jobs', json, '{"language":"python","code":"x","__proto__":{"admin":true}}', 400, 'invalid_json'],
  ['missing language', 'POST', '/jobs', json, '{"code": "print(1)"}', 400, 'invalid_request'],
  ['missing code', 'POST', '/jobs', json, '{"language": "python"}', 400, 'empty_code'],
  ['extra field', 'POST', '/jobs', json, '{"language": "python", "code": "print(1)", "priority": 9}', 400, 'invalid_request'],
  ['code of the wrong type', 'POST', '/api/runs', json, '{"language": "python", "code": ["print(1)"]}', 400, 'invalid_request'],
  ['args of the wrong type', 'POST', '/jobs', json, '{"language": "python", "code": "x", "args": "a b"}', 400, 'invalid_request'],
  ['wrong content type', 'POST', '/jobs', { 'content-type': 'application/xml' }, '<job/>', 415, 'unsupported_media_type'],
  ['multipart', 'POST', '/lang/python', { 'content-type': 'multipart/form-data; boundary=x' }, '--x--', 415, 'unsupported_media_type'],
  ['huge body', 'POST', '/lang/python', text, Buffer.alloc(5 * 1024 * 1024, 0x61), 413, 'body_too_large'],
  ['deep JSON', 'POST', '/jobs', json, deep, 400, 'invalid_request'],
  ['NUL bytes in code', 'POST', '/lang/python', text, 'print(1)\u0000', 400, 'invalid_text'],
  ['NUL bytes in JSON code', 'POST', '/jobs', json, '{"language":"python","code":"a\\u0000b"}', 400, 'invalid_text'],
  ['invalid UTF-8 as text', 'POST', '/lang/python', text, Buffer.from([0x70, 0x72, 0xff, 0xfe, 0x0a]), 400, 'invalid_encoding'],
  ['invalid UTF-8 in JSON', 'POST', '/jobs', json, Buffer.concat([Buffer.from('{"language":"python","code":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), 400, 'invalid_encoding'],
  ['path traversal in a file name', 'POST', '/jobs', json, JSON.stringify({ language: 'python', files: [{ name: '../../etc/passwd', content: 'x' }] }), 400, 'unsafe_file_name'],
  ['a file name that looks like an option', 'POST', '/jobs', json, JSON.stringify({ language: 'c', files: [{ content: 'int main(){}' }, { name: '-o', content: 'x' }] }), 400, 'unsafe_file_name'],
  ['duplicate file names', 'POST', '/jobs', json, JSON.stringify({ language: 'python', files: [{ name: 'a.py', content: 'x' }, { name: 'a.py', content: 'y' }] }), 400, 'duplicate_file_name'],
  ['too many files', 'POST', '/jobs', json, JSON.stringify({ language: 'python', files: Array.from({ length: 40 }, (_, i) => ({ name: `f${i}.py`, content: 'x' })) }), 400, 'invalid_request'],
  ['code and files', 'POST', '/jobs', json, JSON.stringify({ language: 'python', code: 'x', files: [{ content: 'y' }] }), 400, 'code_and_files'],
  ['stdin too large', 'POST', '/jobs', json, JSON.stringify({ language: 'python', code: 'x', stdin: 'a'.repeat(1024 * 1024 + 1) }), 413, 'stdin_too_large'],
  ['too many args', 'POST', '/jobs', json, JSON.stringify({ language: 'python', code: 'x', args: Array(65).fill('a') }), 400, 'invalid_request'],
  ['code too large', 'POST', '/lang/python', text, 'x'.repeat(100 * 1024 + 1), 413, 'code_too_large'],
  ['language with odd characters', 'POST', '/lang/py%00thon', text, 'print(1)', 400, 'unsupported_language'],
  ['language with a path', 'POST', '/lang/..%2F..%2Fetc%2Fpasswd', text, 'print(1)', 400, 'unsupported_language'],
  ['language with markup', 'POST', '/lang/%3Cscript%3E', text, 'print(1)', 400, 'unsupported_language'],
  ['a very long language', 'POST', `/lang/${'x'.repeat(150)}`, text, 'print(1)', 400, 'invalid_request'],
  ['negative offset', 'GET', '/jobs?offset=-1', {}, undefined, 400, 'invalid_offset'],
  ['NaN limit', 'GET', '/jobs?limit=NaN', {}, undefined, 400, 'invalid_limit'],
  ['huge limit number', 'GET', '/jobs?limit=99999999999999999999', {}, undefined, 400, 'invalid_limit'],
  ['repeated query parameters', 'GET', '/jobs?limit=1&limit=2', {}, undefined, 400, 'invalid_request'],
  ['malformed job id', 'GET', '/jobs/..%2F..%2Fetc', {}, undefined, 400, 'invalid_job_id'],
  ['SQL in a job id', 'GET', "/jobs/1'%20OR%20'1'='1", {}, undefined, 400, 'invalid_job_id'],
  ['a 10,000-character key', 'GET', '/jobs', { 'x-api-key': 'k'.repeat(10_000) }, undefined, 401, 'unauthorized'],
  ['empty key', 'GET', '/jobs', { 'x-api-key': '' }, undefined, 401, 'unauthorized'],
];

t.test('table of hostile requests', async (t) => {
  const before = await total();
  for (const [name, method, path, headers, body, status, code] of cases) {
    const response = await raw(method, path, headers, body);
    t.equal(response.status, status, `${name}: status`);
    let parsed: { error?: { code?: string; message?: string } } = {};
    try {
      parsed = JSON.parse(response.body) as typeof parsed;
    } catch {
      t.fail(`${name}: body is not JSON: ${response.body.slice(0, 200)}`);
    }
    t.equal(parsed.error?.code, code, `${name}: error code (${response.body.slice(0, 160)})`);
    t.type(parsed.error?.message, 'string', `${name}: has a message`);
  }
  t.equal(await total(), before, 'nothing was queued');
});

t.test('a 10,000-character header elsewhere does not disturb a request', async (t) => {
  const response = await raw('GET', '/jobs', { 'x-padding': 'p'.repeat(10_000) });
  t.equal(response.status, 200);
});

t.test('a header too large for Node is refused by the server, not a crash', async (t) => {
  const response = await raw('GET', '/jobs', { 'x-padding': 'p'.repeat(40_000) }).catch(() => ({ status: 431 }));
  t.equal(response.status, 431);
});

t.test('the server still serves and runs code afterwards', async (t) => {
  t.equal((await fetch(`${engine.url}/health`)).status, 200);
  const response = await engine.request('/lang/python', { method: 'POST', headers: text, body: 'print("alive")' });
  t.equal(await response.text(), 'alive\n');
});

t.test('fuzz: random bodies and headers never get a 5xx', async (t) => {
  let seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  t.comment(`FUZZ_SEED=${seed}`);
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  const value = (depth: number): unknown => {
    const kind = Math.floor(random() * (depth > 3 ? 5 : 7));
    switch (kind) {
      case 0: return null;
      case 1: return random() * 1e6 - 5e5;
      case 2: return random() > 0.5;
      case 3: return pick(['', 'python', 'cobol', '../x', '\u0000', 'a'.repeat(300), '💥', '<script>', 'print(1)']);
      case 4: return bytes(8).toString('latin1');
      case 5: return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      default: return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [pick(['language', 'code', 'files', 'stdin', 'args', 'name', 'content', '__proto__', 'constructor', 'x']), value(depth + 1)]));
    }
  };
  const paths = ['/jobs', '/api/runs', '/lang/cobol', '/lang/%F0%9F%92%A5', '/jobs/xyz', '/jobs?limit=-3', '/api/runs/00000000-0000-4000-8000-000000000000', '/admin/keys', '/nope', '/lang/' + 'z'.repeat(80)];
  const types = ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'application/json; charset=latin1', '', 'text/plain; charset=utf-16'];
  const deadline = Date.now() + 20_000;
  let sent = 0;
  const failures: string[] = [];
  while (sent < 3000 && Date.now() < deadline) {
    const method = pick(['POST', 'GET', 'DELETE', 'PUT', 'PATCH']);
    const path = pick(paths);
    const headers: Record<string, string> = {};
    const type = pick(types);
    if (type) headers['content-type'] = type;
    if (random() < 0.3) headers['x-api-key'] = pick(['', 'wrong', 'test-key-abcde', 'x'.repeat(2000)]);
    if (random() < 0.2) headers['accept'] = pick(['application/json', '*/*', 'text/html', '']);
    const body = method === 'GET' ? undefined : random() < 0.5 ? JSON.stringify(value(0)) : bytes(Math.floor(random() * 512));
    const response = await raw(method, path, headers, body).catch((error: Error) => ({ status: 599, body: error.message, headers: {} }));
    sent++;
    if (response.status >= 500) failures.push(`${method} ${path} ${type} → ${response.status} ${response.body.slice(0, 200)}`);
  }
  t.comment(`${sent} random requests`);
  t.same(failures, [], 'no 5xx');
  t.ok(sent >= 500, 'enough requests were sent');
  t.equal((await fetch(`${engine.url}/health`)).status, 200);
});
