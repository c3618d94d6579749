import t from 'tap';
import { classify, signalName, type HostObservation } from '../../src/sandbox/classify.ts';
import type { StepReport, SupervisorReport } from '../../src/sandbox/protocol.ts';

const step = (over: Partial<StepReport> = {}): StepReport => ({
  exit_code: 0, signal: null, timed_out: false, output_limited: false, wall_ms: 10, cpu_ms: 5, max_rss_kb: 1000, stdout_bytes: 0, stderr_bytes: 0, ...over,
});
const report = (over: Partial<SupervisorReport> = {}): SupervisorReport => ({ error: null, compile: null, run: step(), pids_limited: false, oom_killed: false, ...over });
const observe = (over: Partial<HostObservation> = {}): HostObservation => ({ report: report(), hostTimedOut: false, cancelled: false, oomKilled: false, ...over });

const table: [string, HostObservation, string, string | null][] = [
  ['exit 0 completes', observe(), 'completed', null],
  ['non-zero exit is a runtime error', observe({ report: report({ run: step({ exit_code: 1 }) }) }), 'failed', 'runtime_error'],
  ['a signal is a runtime error', observe({ report: report({ run: step({ exit_code: null, signal: 11 }) }) }), 'failed', 'runtime_error'],
  ['step timeout is timedout', observe({ report: report({ run: step({ exit_code: null, signal: 9, timed_out: true }) }) }), 'timedout', 'time_limit'],
  ['host timeout without a report is timedout', observe({ report: null, hostTimedOut: true }), 'timedout', 'time_limit'],
  ['exit 137 with OOM is memory, not a timeout', observe({ report: report({ run: step({ exit_code: null, signal: 9 }), oom_killed: true }) }), 'failed', 'memory_limit'],
  ['Docker OOMKilled without a report is memory', observe({ report: null, oomKilled: true }), 'failed', 'memory_limit'],
  ['output cap', observe({ report: report({ run: step({ exit_code: null, signal: 9, output_limited: true }) }) }), 'failed', 'output_limit'],
  ['a fork bomb that also ran out of memory is pids', observe({ report: report({ run: step({ exit_code: null, signal: 9 }), pids_limited: true, oom_killed: true }) }), 'failed', 'pids_limit'],
  ['fork refused and failed is pids', observe({ report: report({ run: step({ exit_code: 1 }), pids_limited: true }) }), 'failed', 'pids_limit'],
  ['fork bomb that also timed out is pids', observe({ report: report({ run: step({ exit_code: null, signal: 9, timed_out: true }), pids_limited: true }) }), 'failed', 'pids_limit'],
  ['a fork bomb whose parent exits 0 is still pids_limit', observe({ report: report({ pids_limited: true }) }), 'failed', 'pids_limit'],
  ['an OOM-killed child with a surviving parent is memory_limit', observe({ report: report({ oom_killed: true }) }), 'failed', 'memory_limit'],
  ['compile failure', observe({ report: report({ compile: step({ exit_code: 1 }), run: null }) }), 'failed', 'compile_error'],
  ['compile timeout', observe({ report: report({ compile: step({ exit_code: null, signal: 9, timed_out: true }), run: null }) }), 'timedout', 'time_limit'],
  ['compiler OOM', observe({ report: report({ compile: step({ exit_code: null, signal: 9 }), run: null, oom_killed: true }) }), 'failed', 'memory_limit'],
  ['cancel wins', observe({ cancelled: true, report: null }), 'failed', 'cancelled'],
  ['no report and nothing known is internal', observe({ report: null }), 'failed', 'internal'],
  ['a supervisor error is internal', observe({ report: report({ error: 'bad request' }) }), 'failed', 'internal'],
];

for (const [name, input, status, reason] of table) {
  t.test(name, async (t) => {
    t.same(classify(input), { status, reason });
  });
}

t.test('signal names', async (t) => {
  t.equal(signalName(9), 'SIGKILL');
  t.equal(signalName(25), 'SIGXFSZ');
  t.equal(signalName(null), null);
});
