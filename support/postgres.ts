import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.ts';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** A database (`braindrill`) on this server, created at start. */
  url: string;
  /** The `postgres` maintenance database, superuser. */
  adminUrl: string;
  /** Stops the server (fast shutdown, data kept): clients see connection errors until start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops the server and deletes its files. */
  destroy(): Promise<void>;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(): Promise<string>;
}

/** Servers still running when the test process exits are stopped, so none outlive their test file. */
const live = new Map<string, string>(); // data dir -> pg_ctl path
process.once('exit', () => {
  for (const [dataDir, pgCtl] of live) {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', pgCtl, '-D', dataDir, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore', timeout: 5000 });
    } catch {
      // best effort
    }
  }
});

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const version = versions[0];
  if (version === undefined) {
    throw new Error('PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin. Install them with: apt-get install -y postgresql');
  }
  return path.join(root, version, 'bin');
}


function asPostgres(command: string, args: string[], timeout = 30_000) {
  return run('runuser', ['-u', 'postgres', '--', command, ...args], { timeout }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`${path.basename(command)} failed: ${error.stderr?.trim() || error.message}`);
  });
}

/** One initdb per test process; each server starts from a copy of it (initdb costs ~1 s, a copy ~50 ms). */
let template: Promise<string> | undefined;
function templateDir(bin: string): Promise<string> {
  template ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'braindrill-pg-template-'));
    chownSync(dir, uid('postgres'), gid('postgres'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await asPostgres(path.join(bin, 'initdb'), ['-D', path.join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    return path.join(dir, 'data');
  })();
  return template;
}

const ids = new Map<string, number>();
function uid(user: string): number {
  return lookup(`u:${user}`, () => Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim()));
}
function gid(user: string): number {
  return lookup(`g:${user}`, () => Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim()));
}
function lookup(key: string, get: () => number): number {
  let value = ids.get(key);
  if (value === undefined) {
    value = get();
    ids.set(key, value);
  }
  return value;
}

/**
 * Starts a private, throw-away PostgreSQL server for one test file: its own temp directory and
 * port, listening on 127.0.0.1 only (plus a Unix socket in the temp directory), trust auth,
 * fsync off. The server processes run as the `postgres` user (initdb refuses root).
 */
export async function startPostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser') && !existsSync('/usr/bin/runuser')) {
    throw new Error('runuser (util-linux) is needed to run PostgreSQL as the postgres user');
  }
  const pgCtl = path.join(bin, 'pg_ctl');
  const root = mkdtempSync(path.join(tmpdir(), 'braindrill-pg-'));
  chownSync(root, uid('postgres'), gid('postgres'));
  const dataDir = path.join(root, 'data');
  cpSync(await templateDir(bin), dataDir, { recursive: true, preserveTimestamps: true });
  execFileSync('chown', ['-R', 'postgres:postgres', dataDir]);

  let port = 0;
  const startServer = async () => {
    const options = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      `-k ${root}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
      '-c shared_buffers=128MB',
    ].join(' ');
    await asPostgres(pgCtl, ['-D', dataDir, '-l', path.join(root, 'server.log'), '-o', options, '-w', '-t', '30', 'start']);
    live.set(dataDir, pgCtl);
  };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await startServer();
      break;
    } catch (error) {
      if (attempt >= 2) throw error; // the port was taken between freePort() and start: try another
    }
  }

  const base = `postgresql://postgres@127.0.0.1:${port}`;
  const adminUrl = `${base}/postgres`;
  const createDatabase = async (name = `bd_${randomBytes(6).toString('hex')}`) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(`create database "${name}"`);
    } finally {
      await client.end();
    }
    return `${base}/${name}`;
  };
  const url = await createDatabase('braindrill');

  let destroyed = false;
  return {
    url,
    adminUrl,
    createDatabase: () => createDatabase(),
    async stop() {
      await asPostgres(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
      live.delete(dataDir);
    },
    start: startServer,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (live.has(dataDir)) await asPostgres(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => undefined);
      live.delete(dataDir);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
