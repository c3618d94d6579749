/**
 * The async-jobs benchmark (issue "Async jobs"): how fast POST /jobs accepts 1,000 jobs, and GET /jobs
 * latency with 100,000 rows, on the embedded PGlite and on a private PostgreSQL, against the build
 * running in its own process. Run with `npm run bench:jobs`. Prints a table; asserts nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configuredKeyId } from '../src/access/api-keys.ts';
import { KeyStore } from '../src/access/key-store.ts';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.ts';
import { JobStore } from '../src/jobs/store.ts';
import { ROOT_DIR } from '../src/settings.ts';
import type { NewJob } from '../src/jobs/job.ts';
import { startEngine, type Engine } from './engine.ts';
import { sourceRevision } from './machine.ts';
import { HEADINGS, writeResults } from './results-file.ts';
import { startPostgres } from '../support/postgres.ts';

const ACCEPT = Number(process.env.BENCH_JOBS_ACCEPT ?? 1000);
const ROWS = Number(process.env.BENCH_JOBS_ROWS ?? 100_000);
const READS = 200;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** CPU seconds a process has used so far (user + system), from /proc/<pid>/stat. */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function acceptBurst(engine: Engine, count = ACCEPT): Promise<{ seconds: number; accepted: number; engineCpu: number; clientCpu: number }> {
  const started = performance.now();
  const engineBefore = cpuSecondsOf(engine.pid);
  const clientBefore = process.cpuUsage();
  let next = 0;
  let accepted = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const response = await engine.request('/jobs', { method: 'POST', json: { language: 'python', code: 'print(1)' } });
      if (response.status === 202) accepted++;
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  const client = process.cpuUsage(clientBefore);
  return { seconds: (performance.now() - started) / 1000, accepted, engineCpu: cpuSecondsOf(engine.pid) - engineBefore, clientCpu: (client.user + client.system) / 1e6 };
}

async function listLatency(engine: Engine, query: string): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < READS; i++) {
    const started = performance.now();
    const response = await engine.request(`/jobs?${query}`);
    await response.arrayBuffer();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

async function seed(env: Record<string, string>): Promise<void> {
  const database = await openDatabase({ databaseUrl: env.DATABASE_URL ?? null, dataDir: env.DATA_DIR ?? '' });
  const store = new JobStore(database.db);
  // The jobs belong to the development key, whose id this installation's secret derives.
  const owner = configuredKeyId(await new KeyStore(database.db).keyIdSecret(), 'dev-key-12345');
  const jobs: NewJob[] = Array.from({ length: ROWS }, () => ({ id: randomUUID(), owner, language: 'python', version: '3', files: [{ content: 'print(1)' }], stdin: '', args: [] }));
  await store.insertMany(jobs);
  // History, as a long-running service has it: finished jobs, and a vacuumed table (autovacuum's job).
  await sql`update jobs set status = 'completed', started_at = created_at, completed_at = created_at, stdout = ''::bytea, stderr = ''::bytea`.execute(database.db);
  await sql`vacuum analyze jobs`.execute(database.db);
  await database.close();
}

async function measure(mode: string, env: Record<string, string>) {
  // No workers: this measures acceptance and reads, not execution.
  const settings = { CONCURRENCY: '0', WARM_POOL: '0', LOG_LEVEL: 'warn', RATE_LIMIT_MAX_REQUESTS: '1000000', KEY_MAX_QUEUED_JOBS: '1000000', MAX_BACKLOG: '10000000', IP_RATE_LIMIT_MAX: '10000000', RATE_LIMIT_READ_MAX_REQUESTS: '1000000' };
  await seed(env);
  // The engine in its own process, as deployed: the 32 clients here do not share its event loop.
  const engine = await startEngine(ROOT_DIR, `bench-jobs-${randomUUID().slice(0, 6)}`, { ...env, ...settings });
  try {
    await listLatency(engine, 'limit=20');
    // Two bursts: a fresh process (JIT compiling, the embedded database growing its files), then the
    // same again in a process that has served a while.
    const fresh = await acceptBurst(engine);
    const burst = await acceptBurst(engine);
    const first = await listLatency(engine, 'limit=20&offset=0');
    const deep = await listLatency(engine, 'limit=100&offset=5000');
    return { mode, fresh, burst, first, deep };
  } finally {
    await engine.stop();
  }
}

const rows = [];
const dataDir = mkdtempSync(path.join(tmpdir(), 'braindrill-bench-jobs-'));
try {
  rows.push(await measure('embedded (PGlite)', { DATA_DIR: dataDir }));
  const postgres = await startPostgres();
  try {
    rows.push(await measure('PostgreSQL', { DATABASE_URL: await postgres.createDatabase() }));
  } finally {
    await postgres.destroy();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}

const ms = (v: number) => v.toFixed(1);
const lines = [
  HEADINGS.jobs,
  '',
  `- ${new Date().toISOString()}; ${ROWS.toLocaleString('en')} finished jobs of one key in the table (vacuumed, as autovacuum leaves it); bursts of ${ACCEPT} submissions from 32 concurrent clients in the bench process against the build in its own process, no workers (acceptance only); source ${await sourceRevision(ROOT_DIR)}`,
  '',
  '| mode | 1,000 jobs accepted (s): fresh process / then | CPU s of that second burst: engine / client | target | GET /jobs?limit=20 p50 / p99 (ms) | limit=100&offset=5000 p50 / p99 (ms) | target p99 |',
  '|---|---|---|---|---|---|---|',
];
for (const r of rows) {
  const accepted = (b: typeof r.burst) => `${b.seconds.toFixed(2)}${b.accepted === ACCEPT ? '' : ` (${b.accepted} accepted)`}`;
  lines.push(`| ${r.mode} | ${accepted(r.fresh)} / ${accepted(r.burst)} | ${r.burst.engineCpu.toFixed(2)} / ${r.burst.clientCpu.toFixed(2)} | < 2 s | ${ms(r.first.p50)} / ${ms(r.first.p99)} | ${ms(r.deep.p50)} / ${ms(r.deep.p99)} | < 20 ms |`);
}
lines.push('', 'Targets: 1,000 jobs accepted in under 2 s; `GET /jobs` p99 under 20 ms with 100,000 rows (the default page, `limit=20`). Client and engine share the machine\'s two cores, so the client\'s CPU is part of the time.');
console.log(`\n${lines.join('\n')}`);
if (process.env.BENCH_WRITE === '1') writeResults(lines.join('\n'));
