import { sql, type Kysely } from 'kysely';

/** The jobs table and the indexes that keep listing, recovery and the TTL sweep fast at a million rows. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('jobs')
    .ifNotExists()
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('owner', 'text')
    .addColumn('language', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('files', 'jsonb', (c) => c.notNull())
    .addColumn('stdin', 'text', (c) => c.notNull())
    .addColumn('args', 'jsonb', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('queued', 'running', 'completed', 'failed', 'timedout')`))
    .addColumn('reason', 'text')
    .addColumn('stdout', 'bytea')
    .addColumn('stderr', 'bytea')
    .addColumn('exit_code', 'integer')
    .addColumn('signal', 'text')
    .addColumn('error', 'text')
    .addColumn('truncated', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('details', 'jsonb')
    .addColumn('execution_duration_ms', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('node_id', 'text')
    .addColumn('worker_id', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  // GET /jobs for one owner, newest first (and count(*) for that owner as an index-only scan).
  await db.schema.createIndex('jobs_owner_created_idx').ifNotExists().on('jobs').expression(sql`owner, created_at desc, id desc`).execute();
  // GET /jobs without an owner (single-tenant deployments).
  await db.schema.createIndex('jobs_created_idx').ifNotExists().on('jobs').expression(sql`created_at desc, id desc`).execute();
  // Recovery: queued jobs oldest first.
  await db.schema.createIndex('jobs_queued_idx').ifNotExists().on('jobs').column('created_at').where(sql.ref('status'), '=', 'queued').execute();
  // Recovery: running jobs of a node.
  await db.schema.createIndex('jobs_running_idx').ifNotExists().on('jobs').columns(['status', 'node_id']).where(sql.ref('status'), '=', 'running').execute();
  // TTL sweep.
  await db.schema.createIndex('jobs_completed_idx').ifNotExists().on('jobs').column('completed_at').where(sql.ref('completed_at'), 'is not', null).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('jobs').ifExists().execute();
}
