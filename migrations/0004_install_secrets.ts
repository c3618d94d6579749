import type { Kysely } from 'kysely';

/**
 * Secrets of this installation, shared by every node through the database: `key_ids` derives the ids of
 * configured API keys (an HMAC, so an id reveals nothing about its key).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('install_secrets')
    .ifNotExists()
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('install_secrets').ifExists().execute();
}
