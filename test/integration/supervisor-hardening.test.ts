import t from 'tap';
import type Docker from 'dockerode';
import { GVISOR, directLeftovers, language, runDirect, withDockerDefaultSeccomp, withOwnUid, withSharedUid, type DirectRun } from '../helpers/sandbox.ts';

// The supervisor on its own (images/runtime/supervisor.c): fail closed before a step runs, defend itself
// when the program shares its uid, and the own-uid mode (container User 0 + CapAdd SETUID, SETGID: the
// engine's). Real containers with the engine's options (src/sandbox/docker-options.ts); the shared-uid
// tests take the engine's seccomp profile away too: none of the supervisor's own defences relies on it.
const sharedUidWithoutProfile = (options: Docker.ContainerCreateOptions) => (withDockerDefaultSeccomp(options), withSharedUid(options));
const bash = language('bash');
const python = language('python');

const sh = (code: string, extra: Partial<DirectRun> = {}) => runDirect({ language: bash, files: [{ content: code }], ...extra });

// Under gVisor (GVISOR) its kernel decides some of this differently: a same-uid program can signal PID 1
// (the engine runs own-uid only), /proc/<pid>/status has no CapAmb (nor NoNewPrivs: prctl asks), there is
// no setfsuid (the supervisor's ids are 65533 in all four places at rest), and renicing or rescheduling
// PID 1 is accepted and ignored (gVisor's scheduler is Go's) or unsupported (SCHED_IDLE).

t.test('fail closed: a run step that cannot be started runs nothing and says why', async (t) => {
  const missing = await sh('echo never', { runArgv: ['/nonexistent/interpreter'] });
  t.match(missing.report, { error: 'the run step could not be started: cannot execute /nonexistent/interpreter: No such file or directory', run: null });
  const notExecutable = await sh('echo never', { runArgv: ['./main.sh'] });
  t.match(notExecutable.report, { error: /^the run step could not be started: cannot execute \.\/main\.sh: Permission denied$/, run: null });
  t.equal(notExecutable.stdout + notExecutable.stderr, '', 'no output: nothing ran');
});

t.test('fail closed: a start-up failure still answers with the request nonce, and runs nothing', async (t) => {
  const result = await sh('echo never', { tweak: (o) => void (o.Cmd = ['--no-such-option']) });
  t.equal(result.failure, null, 'the host accepted the RESULT (right nonce): the cause is not lost');
  t.match(result.report, { error: 'unknown option: --no-such-option', compile: null, run: null });
  t.equal(result.stdout, '');
});

t.test('shared uid, no seccomp profile: a program that lowers the supervisor\'s limits is stopped, and the error names it', async (t) => {
  for (const resource of ['RLIMIT_NOFILE', 'RLIMIT_AS', 'RLIMIT_STACK']) {
    const result = await runDirect({
      language: python,
      files: [{ content: `import resource, time\nresource.prlimit(1, resource.${resource}, (0, 0))\nprint("lowered", flush=True)\ntime.sleep(3)\nprint("still running")` }],
      tweak: sharedUidWithoutProfile,
    });
    t.match(result.report, { error: new RegExp(`^the supervisor's ${resource} was changed from .* to 0/0 \\(prlimit on PID 1\\); the run step was stopped$`), run: { signal: 9 } }, resource);
    t.equal(result.stdout, 'lowered\n', `${resource}: stopped within the check interval, not after its 3 s sleep`);
  }
});

t.test('shared uid: signals, ptrace and /proc/1 do not reach the supervisor; steps get oom_score_adj 1000', { skip: GVISOR && 'gVisor lets a same-uid program signal PID 1: the engine runs own-uid only' }, async (t) => {
  const result = await sh('kill -KILL 1; kill -STOP 1; kill -SEGV 1; cat /proc/self/oom_score_adj; cat /proc/1/environ 2>/dev/null || echo no-environ; echo alive', { tweak: sharedUidWithoutProfile });
  t.match(result.report, { error: null, run: { exit_code: 0 } });
  t.equal(result.stdout, '1000\nno-environ\nalive\n');
});

t.test('own uid: the supervisor is uid 65533, the program 65534 with nothing else', async (t) => {
  const code = [
    'import os',
    'status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)',
    'print(os.getresuid(), os.getresgid(), os.getgroups())',
    'print(status["CapInh"], status["CapPrm"], status["CapEff"], status.get("CapAmb", "absent"), __import__("ctypes").CDLL(None).prctl(39, 0, 0, 0, 0))',
    'sup = dict(l.split(":\\t", 1) for l in open("/proc/1/status").read().splitlines() if ":\\t" in l)',
    'print(sup["Uid"].split(), sup["Gid"].split())',
    'print(os.stat("/tmp/box").st_uid, os.stat("/tmp/box/main.py").st_uid, oct(os.stat("/tmp/box").st_mode & 0o777))',
    'print(open("/dev/stdin").read().strip(), open("/proc/self/oom_score_adj").read().strip())',
    'import sys; sys.stdout.flush()',
    'with open("/dev/stdout", "w") as f: f.write("via /dev/stdout\\n")',
  ].join('\n');
  for (const warm of [false, true]) {
    const result = await runDirect({ language: python, files: [{ content: code }], stdin: 'from stdin', tweak: withOwnUid, warm, delayMs: warm ? 600 : 0 });
    t.match(result.report, { error: null, run: { exit_code: 0, warm } }, `warm: ${warm}`);
    t.equal(
      result.stdout,
      [
        '(65534, 65534, 65534) (65534, 65534, 65534) []',
        `0000000000000000 0000000000000000 0000000000000000 ${GVISOR ? 'absent' : '0000000000000000'} 1`,
        GVISOR ? "['65533', '65533', '65533', '65533'] ['65533', '65533', '65533', '65533']" : "['65533', '65533', '65533', '65534'] ['65533', '65533', '65533', '65534']",
        '65534 65534 0o755',
        'from stdin 1000',
        'via /dev/stdout',
        '',
      ].join('\n'),
      `warm: ${warm}: identity, files, stdin and stdout`,
    );
  }
});

t.test('own uid, even without the seccomp profile: the kernel refuses every hold on the supervisor', async (t) => {
  const code = [
    'import os, resource, signal',
    'def attempt(name, call):',
    '    try:',
    '        call(); print(name, "0")',
    '    except OSError as e:',
    '        print(name, os.strerror(e.errno))',
    'attempt("prlimit", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (0, 0)))',
    'attempt("kill", lambda: os.kill(1, signal.SIGKILL))',
    'attempt("setpriority", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19))',
    'attempt("sched_setscheduler", lambda: os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0)))',
    'attempt("proc-mem", lambda: open("/proc/1/mem", "rb"))',
  ].join('\n');
  const result = await runDirect({ language: python, files: [{ content: code }], tweak: withOwnUid });
  t.match(result.report, { error: null, run: { exit_code: 0 } });
  t.equal(
    result.stdout,
    GVISOR
      ? 'prlimit Operation not permitted\nkill Operation not permitted\nsetpriority 0\nsched_setscheduler Invalid argument\nproc-mem Permission denied\n'
      : 'prlimit Operation not permitted\nkill Operation not permitted\nsetpriority Operation not permitted\nsched_setscheduler Operation not permitted\nproc-mem Permission denied\n',
  );
});

t.test('own uid: the supervisor still kills what a step leaves behind, and enforces the time limit', async (t) => {
  const leftovers = await sh('(sleep 30; echo late) &\nnohup sleep 30 >/dev/null 2>&1 &\necho started', { tweak: withOwnUid });
  t.match(leftovers.report, { error: null, run: { exit_code: 0 } });
  t.equal(leftovers.stdout, 'started\n');
  t.ok((leftovers.report?.run?.wall_ms ?? Infinity) < 20_000, `background processes did not hold the step (${leftovers.report?.run?.wall_ms} ms, not the 30 s they sleep)`);
  const spin = await sh('while :; do :; done', { tweak: withOwnUid });
  t.match(spin.report, { error: null, run: { timed_out: true, signal: 9 } });
  const compiled = await runDirect({ language: language('c'), files: [{ content: '#include <stdio.h>\nint main(void){ puts("compiled"); return 0; }' }], tweak: withOwnUid });
  t.match(compiled.report, { error: null, compile: { exit_code: 0 }, run: { exit_code: 0 } });
  t.equal(compiled.stdout, 'compiled\n', 'a compile step, then the run step, both as 65534');
});

t.test('own uid: started as root without CAP_SETUID/CAP_SETGID, nothing runs and the error says why', async (t) => {
  const result = await sh('echo never', {
    tweak: (o) => {
      withOwnUid(o);
      o.HostConfig!.CapAdd = [];
    },
  });
  t.equal(result.failure, null);
  t.match(result.report, { error: /^started as root, cannot become uid 65533: setgroups: Operation not permitted$/, run: null });
  t.equal(result.stdout, '');
});

t.test('RUN_ADDRESS_SPACE_MB (the memory lowering under gVisor) caps the run step, not the compile step, and never runs warm', async (t) => {
  // 96 MiB touched page by page: the C container's memory (its compile figure) allows it, a 64 MiB cap does not.
  const code = '#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\nint main(void){ char *p = malloc(96u << 20); if (!p) { puts("refused"); return 3; } memset(p, 1, 96u << 20); puts("allocated"); return 0; }';
  const free = await runDirect({ language: language('c'), files: [{ content: code }] });
  t.match(free.report, { error: null, compile: { exit_code: 0 }, run: { exit_code: 0 } });
  t.equal(free.stdout, 'allocated\n', 'without the cap the container\'s limit allows it');
  const capped = await runDirect({ language: language('c'), files: [{ content: code }], addressSpaceMb: 64 });
  t.match(capped.report, { error: null, compile: { exit_code: 0 }, run: { exit_code: 3 } }, 'the compiler ran uncapped (cc1 would not fit), the program did not get 96 MiB');
  t.equal(capped.stdout, 'refused\n');
  const warm = await runDirect({ language: python, files: [{ content: 'import resource\nprint(resource.getrlimit(resource.RLIMIT_AS))' }], warm: true, delayMs: 600, addressSpaceMb: 48 });
  t.match(warm.report, { error: null, run: { exit_code: 0, warm: false } }, 'the warm interpreter started before the cap: the step ran cold');
  t.equal(warm.stdout, `(${48 << 20}, ${48 << 20})\n`);
});

t.test('no container is left behind', async (t) => {
  t.same(await directLeftovers(), []);
});
