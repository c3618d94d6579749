import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/db/database.ts';
import { MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { ROOT_DIR } from '../../src/settings.ts';

/**
 * A migrated, empty embedded database, made once per schema and PGlite version and shared by every test
 * process (creating one, initdb included, takes seconds; copying it, milliseconds). It lives in the
 * temporary directory under a name that changes with the migrations, so a stale one is never used.
 */
function templateDir(): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(MIGRATIONS_DIR).sort()) hash.update(name).update(readFileSync(path.join(MIGRATIONS_DIR, name)));
  hash.update(readFileSync(path.join(ROOT_DIR, 'node_modules', '@electric-sql', 'pglite', 'package.json')));
  return path.join(tmpdir(), `braindrill-pglite-template-${hash.digest('hex').slice(0, 12)}`);
}

let template: Promise<string> | null = null;

async function ensureTemplate(): Promise<string> {
  const dir = templateDir();
  if (existsSync(dir)) return dir;
  const building = mkdtempSync(`${dir}.building-`);
  const database = await openDatabase({ databaseUrl: null, dataDir: building });
  await database.close();
  try {
    renameSync(building, dir);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another process finished first: use its
  }
  return dir;
}

/** A new, migrated embedded database directory (a copy of the template). */
export async function freshDataDir(): Promise<string> {
  const source = await (template ??= ensureTemplate());
  const dir = mkdtempSync(path.join(tmpdir(), 'braindrill-data-'));
  cpSync(source, dir, { recursive: true });
  return dir;
}
