import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { Migrator, type Kysely, type Migration, type MigrationProvider, type MigrationResult } from 'kysely';

/** `migrations/` at the repository root. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Imports every `NNNN_name.ts` (or `.js` once built) in a folder; the file name without extension is the migration name. */
export class FolderMigrationProvider implements MigrationProvider {
  constructor(private readonly folder: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    for (const file of (await readdir(this.folder)).sort()) {
      if (!/^\d+_[\w-]+\.(ts|js|mjs)$/.test(file) || file.endsWith('.d.ts')) continue;
      const name = file.replace(/\.(ts|js|mjs)$/, '');
      if (migrations[name]) continue; // a built .js next to its .ts
      const module = (await import(pathToFileURL(path.join(this.folder, file)).href)) as Partial<Migration> & { default?: Partial<Migration> };
      const migration = typeof module.up === 'function' ? module : module.default;
      if (!migration || typeof migration.up !== 'function') throw new Error(`migration ${file} in ${this.folder} exports no up() function`);
      migrations[name] = migration as Migration;
    }
    return migrations;
  }
}

/**
 * Brings the schema to the latest migration. Safe to run again (applied migrations are skipped) and
 * from several processes at once against one PostgreSQL: Kysely's Migrator holds an advisory lock
 * while it migrates, so the second process waits and then finds nothing left to do.
 */
export async function migrateToLatest(db: Kysely<any>, folder = MIGRATIONS_DIR): Promise<MigrationResult[]> {
  const migrator = new Migrator({ db, provider: new FolderMigrationProvider(folder) });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((r) => r.status === 'Error');
    const what = failed ? `migration ${failed.migrationName} (${failed.direction.toLowerCase()})` : 'preparing the migration tables';
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`Database migration failed in ${what}: ${message}. Migrations are in ${folder}.`, { cause: error });
  }
  return results;
}
