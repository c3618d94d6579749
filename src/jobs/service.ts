import { randomUUID } from 'node:crypto';
import { ask, type Ref } from '../actors/system.ts';
import type { CancelReply, JobManagerMessage, SubmitReply } from '../actors/job-manager.ts';
import type { Language } from '../languages/language.ts';
import type { Submission } from '../sandbox/execution.ts';
import type { Completions } from './completions.ts';
import type { JobRecord, JobSummary } from './job.ts';
import type { JobStore } from './store.ts';

const ASK_MS = 10_000;

/**
 * What HTTP routes call for jobs. Changes go through the JobManager actor; reads go straight to the
 * store, which is the source of truth.
 */
export class JobService {
  constructor(
    private readonly manager: Ref<JobManagerMessage>,
    private readonly store: JobStore,
    private readonly completions: Completions,
  ) {}

  async submit(language: Language, submission: Submission, owner: string | null, id: string = randomUUID()): Promise<JobRecord> {
    const reply = await ask<JobManagerMessage, SubmitReply>(
      this.manager,
      (replyTo) => ({ type: 'submit', job: { id, owner, language: language.id, version: language.version, ...submission }, replyTo }),
      ASK_MS,
      'JobManager',
    );
    if (!reply.ok) throw reply.error;
    return reply.job;
  }

  /** Submits and waits up to `waitMs` (queue time included) for the job to finish. */
  async run(language: Language, submission: Submission, owner: string | null, waitMs: number): Promise<{ job: JobRecord; finished: boolean }> {
    const id = randomUUID();
    const finished = this.completions.wait(id, waitMs);
    const submitted = await this.submit(language, submission, owner, id).catch(async (error: unknown) => {
      await this.completions.notify(id);
      throw error;
    });
    const done = await finished;
    if (!done) return { job: submitted, finished: false };
    const job = done.job ?? (await this.store.get(id));
    return { job: job ?? submitted, finished: job !== undefined };
  }

  get(id: string, owner: string | null): Promise<JobRecord | undefined> {
    return this.store.get(id, owner ?? undefined);
  }

  list(owner: string | null, limit: number, offset: number): Promise<{ jobs: JobSummary[]; total: number }> {
    return this.store.list({ owner, limit, offset });
  }

  async cancel(id: string, owner: string | null): Promise<{ found: boolean; cancelled: boolean }> {
    const reply = await ask<JobManagerMessage, CancelReply>(this.manager, (replyTo) => ({ type: 'cancel', jobId: id, owner, replyTo }), ASK_MS, 'JobManager');
    if (!reply.ok) throw reply.error;
    return reply;
  }
}
