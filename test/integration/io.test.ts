import t from 'tap';
import { startEngine, run } from '../helpers/engine.ts';

const engine = await startEngine();
t.teardown(() => engine.close());

t.test('stdin and args reach the program', async (t) => {
  const result = await run(engine, 'python', {
    code: 'import sys\nprint(sys.stdin.read().upper(), end="")\nprint(sys.argv[1:])',
    stdin: 'hello\nworld\n',
    args: ['--flag', 'two words', ''],
  });
  t.equal(result.status, 'completed');
  t.equal(result.stdout, "HELLO\nWORLD\n['--flag', 'two words', '']\n");
});

t.test('a large stdin (1 MiB) is delivered whole', async (t) => {
  const stdin = 'x'.repeat(1024 * 1024 - 1) + '\n';
  const result = await run(engine, 'python', { code: 'import sys\nprint(len(sys.stdin.buffer.read()))', stdin });
  t.equal(result.stdout, `${1024 * 1024}\n`);
});

t.test('two-file python program imports its module', async (t) => {
  const result = await run(engine, 'python', {
    files: [
      { content: 'from helper import greet\nprint(greet("drill"))' },
      { name: 'helper.py', content: 'def greet(name):\n    return f"hello {name}"\n' },
    ],
  });
  t.equal(result.stdout, 'hello drill\n', result.stderr);
});

t.test('two-class java program compiles both files', async (t) => {
  const result = await run(engine, 'java', {
    files: [
      { content: 'public class App { public static void main(String[] a) { System.out.println(new Greeter().greet()); } }' },
      { name: 'Greeter.java', content: 'public class Greeter { String greet() { return "hi from Greeter"; } }' },
    ],
  });
  t.equal(result.stdout, 'hi from Greeter\n', result.stderr);
});

t.test('stderr and the exit code of a failing program', async (t) => {
  const result = await run(engine, 'python', { code: 'import sys\nprint("out")\nprint("bad", file=sys.stderr)\nsys.exit(3)' });
  t.equal(result.status, 'failed');
  t.equal(result.reason, 'runtime_error');
  t.equal(result.exit_code, 3);
  t.equal(result.stdout, 'out\n');
  t.equal(result.stderr, 'bad\n');
  const plain = await engine.request('/lang/python', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'import sys\nprint("out")\nprint("bad", file=sys.stderr)\nsys.exit(3)' });
  t.equal(plain.status, 200, 'the program ran: 200 whatever its outcome');
  t.equal(plain.headers.get('x-status'), 'failed');
  t.equal(plain.headers.get('x-reason'), 'runtime_error');
  t.equal(plain.headers.get('x-exit-code'), '3');
  t.equal(await plain.text(), 'bad\n', 'text/plain answers stderr when the program failed');
});

t.test('output with invalid UTF-8 and NUL bytes does not break the answer', async (t) => {
  const result = await run(engine, 'python', { code: 'import sys\nsys.stdout.buffer.write(b"a\\x00b\\xffc\\n")' });
  t.equal(result.status, 'completed');
  t.equal(result.stdout, 'a\u0000b\ufffdc\n');
});
