import { constants } from 'node:os';
import type { ExecutionReason, ExecutionStatus } from './execution.ts';
import type { StepReport, SupervisorReport } from './protocol.ts';

export interface Outcome {
  status: ExecutionStatus;
  reason: ExecutionReason | null;
}

/** What the host saw besides the supervisor's report. */
export interface HostObservation {
  report: SupervisorReport | null;
  /** The host's wall-clock guard killed the container. */
  hostTimedOut: boolean;
  cancelled: boolean;
  /** Docker's State.OOMKilled. */
  oomKilled: boolean;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));

export function signalName(signal: number | null): string | null {
  return signal === null ? null : (SIGNAL_NAMES.get(signal) ?? `SIG${signal}`);
}

function succeeded(step: StepReport): boolean {
  return step.exit_code === 0 && step.signal === null && !step.timed_out && !step.output_limited;
}

const failed = (reason: ExecutionReason): Outcome => ({ status: 'failed', reason });
const timedOut: Outcome = { status: 'timedout', reason: 'time_limit' };

/**
 * Maps what happened to a status (completed, failed, timedout) plus a reason. Precedence: a limit the sandbox enforced
 * explains a failure better than the program's own exit code.
 */
export function classify(observed: HostObservation): Outcome {
  const { report } = observed;
  const oom = observed.oomKilled || report?.oom_killed === true;
  if (observed.cancelled) return failed('cancelled');
  if (report === null || report.error !== null) {
    if (oom) return failed('memory_limit');
    if (observed.hostTimedOut) return timedOut;
    return failed('internal');
  }
  const { compile, run } = report;
  if (compile && !succeeded(compile)) {
    if (compile.timed_out) return timedOut;
    if (oom) return failed('memory_limit');
    if (compile.output_limited) return failed('output_limit');
    return failed('compile_error');
  }
  if (!run) return observed.hostTimedOut ? timedOut : failed('internal');
  // A limit that fired is reported even when the main process exited 0 (a fork bomb's parent often does).
  // A fork bomb usually exhausts memory too; the process limit is the cause worth naming.
  if (run.output_limited) return failed('output_limit');
  if (report.pids_limited) return failed('pids_limit');
  if (oom) return failed('memory_limit');
  if (succeeded(run) && !observed.hostTimedOut) return { status: 'completed', reason: null };
  if (run.timed_out || observed.hostTimedOut) return timedOut;
  return failed('runtime_error');
}
