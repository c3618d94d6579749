import t from 'tap';
import path from 'node:path';
import { loadLanguages, parseLanguages, type Language } from '../../src/languages/language.ts';
import { LanguageRegistry } from '../../src/languages/registry.ts';
import { containerOptions, supervisorArgs } from '../../src/sandbox/docker-options.ts';
import { entryFileName, expandArgv, planExecution } from '../../src/sandbox/plan.ts';
import { ConfigError, UnsupportedLanguageError } from '../../src/errors.ts';
import { ROOT_DIR } from '../../src/settings.ts';

const languages = loadLanguages(path.join(ROOT_DIR, 'config', 'languages.json'));
const registry = new LanguageRegistry(languages);
const java = registry.resolve('java');

t.test('config/languages.json has the twelve languages and the seed table limits', async (t) => {
  for (const id of ['python', 'javascript', 'typescript', 'java', 'ruby', 'perl', 'php', 'c', 'cpp', 'go', 'rust', 'bash']) {
    t.ok(registry.find(id), id);
  }
  const table: Record<string, [number, number, number]> = {
    java: [2, 256, 10_000], python: [1, 50, 5000], javascript: [1, 50, 5000], ruby: [1, 30, 5000], perl: [1, 20, 3000], php: [1, 40, 5000],
  };
  for (const [id, [cpus, memoryMb, timeoutMs]] of Object.entries(table)) {
    const limits = registry.resolve(id).limits;
    t.equal(limits.cpus, cpus, `${id} cpus`);
    t.equal(limits.timeoutMs, timeoutMs, `${id} timeout`);
    if (limits.memoryMb !== memoryMb) t.ok(registry.resolve(id).limitsNote, `${id} memory differs from the table (${limits.memoryMb}) and says why`);
  }
  for (const language of languages) {
    if (language.compile) t.ok(language.compile.memoryMb >= language.limits.memoryMb, `${language.id} compiles with at least its run memory`);
  }
});

t.test('aliases resolve, case-insensitively; unknown names list the supported ids', async (t) => {
  for (const [alias, id] of <[string, string][]>[['py', 'python'], ['js', 'javascript'], ['node', 'javascript'], ['ts', 'typescript'], ['c++', 'cpp'], ['golang', 'go'], ['sh', 'bash'], ['PYTHON', 'python']]) {
    t.equal(registry.resolve(alias).id, id, alias);
  }
  const error = t.throws(() => registry.resolve('cobol')) as UnsupportedLanguageError;
  t.type(error, UnsupportedLanguageError);
  t.ok(error.supported.includes('python'));
  t.match(error.message, /cobol/);
});

t.test('Java takes its file name from the public class', async (t) => {
  t.equal(entryFileName(java, 'public class BrainDrill {\n}'), 'BrainDrill.java');
  t.equal(entryFileName(java, 'public final class Other {}'), 'Other.java');
  t.equal(entryFileName(java, 'class Hidden {}'), java.file, 'no public class: the default name');
  t.equal(entryFileName(java, 'public class X {}', 'Given.java'), 'Given.java', 'a given name wins');
});

t.test('argv placeholders', async (t) => {
  t.same(expandArgv(['gcc', '{sources}', '-o', '{stem}'], ['main.c', 'util.c', 'util.h']), ['gcc', 'main.c', 'util.c', '-o', 'main']);
  t.same(expandArgv(['java', '{stem}'], ['BrainDrill.java']), ['java', 'BrainDrill']);
});

t.test('planExecution appends args, sizes output caps and names extra files', async (t) => {
  const plan = planExecution('id-1', registry.resolve('python'), { files: [{ content: 'print(1)' }, { name: 'util.py', content: '' }], stdin: 'in', args: ['--x', 'y z'] }, { outputKeepBytes: 100, outputDrainFactor: 16 });
  t.same(plan.files.map((f) => f.name), ['main.py', 'util.py']);
  t.same(plan.run.argv.slice(-2), ['--x', 'y z']);
  t.equal(plan.outputMaxBytes, 1600);
  t.equal(plan.stdin.toString(), 'in');
  t.equal(plan.compile, null);
});

t.test('the loader refuses bad entries with a message naming them', async (t) => {
  const good = JSON.parse(JSON.stringify(languages[0])) as Language;
  t.throws(() => parseLanguages([{ ...good, id: 'Py thon' }]), ConfigError);
  t.throws(() => parseLanguages([good, { ...good }]), /used by both/);
  t.throws(() => parseLanguages([{ ...good, limits: { ...good.limits, tmpfsMb: good.limits.memoryMb } }]), /tmpfsMb/);
  t.throws(() => parseLanguages([{ ...good, limits: { ...good.limits, memoryMb: -1 } }]), /limits.memoryMb/);
  t.throws(() => parseLanguages([{ ...good, filePattern: '(' }]), /filePattern/);
  t.throws(() => parseLanguages([]), ConfigError);
  t.throws(() => parseLanguages([{ ...good, run: { argv: ['x'], warm: [] } }]), /run.warm/);
  const compiled = JSON.parse(JSON.stringify(registry.resolve('c'))) as Language;
  t.throws(() => parseLanguages([{ ...compiled, run: { ...compiled.run, warm: ['./main'] } }]), /only for languages without a compile step/);
});

t.test('a warm language starts its interpreter with the container; the others start it cold', async (t) => {
  const python = registry.resolve('python');
  t.same(supervisorArgs(python), [...python.env.flatMap((pair) => ['--env', pair]), '--warm', ...python.run.warm!], 'the interpreter gets the run step\'s environment');
  t.same(containerOptions(python, 'label', 'image', 'node', { seccomp: 'seccomp={}' }).Cmd, supervisorArgs(python));
  t.equal(planExecution('id', python, { files: [{ content: '' }], stdin: '', args: [] }, { outputKeepBytes: 1, outputDrainFactor: 1 }).run.warm, true);
  const c = registry.resolve('c');
  t.same(supervisorArgs(c), []);
  t.equal(planExecution('id', c, { files: [{ content: '' }], stdin: '', args: [] }, { outputKeepBytes: 1, outputDrainFactor: 1 }).run.warm, false);
});

t.test('under gVisor the program\'s process limit is RLIMIT_NPROC and the host leaves room for gVisor\'s threads', async (t) => {
  const options = (ociRuntime?: string) => containerOptions(java, 'label', 'image', 'node', { seccomp: 'seccomp={}', ...(ociRuntime ? { ociRuntime } : {}) }).HostConfig!;
  const pids = Math.max(java.limits.pids, java.compile!.pids);
  for (const runtime of [undefined, 'runc', 'crun']) {
    t.equal(options(runtime).PidsLimit, pids, `${runtime ?? 'default'}: the cgroup limit is the language's`);
    t.notOk(options(runtime).Ulimits!.some((u) => u.Name === 'nproc'), `${runtime ?? 'default'}: no RLIMIT_NPROC (it would count every container's uid together)`);
  }
  t.same(options('runsc').Ulimits!.find((u) => u.Name === 'nproc'), { Name: 'nproc', Soft: pids, Hard: pids });
  t.ok(options('runsc').PidsLimit! > pids, 'the host limit is above the program\'s');
  t.equal(options('runsc').Runtime, 'runsc');
});
