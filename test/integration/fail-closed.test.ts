import t from 'tap';
import type { ContainerRuntime, SandboxContainer } from '../../src/sandbox/container-runtime.ts';
import { containersLeft, run, startEngine } from '../helpers/engine.ts';
import { needs } from '../helpers/tier.ts';

// A hardening step that cannot be applied means no run: the program never runs with the compiler's
// memory limit. The engine's own Docker runtime, with one operation made to fail: lowering the memory
// limit between the compile and the run step (dockerd refusing `docker update`, say).
function failingMemoryUpdate(docker: ContainerRuntime): ContainerRuntime {
  return {
    ping: () => docker.ping(),
    check: () => docker.check(),
    list: (nodeId) => docker.list(nodeId),
    remove: (id) => docker.remove(id),
    close: () => docker.close(),
    async create(language, label) {
      const container = await docker.create(language, label);
      const failing: SandboxContainer = Object.create(container) as SandboxContainer;
      failing.setMemoryLimit = async () => {
        throw new Error('update refused (a test fault)');
      };
      return failing;
    },
  };
}

t.test('a memory limit that cannot be lowered after compiling: the program does not run, the container goes, it is counted', { skip: needs('docker') }, async (t) => {
  const engine = await startEngine({ WARM_POOL: '0' }, { runtime: (docker) => failingMemoryUpdate(docker()) });
  t.teardown(() => engine.close());
  const result = await run(engine, 'c', { code: '#include <stdio.h>\nint main(void) { puts("the program ran"); return 0; }' });
  t.equal(result.httpStatus, 500, 'an internal error');
  t.match(result, { error: { code: 'internal', message: /could not lower the memory limit to \d+ MB after the compile step: update refused/ } });
  const job = (await (await engine.request(`/jobs?limit=1`)).json()) as { jobs: { job_id: string }[] };
  const stored = (await (await engine.request(`/jobs/${job.jobs[0]!.job_id}`)).json()) as Record<string, unknown>;
  t.match(stored, { status: 'failed', reason: 'internal', output: '', error: /^internal error: could not lower the memory limit/ }, 'the program printed nothing: it never ran');
  t.same(await containersLeft(engine.nodeId), [], 'its container was removed');
  const metrics = await (await fetch(`${engine.url}/metrics`)).text();
  t.match(metrics, /^braindrill_sandbox_failures_total\{step="memory_limit_update"\} 1$/m, 'and counted');
  t.match(engine.logs.join(''), /a hardening step failed; the program does not run/, 'and logged with its cause');
});
