import type { AdmissionCounts } from '../jobs/admission.ts';
import type { JobRecord, NewJob } from '../jobs/job.ts';
import type { JobLifecycle } from '../jobs/lifecycle.ts';
import type { Logger } from '../observability/logger.ts';
import { ask, dispatch, spawn, type Ref } from './system.ts';

export type SubmitReply = { ok: true; job: JobRecord } | { ok: false; error: Error };
export type CancelReply = { ok: true; found: boolean; cancelled: boolean } | { ok: false; error: Error };

export type JobManagerMessage =
  | { type: 'submit'; job: NewJob; replyTo: Ref<SubmitReply> }
  | { type: 'flush' }
  | { type: 'cancel'; jobId: string; owner: string | null; replyTo: Ref<CancelReply> }
  | { type: 'audit' };

export interface JobManagerOptions {
  lifecycle: JobLifecycle;
  admission: AdmissionCounts;
  log: Logger;
}

type Submit = Extract<JobManagerMessage, { type: 'submit' }>;
/** Submissions admitted and written per statement when they arrive in a burst. */
const BATCH = 500;

interface State {
  /** Submissions waiting for the next flush: a burst becomes one admission count and one INSERT. */
  submits: Submit[];
  flushScheduled: boolean;
}

/**
 * The API side's unit of concurrency for job changes: submissions are admitted one burst at a time (so
 * admission counts never race within a node) and cancels go through the same mailbox. The lifecycle
 * itself is JobLifecycle's.
 */
export function spawnJobManager(parent: Ref<never>, { lifecycle, admission, log }: JobManagerOptions): Ref<JobManagerMessage> {
  return spawn(
    parent,
    async (state: State, message: JobManagerMessage, ctx): Promise<State> => {
      switch (message.type) {
        case 'submit':
          state.submits.push(message);
          if (!state.flushScheduled) {
            state.flushScheduled = true;
            setImmediate(() => dispatch(ctx.self, { type: 'flush' }));
          }
          return state;
        case 'flush': {
          const batch = state.submits.splice(0, BATCH);
          state.flushScheduled = state.submits.length > 0;
          if (state.flushScheduled) setImmediate(() => dispatch(ctx.self, { type: 'flush' }));
          const answers = await lifecycle.submit(batch.map((submit) => submit.job));
          for (const [index, submit] of batch.entries()) {
            const answer = answers[index] ?? new Error('no answer for this submission');
            dispatch(submit.replyTo, answer instanceof Error ? { ok: false, error: answer } : { ok: true, job: answer });
          }
          return state;
        }
        case 'cancel':
          try {
            dispatch(message.replyTo, { ok: true, ...(await lifecycle.cancel(message.jobId, message.owner)) });
          } catch (error) {
            dispatch(message.replyTo, { ok: false, error: error as Error });
          }
          return state;
        case 'audit':
          // Only while idle: a count read beside an admission or an execution in flight would differ for no fault.
          if (state.submits.length === 0 && !lifecycle.busy) {
            await admission.audit().catch((error: unknown) => log.warn({ err: error }, 'admission audit failed; retrying on the next tick'));
          }
          return state;
      }
    },
    'job-manager',
    {
      initialStateFunc: (): State => ({ submits: [], flushScheduled: false }),
      onCrash: (message, error, ctx) => {
        log.error({ err: error, message: message?.type }, 'job manager failed on a message; resuming');
        return ctx.resume;
      },
    },
  );
}

const ASK_MS = 10_000;

/** Submits a job through the JobManager and answers the stored job (or throws why it was refused). */
export async function submitJob(manager: Ref<JobManagerMessage>, job: NewJob): Promise<JobRecord> {
  const reply = await ask<JobManagerMessage, SubmitReply>(manager, (replyTo) => ({ type: 'submit', job, replyTo }), ASK_MS, 'JobManager');
  if (!reply.ok) throw reply.error;
  return reply.job;
}

export async function cancelJob(manager: Ref<JobManagerMessage>, jobId: string, owner: string | null): Promise<{ found: boolean; cancelled: boolean }> {
  const reply = await ask<JobManagerMessage, CancelReply>(manager, (replyTo) => ({ type: 'cancel', jobId, owner, replyTo }), ASK_MS, 'JobManager');
  if (!reply.ok) throw reply.error;
  return { found: reply.found, cancelled: reply.cancelled };
}
