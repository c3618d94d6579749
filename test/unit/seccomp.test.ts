import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ConfigError } from '../../src/errors.ts';
import { ENOSYS, REQUIRED_DENIED, SeccompProfileError, loadSeccompProfile, securityOptFor } from '../../src/sandbox/seccomp.ts';
import { loadSettings } from '../../src/settings.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'braindrill-seccomp-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** The profile the engine loads by default (SECCOMP_PROFILE's default). */
const SHIPPED = loadSettings({}).seccompProfile;
const shipped = loadSeccompProfile(SHIPPED);
const shippedJson = JSON.parse(shipped.securityOpt.slice('seccomp='.length)) as { defaultAction: string; syscalls: { names: string[]; action: string; errnoRet?: number; args: unknown[] }[] };

/** Writes a variant of the shipped profile and loads it. */
function variant(name: string, change: (profile: typeof shippedJson) => unknown) {
  const copy = structuredClone(shippedJson);
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(change(copy) ?? copy));
  return () => loadSeccompProfile(file);
}

const allowAll = (profile: typeof shippedJson) => profile.syscalls.find((r) => r.action === 'SCMP_ACT_ALLOW' && r.args.length === 0 && r.names.length > 100)!;

t.test('the shipped profile loads and passes its own checks', async (t) => {
  t.equal(shipped.file, SHIPPED);
  t.match(SHIPPED, /config\/seccomp\.json$/);
  t.equal(shipped.defaultAction, 'SCMP_ACT_ERRNO');
  t.match(shipped.securityOpt, /^seccomp=\{"defaultAction":"SCMP_ACT_ERRNO",/);
  t.notMatch(shipped.securityOpt, /_comment|_upstream|"comment"/, 'comments stay out of what Docker stores per container');
  t.notMatch(shipped.securityOpt, /\n/);
  t.ok(shipped.securityOpt.length < 12_000, `compact: ${shipped.securityOpt.length} bytes`);
});

t.test('the shipped profile denies what must be denied, with the errno glibc needs', async (t) => {
  const allowed = new Set(shipped.rules.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names));
  for (const name of REQUIRED_DENIED) t.notOk(allowed.has(name), `${name} is in no allow rule`);
  const errno = (name: string) => shipped.rules.find((r) => r.action === 'SCMP_ACT_ERRNO' && r.names.includes(name))?.errnoRet;
  t.equal(errno('clone3'), ENOSYS, 'clone3 → ENOSYS: glibc falls back to clone');
  t.equal(errno('io_uring_setup'), ENOSYS);
  t.equal(errno('bpf'), 1);
  t.notOk(shipped.rules.some((r) => /KILL|TRAP/.test(r.action)), 'nothing kills');
  const prlimit = shipped.rules.filter((r) => r.names.includes('prlimit64'));
  t.same(prlimit.map((r) => r.args), [[{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }]], 'prlimit64 only on pid 0');
  t.same(
    shipped.rules.filter((r) => r.names.includes('personality')).map((r) => r.args[0]!.value),
    [0, 8, 0x20000, 0x20008, 0xffffffff],
    "personality: Docker's harmless values only",
  );
  t.notOk(shipped.rules.some((r) => r.includes.caps || r.excludes.caps), 'nothing depends on the container\'s capabilities');
});

t.test('under gVisor clone3 goes to its kernel (which answers ENOSYS), every other rule is kept', async (t) => {
  t.equal(securityOptFor(shipped, 'runc'), shipped.securityOpt);
  t.equal(securityOptFor(shipped, 'crun'), shipped.securityOpt);
  const gvisor = JSON.parse(securityOptFor(shipped, 'runsc').slice('seccomp='.length)) as typeof shippedJson;
  const names = (p: typeof shippedJson) => p.syscalls.flatMap((r) => r.names.map((n) => `${r.action} ${r.errnoRet ?? ''} ${n} ${JSON.stringify(r.args)}`)).sort();
  t.same(names(shippedJson).filter((n) => !names(gvisor).includes(n)), [`SCMP_ACT_ERRNO ${ENOSYS} clone3 []`], 'clone3 is denied no more');
  t.same(names(gvisor).filter((n) => !names(shippedJson).includes(n)), ['SCMP_ACT_ALLOW  clone3 []'], 'it is let through, and only it');
  t.equal(gvisor.defaultAction, shippedJson.defaultAction);
});

t.test('a missing or unparsable file is an error naming the file', async (t) => {
  const missing = path.join(dir, 'nope.json');
  t.throws(() => loadSeccompProfile(missing), { message: new RegExp(`seccomp profile ${missing}: cannot read it`) });
  const broken = path.join(dir, 'broken.json');
  writeFileSync(broken, '{"defaultAction": ');
  t.throws(() => loadSeccompProfile(broken), { message: new RegExp(`seccomp profile ${broken}: not valid JSON`) });
  try {
    loadSeccompProfile(broken);
  } catch (error) {
    t.type(error, SeccompProfileError);
    t.type(error, ConfigError, 'a configuration error: the process stops at start-up');
    t.equal((error as ConfigError).code, 'config_invalid');
  }
});

t.test('the default action must be an errno action', async (t) => {
  for (const action of ['SCMP_ACT_ALLOW', 'SCMP_ACT_KILL', 'SCMP_ACT_LOG', undefined]) {
    const load = variant(`default-${action}`, (p) => ({ ...p, defaultAction: action }));
    t.throws(load, { message: /defaultAction is .*; it must be SCMP_ACT_ERRNO/ }, String(action));
  }
});

t.test('a required-denied call in an allow rule is named, conditional or not', async (t) => {
  for (const name of ['io_uring_setup', 'userfaultfd', 'bpf', 'unshare', 'mount', 'kexec_load', 'clone3']) {
    const unconditional = variant(`allow-${name}`, (p) => void allowAll(p).names.push(name));
    t.throws(unconditional, { message: new RegExp(`: ${name} must be denied, but syscalls\\[\\d+\\] allows it unconditionally`) }, name);
  }
  const byCapability = variant('cap-mount', (p) => void p.syscalls.push({ names: ['mount'], action: 'SCMP_ACT_ALLOW', args: [], includes: { caps: ['CAP_SYS_ADMIN'] } } as never));
  t.throws(byCapability, { message: /mount must be denied, but syscalls\[\d+\] allows it unconditionally/ }, 'a capability condition is no excuse');
  const logged = variant('log-bpf', (p) => void p.syscalls.push({ names: ['bpf'], action: 'SCMP_ACT_LOG', args: [] }));
  t.throws(logged, { message: /bpf must be denied/ }, 'SCMP_ACT_LOG lets the call through');
  const single = variant('name-keyctl', (p) => void p.syscalls.push({ name: 'keyctl', action: 'SCMP_ACT_ALLOW', args: [] } as never));
  t.throws(single, { message: /keyctl must be denied/ }, 'the single "name" form too');
});

t.test('conditional calls must keep their conditions', async (t) => {
  t.throws(variant('prlimit-any', (p) => void allowAll(p).names.push('prlimit64')), { message: /prlimit64 may be allowed only on the caller itself .* unconditionally/ });
  t.throws(
    variant('prlimit-pid1', (p) => void p.syscalls.push({ names: ['prlimit64'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] })),
    { message: /prlimit64 .* with other arguments/ },
  );
  t.throws(variant('clone-any', (p) => void allowAll(p).names.push('clone')), { message: /clone may be allowed only without namespace flags/ });
  t.throws(
    variant('clone-weak-mask', (p) => void p.syscalls.push({ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }] })),
    { message: /clone may be allowed only without namespace flags/ },
    'a mask that misses some namespace flags',
  );
  t.throws(
    variant('personality-aslr', (p) => void p.syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x0040000, op: 'SCMP_CMP_EQ' }] })),
    { message: /personality may be allowed only with a harmless persona/ },
    'ADDR_NO_RANDOMIZE',
  );
  t.throws(variant('socket-any', (p) => void allowAll(p).names.push('socket')), { message: /socket may be allowed only for the families/ });
  t.throws(variant('socketcall', (p) => void allowAll(p).names.push('socketcall')), { message: /socketcall must be denied/ });
});

t.test('malformed rules and killing actions are refused with their place', async (t) => {
  t.throws(variant('kill', (p) => void p.syscalls.push({ names: ['ptrace'], action: 'SCMP_ACT_KILL_PROCESS', args: [] })), { message: /syscalls\[\d+\] \(ptrace\): action SCMP_ACT_KILL_PROCESS would end the program/ });
  t.throws(variant('no-names', (p) => void p.syscalls.push({ names: [], action: 'SCMP_ACT_ALLOW', args: [] })), { message: /needs "names"/ });
  t.throws(variant('bad-op', (p) => void p.syscalls.push({ names: ['kill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'EQ' }] })), { message: /args\[0\] \(kill\): unknown op "EQ"/ });
  t.throws(variant('bad-index', (p) => void p.syscalls.push({ names: ['kill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] })), { message: /index must be 0-5/ });
  t.throws(variant('bad-errno', (p) => void p.syscalls.push({ names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: -1, args: [] })), { message: /errnoRet must be an errno number/ });
  t.throws(variant('empty', (p) => ({ ...p, syscalls: [] })), { message: /"syscalls" must be a non-empty list/ });
  t.throws(variant('both-arch', (p) => ({ ...p, architectures: ['SCMP_ARCH_X86_64'], archMap: [] })), { message: /both "architectures" and "archMap"/ });
  t.throws(variant('array', () => [1, 2]), { message: /not a JSON object/ });
});
