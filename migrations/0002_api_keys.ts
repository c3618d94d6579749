import { sql, type Kysely } from 'kysely';

/**
 * API keys managed at run time. Only the sha256 of a key is stored. A row whose source is 'env' records
 * the revocation of a key that comes from API_KEYS or the development defaults.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('api_keys')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull().unique())
    .addColumn('admin', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('database').check(sql`source in ('database', 'env')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  // Per-key quotas count a key's waiting and running jobs.
  await db.schema
    .createIndex('jobs_active_owner_idx')
    .ifNotExists()
    .on('jobs')
    .columns(['owner', 'status'])
    .where(sql.ref('status'), 'in', sql`('queued', 'running')`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('jobs_active_owner_idx').ifExists().execute();
  await db.schema.dropTable('api_keys').ifExists().execute();
}
