import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from '../observability/logger.ts';
import { DatabaseUnavailableError, isConnectionError } from './unavailable.ts';
import { migrateToLatest } from './migrate.ts';
import { PGliteDialect } from './pglite-dialect.ts';
import { PGLITE_OPTIONS } from './pglite-options.ts';
import type { Schema } from './schema.ts';

export interface Database {
  db: Kysely<Schema>;
  kind: 'pglite' | 'postgres';
  /** Resolves when the database answers; throws DatabaseUnavailableError when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL; null: embedded PGlite persisted in `dataDir`. */
  databaseUrl: string | null;
  dataDir: string;
  log?: Logger;
}

const POOL_SIZE = 10;
const CONNECT_TIMEOUT_MS = 3000;
const LOCK_FILE = 'braindrill.lock';
/** Data directories this process has open (the pid in the lock file cannot tell them apart). */
const openDirs = new Set<string>();

/** Opens the job database and brings its schema up to date before returning. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options.log) : openPGlite(options.dataDir, options.log);
}

/** The URL without its password, for logs and error messages. */
function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable DATABASE_URL>';
  }
}

async function openPostgres(url: string, log: Logger | undefined): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'braindrill',
  });
  // An idle client whose server went away (restart, failover, network) is dropped by the pool;
  // without this listener the 'error' event would crash the process.
  pool.on('error', (error) => log?.warn({ err: error }, 'an idle PostgreSQL connection failed; the pool reconnects on next use'));
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  const where = safeUrl(url);
  try {
    await migrateToLatest(db);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    if (isConnectionError(error)) {
      throw new Error(`Cannot reach PostgreSQL at ${where} to migrate the schema: ${errorText(error)}. Check DATABASE_URL and that the server is up.`, { cause: error });
    }
    throw error;
  }
  log?.info({ database: where }, 'PostgreSQL schema is up to date');
  let closed = false;
  return {
    db,
    kind: 'postgres',
    ping: () => ping(db),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

async function openPGlite(dataDir: string, log: Logger | undefined): Promise<Database> {
  const dir = path.resolve(dataDir);
  await mkdir(dir, { recursive: true });
  const unlock = await lockDataDir(dir);
  let db: Kysely<Schema>;
  try {
    if (!existsSync(path.join(dir, 'PG_VERSION'))) await initPGlite(dir);
    const pglite = await PGlite.create(dir, PGLITE_OPTIONS);
    db = new Kysely<Schema>({ dialect: new PGliteDialect({ pglite }) });
  } catch (error) {
    await unlock();
    throw new Error(`Cannot open the embedded database in ${dir}: ${errorText(error)}`, { cause: error });
  }
  try {
    await migrateToLatest(db);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    await unlock();
    throw error;
  }
  log?.info({ dataDir: dir }, 'embedded PGlite database is up to date');
  let closed = false;
  return {
    db,
    kind: 'pglite',
    ping: () => ping(db),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await db.destroy();
      } finally {
        await unlock();
      }
    },
  };
}

/** `pglite-init.ts` (or `.js` in the build) next to this file, run as a child process of this Node.js. */
const INIT_SCRIPT = fileURLToPath(new URL(`./pglite-init${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** A new data directory is initialised by a short-lived process, so this one never holds initdb's memory. */
async function initPGlite(dir: string): Promise<void> {
  try {
    await promisify(execFile)(process.execPath, [...process.execArgv, INIT_SCRIPT, dir], { timeout: 120_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`initialising the embedded database failed${stderr ? `: ${stderr.slice(-500)}` : ''}`, { cause: error });
  }
}

async function ping(db: Kysely<Schema>): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    throw isConnectionError(error) ? new DatabaseUnavailableError(error) : error;
  }
}

/**
 * PGlite has no server: two processes opening one directory would corrupt it. A lock file with the
 * owner's pid keeps a second process out; a lock left by a dead process (SIGKILL) is taken over.
 */
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  if (openDirs.has(dir)) throw new Error(`The embedded database in ${dir} is already open in this process; close it first.`);
  openDirs.add(dir);
  try {
    return await takeLockFile(dir);
  } catch (error) {
    openDirs.delete(dir);
    throw error;
  }
}

async function takeLockFile(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return async () => {
        openDirs.delete(dir);
        await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new Error(
          `The embedded database in ${dir} is in use by process ${owner}. Only one braindrill process may use a DATA_DIR; ` +
            'stop the other one, give this one another DATA_DIR, or set DATABASE_URL to share a PostgreSQL.',
        );
      }
      await rm(file, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`Cannot take the lock file ${file}.`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(errorText).join('; ');
  return error instanceof Error ? error.message || (error as { code?: string }).code || error.name : String(error);
}
