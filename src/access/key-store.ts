import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { DatabaseUnavailableError, isConnectionError } from '../db/unavailable.ts';
import type { Schema } from '../db/schema.ts';
import { hashKey, randomKeyId, type ApiKey } from './api-keys.ts';

export interface StoredKey {
  id: string;
  name: string;
  admin: boolean;
  source: 'database' | 'env';
  createdAt: Date;
  revokedAt: Date | null;
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isConnectionError(error)) throw new DatabaseUnavailableError(error);
    throw error;
  }
}

/** Keys created at run time, and revocations of any key, shared by every node through the database. */
export class KeyStore {
  constructor(private readonly db: Kysely<Schema>) {}

  /** Creates a key; the key itself is returned once and never stored. */
  async create(name: string, admin: boolean): Promise<{ key: string; stored: StoredKey }> {
    const key = `bd_${randomBytes(24).toString('base64url')}`;
    const hash = hashKey(key);
    const row = await guarded(() =>
      this.db.insertInto('api_keys').values({ id: randomKeyId(), name, hash, admin, source: 'database' }).returningAll().executeTakeFirstOrThrow(),
    );
    return { key, stored: toStored(row) };
  }

  /** This installation's secret for configured key ids: made by the first node that asks, then shared. */
  async keyIdSecret(): Promise<string> {
    return guarded(async () => {
      await this.db.insertInto('install_secrets').values({ name: 'key_ids', value: randomBytes(32).toString('hex') }).onConflict((oc) => oc.column('name').doNothing()).execute();
      const row = await this.db.selectFrom('install_secrets').select('value').where('name', '=', 'key_ids').executeTakeFirstOrThrow();
      return row.value;
    });
  }

  async list(): Promise<StoredKey[]> {
    const rows = await guarded(() => this.db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc').execute());
    return rows.map(toStored);
  }

  /** Active database keys, and the hashes of every revoked key (whatever its source). */
  async snapshot(): Promise<{ active: ApiKey[]; revoked: Set<string> }> {
    const rows = await guarded(() => this.db.selectFrom('api_keys').select(['id', 'name', 'hash', 'admin', 'source', 'revoked_at']).execute());
    return {
      active: rows.filter((r) => r.revoked_at === null && r.source === 'database').map((r) => ({ id: r.id, name: r.name, hash: r.hash, admin: r.admin, source: 'database' as const })),
      revoked: new Set(rows.filter((r) => r.revoked_at !== null).map((r) => r.hash)),
    };
  }

  /** Revokes a database key, or records the revocation of a configured one. */
  async revoke(key: Pick<ApiKey, 'id' | 'name' | 'hash' | 'admin' | 'source'>): Promise<void> {
    await guarded(() =>
      this.db
        .insertInto('api_keys')
        .values({ id: key.id, name: key.name, hash: key.hash, admin: key.admin, source: key.source === 'database' ? 'database' : 'env', revoked_at: new Date() })
        .onConflict((oc) => oc.column('id').doUpdateSet({ revoked_at: new Date() }))
        .execute(),
    );
  }
}

function toStored(row: { id: string; name: string; admin: boolean; source: 'database' | 'env'; created_at: Date; revoked_at: Date | null }): StoredKey {
  return { id: row.id, name: row.name, admin: row.admin, source: row.source, createdAt: row.created_at, revokedAt: row.revoked_at };
}
