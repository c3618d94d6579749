import type { Logger } from '../observability/logger.ts';
import type { Members } from '../cluster/worker-control.ts';
import type { ReadyReport } from '../http/services.ts';

/** A dependency that does not answer within this long is reported down (a probe must answer fast). */
const PROBE_TIMEOUT_MS = 2000;

function within<T>(probe: Promise<T>, ms = PROBE_TIMEOUT_MS): Promise<T> {
  return Promise.race([probe, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}


export interface ReadinessOptions {
  /** This node's own dependencies by name (database, docker, redis): any one down makes the node not ready. */
  dependencies: Record<string, () => Promise<unknown>>;
  /** Who is in the cluster (or this one node), for the operator. */
  members(): Promise<Members>;
  queuedJobs(): Promise<number>;
  /** Counted as one API node when membership cannot be read (this node serves the API). */
  servesApi: boolean;
  log: Logger;
}

/**
 * `/ready`: 503 only when this node's own dependencies are down; members and capacity for the operator.
 * Anyone may ask, so it says up or down per dependency, never why: the cause goes to the log.
 */
export function readiness(options: ReadinessOptions): () => Promise<ReadyReport> {
  const check = (name: string, probe: () => Promise<unknown>) =>
    within(probe()).then(
      () => ({ ok: true }),
      (error: unknown) => {
        options.log.warn({ err: error, dependency: name }, 'a dependency did not answer the readiness check');
        return { ok: false };
      },
    );
  return async () => {
    const checks: ReadyReport['checks'] = {};
    for (const [name, probe] of Object.entries(options.dependencies)) checks[name] = await check(name, probe);
    const members = await within(options.members()).catch(() => null);
    const queued = await within(options.queuedJobs()).catch(() => 0);
    return {
      ready: Object.values(checks).every((c) => c.ok),
      checks,
      members: { api: members?.api ?? (options.servesApi ? 1 : 0), managers: members?.managers ?? 0, workers: members?.workers ?? 0 },
      capacity: { idle: members?.idle ?? 0, busy: members?.busy ?? 0, queued },
    };
  };
}
