import { sql, type Kysely, type Selectable } from 'kysely';
import { ValidationError } from '../errors.ts';
import { DatabaseUnavailableError, isConnectionError } from '../db/unavailable.ts';
import type { JobsTable, Schema } from '../db/schema.ts';
import type { SourceFile } from '../sandbox/execution.ts';
import { FINISHED, JOB_STATUSES, type ActiveJob, type JobOutcome, type JobRecord, type JobStatus, type JobSummary, type NewJob } from './job.ts';

type JobRow = Selectable<JobsTable>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const EMPTY = Buffer.alloc(0);
/** The advisory lock every admission takes (an arbitrary, fixed 64-bit key: "bd" "admit"). */
const ADMISSION_LOCK = 0x6264_6164_6d69_74n;
/** Rows per INSERT in insertMany (7 parameters each, far below PostgreSQL's 65535). */
const INSERT_CHUNK = 1000;

/**
 * All job persistence, identical on PGlite and PostgreSQL. Every method turns "the database is not
 * reachable" into DatabaseUnavailableError (503); other database errors pass through unchanged.
 *
 * Ownership: where a method takes `owner`, a string means "only that owner's jobs" (another owner's
 * job is invisible, as if it did not exist); `undefined` or `null` mean no ownership filter.
 */
export class JobStore {
  constructor(private readonly db: Kysely<Schema>) {}

  /**
   * Runs `work` in one transaction holding the admission lock (a transaction-scoped advisory lock):
   * admissions on every node sharing this database happen one at a time, so counting the active jobs and
   * storing the admitted ones is one atomic check-and-reserve.
   */
  async admitting<T>(work: (store: JobStore) => Promise<T>): Promise<T> {
    return this.#run(() =>
      this.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${ADMISSION_LOCK})`.execute(trx);
        return work(new JobStore(trx));
      }),
    );
  }

  /** Why `job` cannot be stored (text PostgreSQL cannot hold), or null. */
  static unstorable(job: NewJob): ValidationError | null {
    try {
      insertValues(job);
      return null;
    } catch (error) {
      if (error instanceof ValidationError) return error;
      throw error;
    }
  }

  /** Stores a new job as queued. Text that PostgreSQL cannot hold (NUL) is refused with a 400. */
  async insert(job: NewJob): Promise<JobRecord> {
    const values = insertValues(job);
    const row = await this.#run(() => this.db.insertInto('jobs').values(values).returningAll().executeTakeFirstOrThrow());
    return toRecord(row);
  }

  /**
   * Several new jobs in one statement (a burst of submissions); all or none. Only what the database
   * adds comes back: the rest of each record is what was submitted.
   */
  async insertBatch(jobs: NewJob[]): Promise<JobRecord[]> {
    if (jobs.length === 0) return [];
    const values = jobs.map(insertValues);
    const rows = await this.#run(() => this.db.insertInto('jobs').values(values).returning(['id', 'created_at', 'updated_at']).execute());
    const byId = new Map(rows.map((row) => [row.id, row]));
    return jobs.map((job) => queuedRecord(job, byId.get(job.id)!));
  }

  /** Bulk insert (benchmarks, bursts); chunked, not atomic across chunks. */
  async insertMany(jobs: NewJob[]): Promise<void> {
    const values = jobs.map(insertValues);
    for (let i = 0; i < values.length; i += INSERT_CHUNK) {
      const chunk = values.slice(i, i + INSERT_CHUNK);
      await this.#run(() => this.db.insertInto('jobs').values(chunk).execute());
    }
  }

  async get(id: string, owner?: string | null): Promise<JobRecord | undefined> {
    if (!UUID.test(id)) return undefined;
    const row = await this.#run(() =>
      this.db
        .selectFrom('jobs')
        .selectAll()
        .where('id', '=', id)
        .$if(typeof owner === 'string', (q) => q.where('owner', '=', owner as string))
        .executeTakeFirst(),
    );
    return row ? toRecord(row) : undefined;
  }

  /** Newest first (created_at desc, id desc); `total` counts every job the filter matches. */
  async list(options: { owner?: string | null; limit: number; offset: number }): Promise<{ jobs: JobSummary[]; total: number }> {
    const owner = typeof options.owner === 'string' ? options.owner : undefined;
    const [rows, count] = await this.#run(() =>
      Promise.all([
        this.db
          .selectFrom('jobs')
          .select(['id', 'language', 'status', 'reason', 'created_at', 'started_at', 'completed_at', 'execution_duration_ms'])
          .$if(owner !== undefined, (q) => q.where('owner', '=', owner as string))
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .limit(options.limit)
          .offset(options.offset)
          .execute(),
        // Kept by triggers (migrations/0003): counting an owner's rows grows with their history.
        this.db
          .selectFrom('job_counts')
          .select((eb) => eb.fn.coalesce(eb.fn.sum<string>('total'), sql<string>`0`).as('total'))
          .$if(owner !== undefined, (q) => q.where('owner', '=', owner as string))
          .executeTakeFirstOrThrow(),
      ]),
    );
    return {
      total: Number(count.total),
      jobs: rows.map((row) => ({
        id: row.id,
        language: row.language,
        status: row.status,
        reason: row.reason,
        createdAt: row.created_at,
        startedAt: row.started_at,
        completedAt: row.completed_at,
        executionDurationMs: row.execution_duration_ms,
      })),
    };
  }

  /** queued → running (only from queued); counts the attempt. False when the job was not queued. */
  async markRunning(id: string, nodeId: string, workerId: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    const result = await this.#run(() =>
      this.db
        .updateTable('jobs')
        .set((eb) => ({
          status: 'running',
          node_id: nodeId,
          worker_id: workerId,
          started_at: sql<Date>`now()`,
          attempts: eb('attempts', '+', 1),
          updated_at: sql<Date>`now()`,
        }))
        .where('id', '=', id)
        .where('status', '=', 'queued')
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /**
   * Writes a finished execution and returns the finished job. Applied once: null when the job is already
   * finished (or unknown).
   */
  async complete(id: string, outcome: JobOutcome): Promise<JobRecord | null> {
    if (!UUID.test(id)) return null;
    const row = await this.#run(() =>
      this.db
        .updateTable('jobs')
        .set({
          status: outcome.status,
          reason: clean(outcome.reason),
          stdout: outcome.stdout,
          stderr: outcome.stderr,
          exit_code: outcome.exitCode,
          signal: clean(outcome.signal),
          error: clean(outcome.error),
          truncated: outcome.truncated,
          execution_duration_ms: outcome.executionDurationMs === null ? null : Math.round(outcome.executionDurationMs),
          details: outcome.details === null ? null : json(outcome.details),
          completed_at: sql<Date>`now()`,
          started_at: sql<Date>`coalesce(started_at, now())`,
          // A fast job can finish before its "started" note is written: it still ran once.
          attempts: sql<number>`greatest(attempts, 1)`,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', id)
        .where('status', 'not in', FINISHED)
        .returningAll()
        .executeTakeFirst(),
    );
    return row ? toRecord(row) : null;
  }

  /** A queued or running job becomes failed/cancelled; a finished one is left as it is. */
  async cancel(id: string, owner?: string | null): Promise<{ found: boolean; previous: JobStatus | null; cancelled: boolean }> {
    if (!UUID.test(id)) return { found: false, previous: null, cancelled: false };
    return this.#run(() =>
      this.db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom('jobs')
          .select('status')
          .where('id', '=', id)
          .$if(typeof owner === 'string', (q) => q.where('owner', '=', owner as string))
          .forUpdate()
          .executeTakeFirst();
        if (!row) return { found: false, previous: null, cancelled: false };
        if (FINISHED.includes(row.status)) return { found: true, previous: row.status, cancelled: false };
        await trx
          .updateTable('jobs')
          .set({
            status: 'failed',
            reason: 'cancelled',
            error: 'cancelled by request',
            stdout: EMPTY,
            stderr: EMPTY,
            completed_at: sql<Date>`now()`,
            updated_at: sql<Date>`now()`,
          })
          .where('id', '=', id)
          .execute();
        return { found: true, previous: row.status, cancelled: true };
      }),
    );
  }

  /**
   * Jobs left running by a node that stopped (nodeFilter: that node; null: every running job) go back
   * to queued, except those that already started `maxAttempts` times, which fail (reason internal).
   */
  async requeueRunning(nodeFilter: string | null, maxAttempts: number): Promise<{ requeued: string[]; failed: string[] }> {
    return this.#run(() =>
      this.db.transaction().execute(async (trx) => {
        const failed = await trx
          .updateTable('jobs')
          .set({
            status: 'failed',
            reason: 'internal',
            error: sql<string>`'the node running this job stopped ' || attempts || ' times'`,
            stdout: EMPTY,
            stderr: EMPTY,
            completed_at: sql<Date>`now()`,
            updated_at: sql<Date>`now()`,
          })
          .where('status', '=', 'running')
          .$if(nodeFilter !== null, (q) => q.where('node_id', '=', nodeFilter))
          .where('attempts', '>=', maxAttempts)
          .returning('id')
          .execute();
        const requeued = await trx
          .updateTable('jobs')
          .set({ status: 'queued', node_id: null, worker_id: null, started_at: null, updated_at: sql<Date>`now()` })
          .where('status', '=', 'running')
          .$if(nodeFilter !== null, (q) => q.where('node_id', '=', nodeFilter))
          .returning('id')
          .execute();
        return { requeued: requeued.map((r) => r.id), failed: failed.map((r) => r.id) };
      }),
    );
  }

  /** Ids of queued jobs, oldest first; `olderThanMs` keeps only jobs queued at least that long (database clock). */
  async queuedIds(options: { olderThanMs?: number; limit: number }): Promise<string[]> {
    const { olderThanMs } = options;
    const rows = await this.#run(() =>
      this.db
        .selectFrom('jobs')
        .select('id')
        .where('status', '=', 'queued')
        .$if(olderThanMs !== undefined && olderThanMs > 0, (q) =>
          q.where('created_at', '<=', sql<Date>`now() - make_interval(secs => ${(olderThanMs ?? 0) / 1000}::double precision)`),
        )
        .orderBy('created_at', 'asc')
        .orderBy('id', 'asc')
        .limit(options.limit)
        .execute(),
    );
    return rows.map((r) => r.id);
  }

  /**
   * Deletes finished jobs completed more than `ttlSeconds` ago, `batchSize` rows per statement.
   * Rows another sweeper holds are skipped (FOR UPDATE SKIP LOCKED), so nodes sweeping at once
   * split the work instead of waiting on each other. Returns how many rows this call deleted.
   */
  async sweepExpired(ttlSeconds: number, batchSize = 1000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const result = await this.#run(() =>
        this.db
          .deleteFrom('jobs')
          .where('id', 'in', (eb) =>
            eb
              .selectFrom('jobs')
              .select('id')
              .where('status', 'in', FINISHED)
              .where('completed_at', '<', sql<Date>`now() - make_interval(secs => ${ttlSeconds}::double precision)`)
              .limit(batchSize)
              .forUpdate()
              .skipLocked(),
          )
          .executeTakeFirst(),
      );
      const count = Number(result.numDeletedRows);
      deleted += count;
      if (count < batchSize) return deleted;
    }
  }

  async countByStatus(): Promise<Record<JobStatus, number>> {
    const rows = await this.#run(() =>
      this.db.selectFrom('jobs').select((eb) => ['status', eb.fn.countAll().as('count')]).groupBy('status').execute(),
    );
    const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  /**
   * For admission of a burst, in one statement: jobs waiting in all, and jobs waiting or running per
   * owner (both read from partial indexes, so the cost follows the backlog, not the history).
   */
  async activeCountsFor(owners: string[]): Promise<{ queued: number; byOwner: Map<string, number> }> {
    const row = await this.#run(() =>
      sql<{ queued: string; by_owner: Record<string, string> | null }>`
        select (select count(*) from jobs where status = 'queued') as queued,
               (select json_object_agg(owner, n) from (
                  select owner, count(*) as n from jobs
                  where status in ('queued', 'running') and owner = any(${owners}::text[])
                  group by owner) active) as by_owner`.execute(this.db),
    );
    const counts = row.rows[0];
    return {
      queued: Number(counts?.queued ?? 0),
      byOwner: new Map(Object.entries(counts?.by_owner ?? {}).map(([owner, n]) => [owner, Number(n)])),
    };
  }

  /** Every job waiting or running (the partial indexes serve it), for the JobManager's own counts. */
  async activeJobs(): Promise<ActiveJob[]> {
    const rows = await this.#run(() =>
      this.db.selectFrom('jobs').select(['id', 'owner', 'status']).where('status', 'in', ['queued', 'running']).execute(),
    );
    return rows.map((row) => ({ id: row.id, owner: row.owner, status: row.status as ActiveJob['status'] }));
  }

  async queuedByLanguage(): Promise<Record<string, number>> {
    const rows = await this.#run(() =>
      this.db
        .selectFrom('jobs')
        .select((eb) => ['language', eb.fn.countAll().as('count')])
        .where('status', '=', 'queued')
        .groupBy('language')
        .execute(),
    );
    return Object.fromEntries(rows.map((r) => [r.language, Number(r.count)]));
  }

  async #run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (isConnectionError(error)) throw new DatabaseUnavailableError(error);
      throw error;
    }
  }
}

/** Text PostgreSQL can store: NUL and lone UTF-16 surrogates become U+FFFD. */
function clean(text: string): string;
function clean(text: string | null): string | null;
function clean(text: string | null): string | null {
  return text === null ? null : text.replace(/\0/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}

/** jsonb parameter: a JSON string (node-postgres would send a JS array as a PostgreSQL array). */
function json(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? clean(v) : v));
}

const buffer = (bytes: Uint8Array | null): Buffer | null => (bytes === null || Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));

function insertValues(job: NewJob) {
  const texts = [job.stdin, ...job.args, ...job.files.flatMap((f) => [f.content, f.name ?? ''])];
  if (texts.some((t) => t.includes('\0'))) {
    throw new ValidationError('invalid_text', 'stdin, args and files may not contain NUL characters (U+0000): they are stored as text.');
  }
  return {
    id: job.id,
    owner: job.owner,
    language: job.language,
    version: job.version,
    files: json(job.files.map((f): SourceFile => (f.name === undefined ? { content: f.content } : { name: f.name, content: f.content }))),
    stdin: clean(job.stdin),
    args: json(job.args),
    status: 'queued' as const,
  };
}

/** A job as insertBatch stored it: what was submitted, plus the database's id and clocks. */
function queuedRecord(job: NewJob, row: Pick<JobRow, 'id' | 'created_at' | 'updated_at'>): JobRecord {
  return {
    ...job,
    status: 'queued',
    reason: null,
    stdout: null,
    stderr: null,
    exitCode: null,
    signal: null,
    error: null,
    truncated: false,
    executionDurationMs: null,
    details: null,
    createdAt: row.created_at,
    startedAt: null,
    completedAt: null,
    updatedAt: row.updated_at,
    nodeId: null,
    workerId: null,
    attempts: 0,
  };
}

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    owner: row.owner,
    language: row.language,
    version: row.version,
    files: row.files,
    stdin: row.stdin,
    args: row.args,
    status: row.status,
    reason: row.reason,
    stdout: buffer(row.stdout),
    stderr: buffer(row.stderr),
    exitCode: row.exit_code,
    signal: row.signal,
    error: row.error,
    truncated: row.truncated,
    executionDurationMs: row.execution_duration_ms,
    details: row.details,
    createdAt: row.created_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    updatedAt: row.updated_at,
    nodeId: row.node_id,
    workerId: row.worker_id,
    attempts: Number(row.attempts),
  };
}
