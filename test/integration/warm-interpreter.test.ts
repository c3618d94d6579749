import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import t from 'tap';
import { loadLanguages, type Language } from '../../src/languages/language.ts';
import { LanguageRegistry } from '../../src/languages/registry.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import type { ExecutionResult } from '../../src/sandbox/execution.ts';
import { DockerRuntime } from '../../src/sandbox/docker-runtime.ts';
import { runtimeImageTag } from '../../src/sandbox/image.ts';
import { planExecution } from '../../src/sandbox/plan.ts';
import { Sandbox } from '../../src/sandbox/sandbox.ts';
import { loadSeccompProfile } from '../../src/sandbox/seccomp.ts';
import { ROOT_DIR, loadSettings } from '../../src/settings.ts';
import { containersLeft, run, startEngine } from '../helpers/engine.ts';

// A language with run.warm runs its job in an interpreter the supervisor started with the container.
// The program must not be able to tell: same output, exit status, argv, stdin, globals, tracebacks.
const languages = new LanguageRegistry(loadLanguages(path.join(ROOT_DIR, 'config', 'languages.json')));
const settings = loadSettings(process.env);
const nodeId = `test-warm-${randomBytes(3).toString('hex')}`;
const log = createLogger('silent', nodeId);
const sandbox = new Sandbox({
  runtime: new DockerRuntime({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock', image: runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime')), nodeId, seccomp: loadSeccompProfile(settings.seccompProfile), ociRuntime: settings.sandboxRuntime, log }),
  nodeId,
  metrics: new Metrics(),
  log,
  // Pooled containers have had time to start their interpreter: the warm path proper.
  warmPool: { languages, initial: ['python', 'javascript'], maxPerLanguage: 1, memoryBudgetMb: 1024, startSlots: 2 },
});
await sandbox.start();
t.teardown(async () => {
  await sandbox.close();
  await sandbox.reap();
});

async function execute(language: Language, code: string, options: { warm: boolean; stdin?: string; args?: string[] }): Promise<ExecutionResult> {
  const plan = planExecution(randomUUID(), language, { files: [{ content: code }], stdin: options.stdin ?? '', args: options.args ?? [] }, { outputKeepBytes: 65536, outputDrainFactor: 16 });
  plan.run.warm = options.warm;
  // Give the pool a moment to have a waiting container (and its interpreter) again.
  for (let i = 0; i < 50 && options.warm && sandbox.warm === 0; i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300));
  return sandbox.run(plan, new AbortController().signal);
}

const same = (result: ExecutionResult) => ({ status: result.status, reason: result.reason, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr });

const PYTHON_CASES: [string, string, { stdin?: string; args?: string[] }][] = [
  [
    'argv, sys.path, __main__ globals, stdin and the modules loaded',
    [
      '"""a docstring"""',
      'import sys',
      'print(sys.argv, sys.orig_argv, sys.path[0], __file__, __name__, __doc__, __spec__, __package__, __cached__)',
      'print(sorted(globals()), type(__loader__).__name__, sys.modules["__main__"].__dict__ is globals())',
      'print(sys.stdin.read().upper(), len(sys.modules), sorted(sys.modules)[:8])',
    ].join('\n'),
    { stdin: 'some input\n', args: ['one', 'two words', 'ünï'] },
  ],
  ['an uncaught exception: traceback without the loader, exit 1', 'def f():\n    return 1 / 0\n\nf()\n', {}],
  ['a syntax error, reported as the interpreter reports it', 'print("unclosed"\n', {}],
  ['a chained exception', 'try:\n    {}["k"]\nexcept KeyError as e:\n    raise ValueError("wrapped") from e\n', {}],
  ['sys.exit with a code and with a message', 'import sys\nprint("out")\nsys.exit(3)\n', {}],
  ['sys.exit with a message', 'import sys\nsys.exit("bye")\n', {}],
  ['a custom excepthook is honoured', 'import sys\nsys.excepthook = lambda *a: print("hooked", a[0].__name__)\nraise RuntimeError("x")\n', {}],
  ['atexit handlers and unflushed output at exit', 'import atexit, sys\natexit.register(lambda: print("at exit"))\nsys.stdout.write("no newline")\n', {}],
  ['classes defined in __main__ pickle', 'import pickle\nclass A:\n    pass\nprint(type(pickle.loads(pickle.dumps(A()))).__name__)\n', {}],
];

t.test('python: a warm run is indistinguishable from a cold one', async (t) => {
  const python = languages.resolve('python');
  for (const [name, code, options] of PYTHON_CASES) {
    const warm = await execute(python, code, { ...options, warm: true });
    const cold = await execute(python, code, { ...options, warm: false });
    t.equal(warm.run?.warm, true, `${name}: ran in the waiting interpreter`);
    t.equal(cold.run?.warm, false, `${name}: the cold run started python itself`);
    t.same(same(warm), same(cold), name);
  }
});

t.test('javascript: same argv, require.main, stdin and exit status; a stack trace differs only below the program', async (t) => {
  const node = languages.resolve('javascript');
  const code = [
    'console.log(process.argv.slice(1), require.main === module, __filename, module.id, Object.keys(require.cache));',
    'let input = ""; process.stdin.on("data", (c) => (input += c)).on("end", () => { console.log(input.toUpperCase()); process.exitCode = 5; });',
  ].join('\n');
  const warm = await execute(node, code, { warm: true, stdin: 'from stdin', args: ['a', 'b c'] });
  const cold = await execute(node, code, { warm: false, stdin: 'from stdin', args: ['a', 'b c'] });
  t.equal(warm.run?.warm, true);
  t.same(same(warm), same(cold));
  t.equal(warm.exitCode, 5);

  const thrown = 'function f() { return null.x; }\nf();\n';
  const [warmError, coldError] = [await execute(node, thrown, { warm: true }), await execute(node, thrown, { warm: false })];
  t.equal(warmError.exitCode, 1);
  t.equal(coldError.exitCode, 1);
  const programFrames = (stderr: string) => stderr.split('\n').filter((line) => !/^\s+at .*(node:internal|warm-node\.js)/.test(line)).join('\n');
  t.equal(programFrames(warmError.stderr), programFrames(coldError.stderr), 'the program\'s own lines of the trace are the same');
  t.equal(cold.run?.warm, false, 'the cold run started Node.js itself');
  t.comment(`run step: warm ${warm.run?.wallMs} ms, cold ${cold.run?.wallMs} ms (bench/ measures the difference)`);
});

t.test('limits hold in the waiting interpreter', async (t) => {
  const python = languages.resolve('python');
  const spin = await execute(python, 'while True:\n    pass\n', { warm: true });
  t.match(spin, { status: 'timedout', reason: 'time_limit', run: { warm: true } });
  const hog = await execute(python, `x = bytearray(${python.limits.memoryMb * 4} * 1024 * 1024)\n`, { warm: true });
  t.match(hog, { status: 'failed', reason: 'memory_limit' });
  const fds = await execute(python, 'import os\nprint(sorted(os.listdir("/proc/self/fd")))\n', { warm: true });
  t.equal(fds.stdout, "['0', '1', '2', '3']\n", 'its control pipe is closed: only stdin, stdout, stderr (and the listing)');
  t.equal(fds.run?.warm, true);
});

t.test('a warm interpreter that is gone by the time the job comes: the step runs cold', async (t) => {
  const bash = languages.resolve('bash');
  for (const warm of [['sh', '-c', 'exit 0'], ['/nonexistent/interpreter']]) {
    const language: Language = { ...bash, id: `bash-${randomBytes(2).toString('hex')}`, run: { argv: bash.run.argv, warm } };
    const result = await execute(language, 'echo "cold but fine: $1"; read line; echo "$line"', { warm: true, stdin: 'stdin too\n', args: ['arg'] });
    t.match(result, { status: 'completed', exitCode: 0, stdout: 'cold but fine: arg\nstdin too\n', run: { warm: false } }, warm.join(' '));
  }
});

t.test('the interpreter must confirm it took the job (ACK on fd 3), else the step runs cold: no race decides it', async (t) => {
  // Stand-in loaders, each failing at one point of the hand-off. Each is alive when the job's argv is
  // written (they block on fd 3 first), so the outcome depends only on the ACK, never on timing.
  const bash = languages.resolve('bash');
  const loaders: [string, string][] = [
    ['exits 0 as soon as the job is written, without reading it', 'import select; select.select([3], [], []); raise SystemExit(0)'],
    ['reads the job and the whole stdin, exits 0 without answering', 'import os, sys\nwhile os.read(3, 65536): pass\nsys.stdin.read(); raise SystemExit(0)'],
    ['reads the job, answers a wrong byte, exits 0', 'import os\nwhile os.read(3, 65536): pass\nos.write(3, b"?"); raise SystemExit(0)'],
    ['is killed by a signal before answering', 'import os, select, signal; select.select([3], [], []); os.kill(os.getpid(), signal.SIGKILL)'],
    ['reads the job and never answers (the ACK wait runs out)', 'import os, time\nwhile os.read(3, 65536): pass\ntime.sleep(60)'],
  ];
  for (const [name, loader] of loaders) {
    const language: Language = { ...bash, id: `bash-${randomBytes(2).toString('hex')}`, run: { argv: bash.run.argv, warm: ['python3', '-c', loader] } };
    const started = Date.now();
    const result = await execute(language, 'echo "cold but fine: $1"; read line; echo "$line"', { warm: true, stdin: 'stdin too\n', args: ['arg'] });
    t.match(result, { status: 'completed', exitCode: 0, stdout: 'cold but fine: arg\nstdin too\n', run: { warm: false } }, name);
    t.comment(`${name}: ${Date.now() - started} ms (the ACK wait and one cold run)`);
  }
});

t.test('a loader that acknowledges runs the job warm (the real loaders, several times in a row)', async (t) => {
  for (const id of ['python', 'javascript']) {
    const language = languages.resolve(id);
    for (let i = 0; i < 3; i++) {
      const result = await execute(language, id === 'python' ? 'import sys; print(sys.stdin.read())' : 'process.stdin.pipe(process.stdout)', { warm: true, stdin: `job ${i}` });
      t.match(result, { status: 'completed', stdout: new RegExp(`^job ${i}`), run: { warm: true } }, `${id} #${i}`);
    }
  }
});

t.test('through HTTP: the run step says it was warm; no container is left', async (t) => {
  const engine = await startEngine({ WARM_POOL: '1', WARM_POOL_LANGUAGES: 'python' });
  t.teardown(() => engine.close());
  await new Promise((r) => setTimeout(r, 1500));
  const result = (await run(engine, 'python', { code: 'print("hi")' })) as unknown as { stdout: string; run: { warm: boolean } };
  t.equal(result.stdout, 'hi\n');
  t.equal(result.run.warm, true);
  t.same(await containersLeft(engine.nodeId), []);
});
